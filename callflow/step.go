package callflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/eslapp/eslapp/crm"
	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/prompts"
)

// stepReport is what one workflow_execute step did, for the outputs, the
// branch, the log line and the metrics.
type stepReport struct {
	spec       *StepSpec
	id         string
	configID   string
	workflowID string
	res        crm.Result
	hangup     bool
	shutdown   bool          // ended by eslapp's shutdown, not the caller (hangup is set too)
	elapsed    time.Duration // from reading the inputs to the outcome
	policy     string
	promptFrom time.Time // first prompt application started (zero: none)
	promptTo   time.Time // prompt stopped or finished
	decidedAt  time.Time // outcome known
	breakAt    time.Time // uuid_break written (zero: none needed)
	promptErr  error
}

// runStep runs a Workflow Execute step: the workflow and the prompt start
// together; the outcome, when it comes, stops the prompt as the policy says.
// It returns once the prompt no longer plays; a zombie prompt left by the
// break is watched by every later turn of the call's loop.
func (c *call) runStep(ctx context.Context, spec *StepSpec, inputErr error) stepReport {
	start := time.Now()
	c.steps++
	rep := stepReport{spec: spec, id: fmt.Sprintf("%s#%d", stepName(spec), c.steps), policy: spec.PromptPolicy}

	req := crm.Request{
		CallUUID:   c.ch.UUID(),
		StepID:     rep.id,
		InputError: inputErr,
	}
	var warnings []error
	render := func(t *Template) string {
		if t == nil {
			return ""
		}
		s, w := t.Render(c.vars)
		warnings = append(warnings, w...)
		return strings.TrimSpace(s)
	}
	req.Tenant = render(spec.Tenant)
	if req.Tenant == "" {
		req.Tenant = c.tenant()
	}
	req.ConfigID = render(spec.ConfigID)
	req.WorkflowID = render(spec.WorkflowID)
	rep.configID, rep.workflowID = req.ConfigID, req.WorkflowID
	if spec.Payload != nil && req.InputError == nil {
		payload, w, err := spec.Payload.Render(c.vars, maxPayloadBytes)
		warnings = append(warnings, w...)
		if err != nil {
			req.InputError = fmt.Errorf("payload: %w", err)
		}
		req.Payload = payload
	}
	var steps []prompts.Step
	if spec.Sequence != nil && req.InputError == nil {
		steps = c.renderSequence(spec.Sequence)
	}
	req.Timeout = c.e.crm.Timeout(req.ConfigID, spec.TimeoutMs, c.chanVar("timeoutMilliSec"))
	req.LateWindow, req.OnLate = c.lateResult(spec, req.ConfigID, req.WorkflowID)
	req.PathVars = c.pathVar
	for _, w := range warnings {
		c.log.Warn("step input references an unknown value", "step", rep.id, "warning", w)
	}

	st := &stepRun{c: c, spec: spec, rep: &rep, results: make(chan crm.Result, 1), steps: steps}
	prompt := true
	if res, rejected := c.e.crm.Precheck(req); rejected {
		// Decided without a request (invalid input, disabled integration,
		// undefined workflow): there is no wait to cover with a prompt.
		res.Latency = time.Since(start)
		st.results <- res
		prompt = false
	} else {
		go func() { st.results <- c.e.crm.Execute(ctx, req) }()
	}
	st.start = start
	c.prompt = &prompter{c: c, steps: steps, loop: spec.PromptPolicy == PolicyLoop, unbounded: req.Timeout}
	c.step = st
	defer func() { c.step = nil }()
	if spec.GraceMs > 0 && prompt {
		t := time.NewTimer(time.Duration(spec.GraceMs) * time.Millisecond)
		defer t.Stop()
		st.grace = t.C
		if c.ch.NeedsFiller() {
			// Nothing of the dialplan's plays any more: hold music fills
			// the grace, never silence.
			if err := c.prompt.playFiller(ctx); err != nil {
				rep.promptErr = err
			}
		}
	} else if prompt {
		st.startPrompt(ctx)
	}

	p := c.prompt
	err := c.loop(ctx, func() bool {
		return rep.hangup || st.decided && (!p.active() || spec.PromptPolicy != PolicyComplete || p.filler || c.fault != nil)
	})
	if err != nil {
		// The caller hung up, or eslapp's shutdown ended the call (the CRM
		// request derives from ctx: it is cancelled too).
		rep.hangup = true
		rep.shutdown = errors.Is(err, esl.ErrShutdown)
		return rep
	}
	if rep.hangup {
		return rep
	}
	rep.promptFrom, rep.promptTo = p.startedAt, p.stoppedAt
	if rep.promptErr != nil && !errors.Is(rep.promptErr, context.Canceled) {
		c.log.Warn("prompt", "err", rep.promptErr)
	}
	return rep
}

