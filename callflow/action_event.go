package callflow

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/eslapp/eslapp/crm"
	"github.com/eslapp/eslapp/esl"
)

// custom_event: fires a CUSTOM event for inbound Event Socket subscribers
// (agent desktops), then next. After a step with agent_event the engine
// fires the agent event, a step's result for the agent's desktop, with the
// same headers.

// DefaultSubclass is the CUSTOM event subclass for results to the agent:
// what an agent desktop subscribes to on the inbound Event Socket.
const DefaultSubclass = "eslapp::workflow_result"

// The headers eslapp sets on its events itself; a custom_event may not set
// them. The call is named by Call-UUID, never by Unique-ID, which would queue
// the event to the channel instead of firing it.
const (
	headerCallUUID   = "Call-UUID"
	headerBranch     = "Workflow-Branch"
	headerElapsedMs  = "Workflow-Elapsed-Ms"
	headerConfigID   = "Workflow-Config-Id"
	headerWorkflowID = "Workflow-Id"
	headerLatencyMs  = "Workflow-Latency-Ms" // a late result: from the step's timeout to the answer
)

var eslappHeaders = []string{headerCallUUID, headerBranch, headerElapsedMs, headerConfigID, headerWorkflowID, headerLatencyMs}

type customEventConfig struct {
	Subclass string            `toml:"subclass"`
	Headers  map[string]string `toml:"headers"`
	Body     string            `toml:"body"`
	Next     string            `toml:"next"`
}

// HeaderSpec is one header of a custom event.
type HeaderSpec struct {
	Name  string
	Value *Template
}

type customEventNode struct {
	subclass string
	headers  []HeaderSpec
	body     *PayloadTemplate // nil: no body
	next     string
}

func (*customEventNode) keys() []string { return []string{"subclass", "headers", "body", "next"} }

func (*customEventNode) compile(d *decoder) actionType {
	var cfg customEventConfig
	if !d.decode(&cfg) {
		return nil
	}
	d.require("next", cfg.Next)
	n := &customEventNode{subclass: cfg.Subclass, next: cfg.Next}
	if n.subclass == "" {
		n.subclass = DefaultSubclass
	} else if !esl.IsEventSubclass(n.subclass) {
		d.errorf([]string{"subclass"}, "%q is not an event subclass (e.g. eslapp::workflow_result)", n.subclass)
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Headers)) {
		if err := CheckEventHeaderName(name); err != nil {
			d.errorf([]string{"headers", name}, "%v", err)
			continue
		}
		n.headers = append(n.headers, HeaderSpec{Name: name, Value: d.template([]string{"headers", name}, cfg.Headers[name])})
	}
	if cfg.Body != "" {
		n.body = d.payload([]string{"body"}, cfg.Body)
	}
	return n
}

// CheckEventHeaderName is the rule for a header a flow's custom_event sets,
// at check time and at run time: a name FreeSWITCH's sendevent keeps as it
// is, and none of the headers eslapp sets itself.
func CheckEventHeaderName(name string) error {
	if !esl.IsEventHeaderName(name) {
		return errors.New("not a header eslapp may set: it frames the message or routes the event")
	}
	for _, h := range eslappHeaders {
		if strings.EqualFold(h, name) {
			return errors.New("not a header a flow may set: eslapp sets it on every event")
		}
	}
	return nil
}

func (n *customEventNode) targets() []target { return next(n.next) }
func (n *customEventNode) ends() bool        { return false }
func (n *customEventNode) reads() map[string][]string {
	r := readsOf{}
	for _, h := range n.headers {
		r.add("headers", h.Value.Refs())
	}
	r.add("body", n.body.Refs())
	return r
}

func (n *customEventNode) writes() []string                { return nil }
func (n *customEventNode) sequences() map[string]*Sequence { return nil }
func (n *customEventNode) drawing() drawing                { return drawing{shape: ShapeAction} }
func (n *customEventNode) hold(*call) hold                 { return hold{} }

func (n *customEventNode) run(ctx context.Context, c *call, log *slog.Logger) string {
	headers := []esl.EventHeader{{Name: headerCallUUID, Value: c.ch.UUID()}}
	if b, ok := c.vars.Get("wfe_branch"); ok {
		headers = append(headers, esl.EventHeader{Name: headerBranch, Value: b.Text()})
	}
	for _, h := range n.headers {
		v, _ := h.Value.Render(c.vars)
		v = strings.TrimSpace(esl.NormalizeSpeech(v))
		if v == "" {
			continue // FreeSWITCH drops empty headers
		}
		err := CheckEventHeaderName(h.Name)
		if err == nil {
			err = esl.CheckEventHeader(h.Name, v)
		}
		if err != nil {
			// One header the event cannot carry does not cost the others.
			log.Warn("custom_event header left out", "header", h.Name, "err", err)
			continue
		}
		headers = append(headers, esl.EventHeader{Name: h.Name, Value: v})
	}
	var body []byte
	if n.body != nil {
		b, warnings, err := n.body.Render(c.vars, maxPayloadBytes)
		for _, w := range warnings {
			log.Warn("custom_event body: unknown value", "warning", w)
		}
		if err != nil {
			log.Warn("custom_event body not sent", "err", err)
		} else {
			body = b
		}
	}
	if _, err := c.ch.SendEvent(ctx, n.subclass, headers, body); err != nil {
		log.Warn("custom event not sent", "err", err)
	}
	return n.next
}

// resultEvent is the headers and body of an event carrying a step's
// result to the agent: the call, the branch, timing (timeHeader), the
// integration and workflow, and the result JSON (or the error JSON).
func resultEvent(uuid, configID, workflowID string, res crm.Result, timeHeader, timeValue string) ([]esl.EventHeader, []byte) {
	headers := []esl.EventHeader{
		{Name: headerCallUUID, Value: uuid},
		{Name: headerBranch, Value: string(res.Branch)},
		{Name: timeHeader, Value: timeValue},
	}
	if crm.ValidID(configID) {
		headers = append(headers, esl.EventHeader{Name: headerConfigID, Value: configID})
	}
	if crm.ValidID(workflowID) {
		headers = append(headers, esl.EventHeader{Name: headerWorkflowID, Value: workflowID})
	}
	body := []byte(res.Body)
	if len(body) == 0 && res.Err != nil {
		body, _ = json.Marshal(res.Err)
	}
	return headers, body
}

// agentEvent fires the agent event after a step, when the step asks for
// it: a CUSTOM event of DefaultSubclass whose headers name the call and the
// step, and whose body is the result (or the error) JSON.
func (e *Engine) agentEvent(ctx context.Context, c *call, rep stepReport) {
	if !rep.spec.AgentEvent || ctx.Err() != nil {
		return
	}
	headers, body := resultEvent(c.ch.UUID(), rep.configID, rep.workflowID, rep.res, headerElapsedMs, elapsedMs(rep.elapsed))
	if _, err := c.ch.SendEvent(ctx, DefaultSubclass, headers, body); err != nil {
		c.log.Warn("agent event not sent", "err", err)
	}
}
