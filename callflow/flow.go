package callflow

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/eslapp/eslapp/crm"
	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/prompts"
)

// FlowConfig is [flows.NAME] as written in the configuration.
type FlowConfig struct {
	Start   string                  `toml:"start"`
	Actions map[string]ActionConfig `toml:"actions"`
}

// ActionConfig is [flows.NAME.actions.ID]. Which keys apply depends on Type;
// Compile rejects the others.
type ActionConfig struct {
	Type    string `toml:"type"`
	Caption string `toml:"caption"`
	Next    string `toml:"next"`

	// workflow_execute (and play: Sequence)
	Tenant       string            `toml:"tenant"`
	ConfigID     string            `toml:"config_id"`
	WorkflowID   string            `toml:"workflow_id"`
	Payload      string            `toml:"payload"`
	Sequence     string            `toml:"sequence"`
	TimeoutMs    int64             `toml:"timeout_ms"`
	ResultVar    string            `toml:"result_var"`
	ErrorVar     string            `toml:"error_var"`
	PromptPolicy string            `toml:"prompt_policy"`
	GraceMs      int64             `toml:"grace_ms"`
	Mappings     map[string]string `toml:"mappings"`
	AgentEvent   bool              `toml:"agent_event"`
	Branches     map[string]string `toml:"branches"`

	// set
	Vars map[string]string `toml:"vars"`
	// transfer
	Destination string `toml:"destination"`
	// hangup
	Cause string `toml:"cause"`
	// custom_event
	Subclass string            `toml:"subclass"`
	Headers  map[string]string `toml:"headers"`
	Body     string            `toml:"body"`
}

// Action types.
const (
	TypeWorkflowExecute = "workflow_execute"
	TypePlay            = "play"
	TypeSet             = "set"
	TypeTransfer        = "transfer"
	TypeContinue        = "continue"
	TypeHangup          = "hangup"
	TypeCustomEvent     = "custom_event"
)

// Default is the branch a workflow_execute step takes when the outcome's own
// branch is not wired.
const Default = "Default"

// branchNames are the keys a workflow_execute action's branches may have.
var branchNames = []string{
	string(crm.OnSuccess), string(crm.OnTimeout), string(crm.OnInvalidInput),
	string(crm.OnInvalidWorkflow), string(crm.OnAgentIntegrationDisabled),
	string(crm.OnError), Default,
}

// Prompt policies: what happens to the prompt when the outcome is known.
const (
	PolicyInterrupt = "interrupt" // stop it at once (default)
	PolicyComplete  = "complete"  // let the sequence finish, then branch
	PolicyLoop      = "loop"      // repeat the sequence until the outcome
)

// FieldError is a problem in the configuration at a key ("flows", NAME,
// "actions", ID, KEY...).
type FieldError struct {
	Key []string
	Msg string
}

func (e *FieldError) Error() string { return strings.Join(e.Key, ".") + ": " + e.Msg }

// FieldErrors is every problem found.
type FieldErrors []*FieldError