// stepRun is a running step's part of the call's loop: its CRM result and
// its grace timer.
type stepRun struct {
	c       *call
	spec    *StepSpec
	rep     *stepReport
	steps   []prompts.Step
	start   time.Time
	results chan crm.Result  // nil once decided
	grace   <-chan time.Time // nil unless the prompt waits for it
	decided bool
}

// startPrompt starts the sequence; without one the caller hears the hold
// music: never dead air.
func (st *stepRun) startPrompt(ctx context.Context) {
	p := st.c.prompt
	var err error
	if len(st.steps) == 0 {
		err = p.playFiller(ctx)
	} else {
		err = p.play(ctx, st.steps, 0)
	}
	if err != nil {
		st.rep.promptErr = err
	}
}

// decide takes the outcome: the prompt stops as the policy says.
func (st *stepRun) decide(ctx context.Context, res crm.Result) {
	rep, p := st.rep, st.c.prompt
	st.decided, st.results, st.grace = true, nil, nil
	rep.res, rep.decidedAt = res, time.Now()
	rep.elapsed = rep.decidedAt.Sub(st.start)
	if res.Hangup {
		rep.hangup = true
		return
	}
	if p.active() && (st.spec.PromptPolicy != PolicyComplete || p.filler) {
		sent, err := p.stop(ctx)
		rep.breakAt = sent
		if err != nil {
			st.c.log.Warn("uuid_break", "err", err)
		}
	}
}

// maxPayloadBytes bounds a rendered payload before the integration's own
// limit applies; it only stops runaway templates.
const maxPayloadBytes = 1 << 20

// renderSequence resolves and renders a prompt sequence. A segment whose
// value cannot be played (a currency of "abc", text with nothing to say)
// is left out with a warning, rather than silencing the whole prompt.
func (c *call) renderSequence(q *Sequence) []prompts.Step {
	res := prompts.ResolverFunc(func(ref string) (string, error) {
		e, ok := q.refs[ref]
		if !ok {
			return "", fmt.Errorf("{%s} was not compiled", ref) // a bug: CompileSequence takes every reference
		}
		v, err := e.Eval(c.vars)
		if err != nil {
			c.log.Warn("prompt references an unknown value; it is left empty", "ref", ref, "err", err)
			return "", nil
		}
		return v.Text(), nil
	})
	segs, err := q.q.Resolve(res)
	if err != nil {
		c.log.Warn("prompt not played", "err", err)
		return nil
	}
	steps, err := c.e.renderer.Render(segs)
	if err == nil {
		return steps
	}
	var good []prompts.Resolved
	for _, s := range segs {
		if _, err := c.e.renderer.Render([]prompts.Resolved{s}); err != nil {
			c.log.Warn("prompt segment left out", "column", s.Column, "err", err)
			continue
		}
		good = append(good, s)
	}
	steps, _ = c.e.renderer.Render(good)
	return steps
}

// applyStep records a step's outputs: in the call's variables for the rest
// of the flow, and as channel variables set before the call leaves.
func (c *call) applyStep(rep stepReport) {
	spec := rep.spec
	res := rep.res
	if len(res.Body) > 0 {
		if err := c.vars.SetJSON(spec.ResultVar, res.Body); err != nil {
			c.vars.SetString(spec.ResultVar, string(res.Body))
		}
		c.setOutput(spec.ResultVar, string(res.Body))
	} else {
		c.vars.Unset(spec.ResultVar)
		c.setOutput(spec.ResultVar, "")
	}
	if res.Err != nil {
		b, _ := json.Marshal(res.Err)
		_ = c.vars.SetJSON(spec.ErrorVar, b)
		c.setOutput(spec.ErrorVar, string(b))
	} else {
		c.vars.Unset(spec.ErrorVar)
		c.setOutput(spec.ErrorVar, "")
	}
	c.setOutput("wfe_branch", string(res.Branch))
	c.setOutput("wfe_elapsed_ms", elapsedMs(rep.elapsed))
	c.vars.SetString("wfe_branch", string(res.Branch))
	if len(res.Body) > 0 {
		for _, m := range spec.Mappings {
			v, err := m.Path.Eval(c.resultScope(res.Body))
			if err != nil {
				c.log.Warn("mapping finds nothing in the result", "var", m.Var, "path", m.Path.String(), "err", err)
				continue
			}
			text := v.Text()
			if !m.Type.Accepts(text) {
				c.log.Warn("mapping value does not match its type; not stored", "var", m.Var, "path", m.Path.String(), "type", m.Type.Name, "bytes", len(text))
				c.e.metrics.mappingRejected(m.Type.Name)
				continue
			}
			c.vars.Set(m.Var, v)
			c.setOutput(m.Var, m.Type.Stored(text))
		}
	}
}

// resultScope is a variable scope holding only "result": the step's result,
// for its mappings.
func (c *call) resultScope(body json.RawMessage) *Vars {
	v := NewVars(nil, nil)
	_ = v.SetJSON("result", body)
	return v
}

func stepName(spec *StepSpec) string {
	if spec.Caption != "" {
		return spec.Caption
	}
	return "workflow_execute"
}