func (es FieldErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Flow is a compiled, checked flow.
type Flow struct {
	Name    string
	Start   string
	Actions map[string]*Action
	// Reads are the variables (lower case) the flow's templates read: the
	// channel variables a call must keep for it (see call.retainChannel).
	Reads map[string]bool
}

// Action is a compiled action.
type Action struct {
	ID      string
	Type    string
	Caption string
	Next    string

	Step *StepSpec // workflow_execute

	Sequence *prompts.Sequence // play (and the step's prompt, in Step)

	Set []SetSpec // set

	// Destination is a transfer's "EXT [DIALPLAN] CONTEXT", a template per
	// word: a value from a variable fills one word and cannot add others.
	Destination []*Template

	Cause string // hangup

	Subclass string           // custom_event
	Headers  []HeaderSpec     // custom_event
	Body     *PayloadTemplate // custom_event; nil: the last step's result
}

// SetSpec is one assignment of a set action.
type SetSpec struct {
	Name  string
	Value *Template
}

// HeaderSpec is one header of a custom event.
type HeaderSpec struct {
	Name  string
	Value *Template
}

// StepSpec is a workflow_execute step's inputs, from a flow action or from
// the channel variables of dialplan mode.
type StepSpec struct {
	Caption      string
	Tenant       *Template
	ConfigID     *Template
	WorkflowID   *Template
	Payload      *PayloadTemplate
	Sequence     *prompts.Sequence
	TimeoutMs    int64 // 0: channel timeoutMilliSec, then the integration's
	ResultVar    string
	ErrorVar     string
	PromptPolicy string
	GraceMs      int64
	Mappings     []Mapping
	AgentEvent   bool
	Branches     map[string]string
}

// Mapping copies a part of the step's result to a channel variable
// (dynamic data mapping): mappings = { crm_contact_id = "result.records[0].id" }.
type Mapping struct {
	Var  string
	Path Expr // evaluated with "result" bound to the step's result
}

// Default output variables (BRIEF §1).
const (
	DefaultResultVar = "workflowResultOutput"
	DefaultErrorVar  = "workflowErrorOutput"
)

// compiler checks one flow.
type compiler struct {
	name     string
	renderer *prompts.Renderer
	errs     FieldErrors
}

func (c *compiler) errorf(key []string, format string, args ...any) {
	full := append([]string{"flows", c.name}, key...)
	c.errs = append(c.errs, &FieldError{Key: full, Msg: fmt.Sprintf(format, args...)})
}

// CompileFlows checks every flow and returns them compiled, or FieldErrors
// naming each problem's key.
func CompileFlows(cfgs map[string]FlowConfig, renderer *prompts.Renderer) (map[string]*Flow, error) {
	flows := make(map[string]*Flow, len(cfgs))
	var errs FieldErrors
	for _, name := range sortedKeys(cfgs) {
		c := &compiler{name: name, renderer: renderer}
		f := c.compile(name, cfgs[name])
		errs = append(errs, c.errs...)
		flows[name] = f
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return flows, nil
}

func (c *compiler) compile(name string, cfg FlowConfig) *Flow {
	f := &Flow{Name: name, Start: cfg.Start, Actions: make(map[string]*Action, len(cfg.Actions))}
	if !isFlowName(name) {
		c.errorf(nil, "flow names are letters, digits, '_' and '-'")
	}
	if len(cfg.Actions) == 0 {
		c.errorf([]string{"actions"}, "a flow needs at least one action")
		return f
	}
	switch {
	case cfg.Start == "":
		c.errorf([]string{"start"}, "missing: name the first action")
	case cfg.Actions[cfg.Start].Type == "" && !hasKey(cfg.Actions, cfg.Start):
		c.errorf([]string{"start"}, "no action %q in this flow", cfg.Start)
	}
	for _, id := range sortedKeys(cfg.Actions) {
		if a := c.action(id, cfg.Actions[id]); a != nil {
			f.Actions[id] = a
		}
	}
	for _, id := range sortedKeys(f.Actions) {
		a := f.Actions[id]
		for _, t := range a.targets() {
			if _, ok := f.Actions[t.to]; !ok && hasKey(cfg.Actions, t.to) {
				continue // the target exists but did not compile: reported there
			} else if !ok {
				c.errorf(append([]string{"actions", id}, t.key...), "no action %q in this flow", t.to)
			}
		}
	}
	if len(c.errs) == 0 {
		c.checkGraph(f)
	}
	f.Reads = map[string]bool{}
	for _, a := range f.Actions {
		for _, roots := range a.refRoots() {
			for _, r := range roots {
				f.Reads[lowerASCII(r)] = true
			}
		}
	}
	return f
}

type target struct {
	key []string
	to  string
}

// targets are the actions an action can lead to.
func (a *Action) targets() []target {
	var ts []target
	if a.Next != "" {
		ts = append(ts, target{[]string{"next"}, a.Next})
	}
	if a.Step != nil {
		for _, b := range sortedKeys(a.Step.Branches) {
			ts = append(ts, target{[]string{"branches", b}, a.Step.Branches[b]})
		}
	}
	return ts
}

// ends reports whether the flow can end at this action: it hands the call
// over, or it is a step whose unwired outcomes go back to the dialplan.
func (a *Action) ends() bool {
	switch a.Type {
	case TypeTransfer, TypeContinue, TypeHangup:
		return true
	case TypeWorkflowExecute:
		_, hasDefault := a.Step.Branches[Default]
		return !hasDefault && len(a.Step.Branches) < len(branchNames)-1
	}
	return false
}

// checkGraph finds actions nothing reaches and actions from which the flow
// cannot end.
func (c *compiler) checkGraph(f *Flow) {
	reached := map[string]bool{}
	var visit func(id string)
	visit = func(id string) {
		if reached[id] {
			return
		}
		reached[id] = true
		for _, t := range f.Actions[id].targets() {
			visit(t.to)
		}
	}
	if _, ok := f.Actions[f.Start]; !ok {
		return
	}
	visit(f.Start)
	for _, id := range sortedKeys(f.Actions) {
		if !reached[id] {
			c.errorf([]string{"actions", id}, "no action leads here, and it is not the start")
		}
	}
	// canEnd: fixed point over "ends, or leads to an action that can end".
	canEnd := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for id, a := range f.Actions {
			if canEnd[id] {
				continue
			}
			ok := a.ends()
			for _, t := range a.targets() {
				ok = ok || canEnd[t.to]
			}
			if ok {
				canEnd[id], changed = true, true
			}
		}
	}
	for _, id := range sortedKeys(f.Actions) {
		if reached[id] && !canEnd[id] {
			c.errorf([]string{"actions", id}, "the flow cannot end from here: every path loops without reaching transfer, continue or hangup")
		}
	}
}

// allowed lists, per type, the keys an action may set besides type and
// caption.
var allowed = map[string][]string{
	TypeWorkflowExecute: {"tenant", "config_id", "workflow_id", "payload", "sequence", "timeout_ms", "result_var", "error_var", "prompt_policy", "grace_ms", "mappings", "agent_event", "branches"},
	TypePlay:            {"sequence", "next"},
	TypeSet:             {"vars", "next"},
	TypeTransfer:        {"destination"},
	TypeContinue:        {},
	TypeHangup:          {"cause"},
	TypeCustomEvent:     {"subclass", "headers", "body", "next"},
}

func (c *compiler) action(id string, cfg ActionConfig) *Action {
	key := func(k ...string) []string { return append([]string{"actions", id}, k...) }
	if !isFlowName(id) {
		c.errorf(key(), "action ids are letters, digits, '_' and '-'")
	}
	keys, ok := allowed[cfg.Type]
	if !ok {
		if cfg.Type == "" {
			c.errorf(key("type"), "missing: one of %s", strings.Join(sortedKeys(allowed), ", "))
		} else {
			c.errorf(key("type"), "unknown action type %q (one of %s)", cfg.Type, strings.Join(sortedKeys(allowed), ", "))
		}
		return nil
	}
	for _, k := range cfg.setKeys() {
		if !slices.Contains(keys, k) {
			c.errorf(key(k), "not used by a %s action", cfg.Type)
		}
	}
	a := &Action{ID: id, Type: cfg.Type, Caption: cfg.Caption, Next: cfg.Next}
	switch cfg.Type {
	case TypeWorkflowExecute:
		a.Step = c.step(key, cfg)
	case TypePlay:
		c.require(key("sequence"), cfg.Sequence)
		c.require(key("next"), cfg.Next)
		a.Sequence = c.sequence(key("sequence"), cfg.Sequence)
	case TypeSet:
		c.require(key("next"), cfg.Next)
		if len(cfg.Vars) == 0 {
			c.errorf(key("vars"), "missing: the variables to set, e.g. vars = { greeting = \"Hello {ANI}\" }")
		}
		for _, name := range sortedKeys(cfg.Vars) {
			if !esl.IsVarName(name) {
				c.errorf(key("vars", name), "not a variable name")
				continue
			}
			a.Set = append(a.Set, SetSpec{Name: name, Value: c.template(key("vars", name), cfg.Vars[name])})
		}
	case TypeTransfer:
		c.require(key("destination"), cfg.Destination)
		words := strings.Fields(cfg.Destination)
		if cfg.Destination != "" && (len(words) < 2 || len(words) > 3) {
			c.errorf(key("destination"), "transfer destination %q: want \"EXTENSION XML CONTEXT\"", cfg.Destination)
		}
		literal := true
		for _, w := range words {
			t := c.template(key("destination"), w)
			a.Destination = append(a.Destination, t)
			literal = literal && t != nil && len(t.Refs()) == 0
		}
		if literal && len(words) >= 2 && len(words) <= 3 {
			if _, _, _, err := ParseDestination(cfg.Destination); err != nil {
				c.errorf(key("destination"), "%v", err)
			}
		}
	case TypeHangup:
		a.Cause = cfg.Cause
		if a.Cause == "" {
			a.Cause = "NORMAL_CLEARING"
		} else if !isCauseName(a.Cause) {
			c.errorf(key("cause"), "%q is not a hangup cause (e.g. NORMAL_CLEARING, USER_BUSY, 16)", a.Cause)
		}
	case TypeCustomEvent:
		c.require(key("next"), cfg.Next)
		a.Subclass = cfg.Subclass
		if a.Subclass == "" {
			a.Subclass = DefaultSubclass
		} else if !isSubclass(a.Subclass) {
			c.errorf(key("subclass"), "%q is not an event subclass (e.g. eslapp::workflow_result)", a.Subclass)
		}
		for _, name := range sortedKeys(cfg.Headers) {
			if !isHeaderName(name) || reservedHeader(name) {
				c.errorf(key("headers", name), "not a header eslapp may set")
				continue
			}
			a.Headers = append(a.Headers, HeaderSpec{Name: name, Value: c.template(key("headers", name), cfg.Headers[name])})
		}
		if cfg.Body != "" {
			a.Body = c.payload(key("body"), cfg.Body)
		}
	}
	return a
}

func (c *compiler) step(key func(...string) []string, cfg ActionConfig) *StepSpec {
	s := &StepSpec{
		Caption:      cfg.Caption,
		TimeoutMs:    cfg.TimeoutMs,
		ResultVar:    cfg.ResultVar,
		ErrorVar:     cfg.ErrorVar,
		PromptPolicy: cfg.PromptPolicy,
		GraceMs:      cfg.GraceMs,
		AgentEvent:   cfg.AgentEvent,
		Branches:     cfg.Branches,
	}
	c.require(key("config_id"), cfg.ConfigID)
	c.require(key("workflow_id"), cfg.WorkflowID)
	s.ConfigID = c.template(key("config_id"), cfg.ConfigID)
	s.WorkflowID = c.template(key("workflow_id"), cfg.WorkflowID)
	if cfg.Tenant != "" {
		s.Tenant = c.template(key("tenant"), cfg.Tenant)
	}
	if cfg.Payload != "" {
		s.Payload = c.payload(key("payload"), cfg.Payload)
	}
	if cfg.Sequence != "" {
		s.Sequence = c.sequence(key("sequence"), cfg.Sequence)
	}
	if s.TimeoutMs < 0 {
		c.errorf(key("timeout_ms"), "must be positive, in milliseconds")
	}
	if s.GraceMs < 0 {
		c.errorf(key("grace_ms"), "must be 0 or more, in milliseconds")
	}
	if s.ResultVar == "" {
		s.ResultVar = DefaultResultVar
	} else if !esl.IsVarName(s.ResultVar) {
		c.errorf(key("result_var"), "%q is not a variable name", s.ResultVar)
	}
	if s.ErrorVar == "" {
		s.ErrorVar = DefaultErrorVar
	} else if !esl.IsVarName(s.ErrorVar) {
		c.errorf(key("error_var"), "%q is not a variable name", s.ErrorVar)
	}
	switch s.PromptPolicy {
	case "":
		s.PromptPolicy = PolicyInterrupt
	case PolicyInterrupt, PolicyComplete, PolicyLoop:
	default:
		c.errorf(key("prompt_policy"), "%q: one of interrupt, complete, loop", s.PromptPolicy)
	}
	for _, b := range sortedKeys(cfg.Branches) {
		if !slices.Contains(branchNames, b) {
			c.errorf(key("branches", b), "unknown branch (one of %s)", strings.Join(branchNames, ", "))
		}
	}
	for _, name := range sortedKeys(cfg.Mappings) {
		if !esl.IsVarName(name) {
			c.errorf(key("mappings", name), "not a variable name")
			continue
		}
		e, err := ParseExpr(cfg.Mappings[name])
		if err != nil {
			c.errorf(key("mappings", name), "%v", err)
			continue
		}
		if e.Root() != "result" {
			c.errorf(key("mappings", name), "a mapping reads the step's result: start it with \"result\", e.g. \"result.records[0].id\"")
			continue
		}
		s.Mappings = append(s.Mappings, Mapping{Var: name, Path: e})
	}
	return s
}

func (c *compiler) require(key []string, v string) {
	if v == "" {
		c.errorf(key, "missing")
	}
}

func (c *compiler) template(key []string, s string) *Template {
	t, err := ParseTemplate(s)
	if err != nil {
		c.errorf(key, "%v", err)
		return nil
	}
	return t
}

func (c *compiler) payload(key []string, s string) *PayloadTemplate {
	p, err := ParsePayload(s)
	if err != nil {
		c.errorf(key, "%v", err)
		return nil
	}
	return p
}

func (c *compiler) sequence(key []string, s string) *prompts.Sequence {
	if s == "" || c.renderer == nil {
		return nil
	}
	q, err := c.renderer.Parse(s)
	if err != nil {
		c.errorf(key, "%v", err)
		return nil
	}
	return q
}

// setKeys lists the keys the action config sets, besides type and caption.
func (cfg ActionConfig) setKeys() []string {
	var ks []string
	add := func(k string, set bool) {
		if set {
			ks = append(ks, k)
		}
	}
	add("next", cfg.Next != "")
	add("tenant", cfg.Tenant != "")
	add("config_id", cfg.ConfigID != "")
	add("workflow_id", cfg.WorkflowID != "")
	add("payload", cfg.Payload != "")
	add("sequence", cfg.Sequence != "")
	add("timeout_ms", cfg.TimeoutMs != 0)
	add("result_var", cfg.ResultVar != "")
	add("error_var", cfg.ErrorVar != "")
	add("prompt_policy", cfg.PromptPolicy != "")
	add("grace_ms", cfg.GraceMs != 0)
	add("mappings", len(cfg.Mappings) > 0)
	add("agent_event", cfg.AgentEvent)
	add("branches", len(cfg.Branches) > 0)
	add("vars", len(cfg.Vars) > 0)
	add("destination", cfg.Destination != "")
	add("cause", cfg.Cause != "")
	add("subclass", cfg.Subclass != "")
	add("headers", len(cfg.Headers) > 0)
	add("body", cfg.Body != "")
	return ks
}

// ParseDestination splits a transfer destination "EXT [DIALPLAN] CONTEXT"
// (dialplan defaults to XML) and checks each word.
func ParseDestination(s string) (ext, dialplan, context string, err error) {
	f := strings.Fields(s)
	switch len(f) {
	case 2:
		ext, dialplan, context = f[0], "XML", f[1]
	case 3:
		ext, dialplan, context = f[0], f[1], f[2]
	default:
		return "", "", "", fmt.Errorf("transfer destination %q: want \"EXTENSION XML CONTEXT\"", s)
	}
	if _, err := esl.TransferArg(ext, dialplan, context); err != nil {
		return "", "", "", fmt.Errorf("transfer destination %q: %w", s, err)
	}
	return ext, dialplan, context, nil
}

func isFlowName(s string) bool   { return isName(s, 64, "_-", true) }
func isCauseName(s string) bool  { return isName(s, 64, "_", false) }
func isSubclass(s string) bool   { return isName(s, 128, "_:-.", true) }
func isHeaderName(s string) bool { return isName(s, 64, "_-", true) }

// isName reports whether s is 1 to max bytes of digits, upper-case letters,
// lower-case letters when lower, and the bytes of extra.
func isName(s string, max int, extra string, lower bool) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, r := range s {
		ok := 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || lower && 'a' <= r && r <= 'z' || strings.ContainsRune(extra, r)
		if !ok {
			return false
		}
	}
	return true
}

// reservedHeader: headers eslapp sets on its events itself, or that change
// how FreeSWITCH routes an event.
func reservedHeader(name string) bool {
	switch strings.ToLower(name) {
	case "unique-id", "content-length", "content-type", "event-name", "event-subclass", "event-uuid", "command",
		"call-uuid", "workflow-branch", "workflow-config-id", "workflow-id", "workflow-elapsed-ms", "workflow-caption":
		return true
	}
	return false
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Lint returns warnings about a compiled flow: references to variables
// the flow never sets and that are not built in. Such a variable must come
// from the channel (the dialplan) — or it is a typo, which renders empty at
// run time. Keys are like FieldError's.
func Lint(flows map[string]*Flow) FieldErrors {
	var warns FieldErrors
	for _, name := range sortedKeys(flows) {
		f := flows[name]
		known := map[string]bool{"ani": true, "dnis": true, "contactid": true, "caller_id_name": true, "caller_id_number": true,
			"destination_number": true, "wfe_branch": true, "wfe_elapsed_ms": true}
		for _, a := range f.Actions {
			if a.Step != nil {
				known[strings.ToLower(a.Step.ResultVar)] = true
				known[strings.ToLower(a.Step.ErrorVar)] = true
				for _, m := range a.Step.Mappings {
					known[strings.ToLower(m.Var)] = true
				}
			}
			for _, s := range a.Set {
				known[strings.ToLower(s.Name)] = true
			}
		}
		for _, id := range sortedKeys(f.Actions) {
			a := f.Actions[id]
			check := func(key string, roots []string) {
				for _, r := range roots {
					if !known[strings.ToLower(r)] && !strings.HasPrefix(r, "wfe_") {
						warns = append(warns, &FieldError{
							Key: []string{"flows", name, "actions", id, key},
							Msg: fmt.Sprintf("{%s} is not set by this flow: it must be a channel variable, or it renders empty", r),
						})
					}
				}
			}
			for key, roots := range a.refRoots() {
				check(key, roots)
			}
		}
	}
	return warns
}

// refRoots lists, per key of the action, the variables its templates read.
func (a *Action) refRoots() map[string][]string {
	roots := map[string][]string{}
	addT := func(key string, t *Template) {
		if t != nil {
			for _, e := range t.Refs() {
				roots[key] = append(roots[key], e.Root())
			}
		}
	}
	addP := func(key string, p *PayloadTemplate) {
		if p != nil {
			for _, e := range p.Refs() {
				roots[key] = append(roots[key], e.Root())
			}
		}
	}
	addS := func(key string, q *prompts.Sequence) {
		if q != nil {
			for _, ref := range q.Refs() {
				if e, err := ParseExpr(ref); err == nil {
					roots[key] = append(roots[key], e.Root())
				}
			}
		}
	}
	if s := a.Step; s != nil {
		addT("config_id", s.ConfigID)
		addT("workflow_id", s.WorkflowID)
		addT("tenant", s.Tenant)
		addP("payload", s.Payload)
		addS("sequence", s.Sequence)
	}
	addS("sequence", a.Sequence)
	for _, s := range a.Set {
		addT("vars", s.Value)
	}
	for _, w := range a.Destination {
		addT("destination", w)
	}
	for _, h := range a.Headers {
		addT("headers", h.Value)
	}
	addP("body", a.Body)
	return roots
}
