package callflow

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/eslapp/eslapp/conf"
	"github.com/eslapp/eslapp/crm"
	"github.com/eslapp/eslapp/esl"
)

// workflow_execute: the Workflow Execute step — the CRM workflow runs while
// the prompt plays — then its outcome's branch (else Default, else back to
// the dialplan).

type stepConfig struct {
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
	Mappings     map[string]any    `toml:"mappings"`
	AgentEvent   bool              `toml:"agent_event"`
	Branches     map[string]string `toml:"branches"`
	// LateResultMs keeps the request open that long past an OnTimeout
	// and delivers a late answer to the agent (late.go); 0: off.
	LateResultMs  int64  `toml:"late_result_ms"`
	LateResultVar string `toml:"late_result_var"`
}

// StepSpec is a workflow_execute step's inputs, from a flow action or from
// the channel variables of dialplan mode.
type StepSpec struct {
	Caption      string
	Tenant       *Template
	ConfigID     *Template
	WorkflowID   *Template
	Payload      *PayloadTemplate
	Sequence     *Sequence
	TimeoutMs    int64 // 0: channel timeoutMilliSec, then the integration's
	ResultVar    string
	ErrorVar     string
	PromptPolicy string
	GraceMs      int64
	Mappings     []Mapping
	AgentEvent   bool
	Branches     map[string]string
	// LateResultMs is the late-result window (0: none), LateResultVar the
	// channel variable a late answer goes to (default
	// workflowLateResultOutput).
	LateResultMs  int64
	LateResultVar string
}

// Mapping copies a part of the step's result to a channel variable
// (dynamic data mapping): mappings = { crm_contact_id = "result.records[0].id" },
// or typed: { crm_agent = { path = "result.agent.ext", type = "digits" } }
// (see mapping.go).
type Mapping struct {
	Var  string
	Path Expr // evaluated with "result" bound to the step's result
	Type MappingType
}

// Default output variables: where a step's result and error go unless
// result_var and error_var (wfe_result_var, wfe_error_var) name others.
const (
	DefaultResultVar = "workflowResultOutput"
	DefaultErrorVar  = "workflowErrorOutput"
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

// ParsePolicy checks a prompt policy ("" is the default, interrupt): the
// one rule for flows, wfe_prompt_policy and [prompts] policy.
func ParsePolicy(s string) (string, error) {
	switch s {
	case "":
		return PolicyInterrupt, nil
	case PolicyInterrupt, PolicyComplete, PolicyLoop:
		return s, nil
	}
	return "", &policyError{s}
}

type policyError struct{ s string }

func (e *policyError) Error() string {
	return "\"" + conf.Clip(e.s, 40) + "\": one of interrupt, complete, loop"
}

type stepNode struct{ spec *StepSpec }

func (*stepNode) keys() []string {
	return []string{"tenant", "config_id", "workflow_id", "payload", "sequence", "timeout_ms", "result_var", "error_var",
		"prompt_policy", "grace_ms", "mappings", "agent_event", "branches", "late_result_ms", "late_result_var"}
}

func (*stepNode) compile(d *decoder) actionType {
	var cfg stepConfig
	if !d.decode(&cfg) {
		return nil
	}
	s := &StepSpec{
		Caption:    d.caption,
		ResultVar:  cfg.ResultVar,
		ErrorVar:   cfg.ErrorVar,
		GraceMs:    cfg.GraceMs,
		AgentEvent: cfg.AgentEvent,
		Branches:   cfg.Branches,
	}
	key := func(k ...string) []string { return k }
	d.require("config_id", cfg.ConfigID)
	d.require("workflow_id", cfg.WorkflowID)
	s.ConfigID = d.template(key("config_id"), cfg.ConfigID)
	s.WorkflowID = d.template(key("workflow_id"), cfg.WorkflowID)
	if cfg.Tenant != "" {
		s.Tenant = d.template(key("tenant"), cfg.Tenant)
	}
	if cfg.Payload != "" {
		s.Payload = d.payload(key("payload"), cfg.Payload)
	}
	if cfg.Sequence != "" {
		s.Sequence = d.sequence(key("sequence"), cfg.Sequence)
	}
	if d.written("timeout_ms") {
		// The rule the CRM applies to every timeout: written, it must hold.
		if err := crm.CheckTimeoutMs(cfg.TimeoutMs); err != nil {
			d.errorf(key("timeout_ms"), "%v", err)
		}
		s.TimeoutMs = cfg.TimeoutMs
	}
	if s.GraceMs < 0 {
		d.errorf(key("grace_ms"), "must be 0 or more, in milliseconds")
	}
	if d.written("late_result_ms") {
		if err := crm.CheckTimeoutMs(cfg.LateResultMs); err != nil {
			d.errorf(key("late_result_ms"), "%v", err)
		}
		s.LateResultMs = cfg.LateResultMs
	}
	if s.LateResultVar = cfg.LateResultVar; s.LateResultVar != "" && !esl.IsVarName(s.LateResultVar) {
		d.errorf(key("late_result_var"), "%q is not a variable name", s.LateResultVar)
	}
	if s.ResultVar == "" {
		s.ResultVar = DefaultResultVar
	} else if !esl.IsVarName(s.ResultVar) {
		d.errorf(key("result_var"), "%q is not a variable name", s.ResultVar)
	}
	if s.ErrorVar == "" {
		s.ErrorVar = DefaultErrorVar
	} else if !esl.IsVarName(s.ErrorVar) {
		d.errorf(key("error_var"), "%q is not a variable name", s.ErrorVar)
	}
	var err error
	if s.PromptPolicy, err = ParsePolicy(cfg.PromptPolicy); err != nil {
		d.errorf(key("prompt_policy"), "%v", err)
	}
	for _, b := range slices.Sorted(maps.Keys(cfg.Branches)) {
		if !slices.Contains(branchNames, b) {
			d.errorf(key("branches", b), "unknown branch (one of %s)", strings.Join(branchNames, ", "))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Mappings)) {
		if !esl.IsVarName(name) {
			d.errorf(key("mappings", name), "not a variable name")
			continue
		}
		if m, ok := d.parseMapping(name, cfg.Mappings[name]); ok {
			s.Mappings = append(s.Mappings, m)
		}
	}
	return &stepNode{s}
}

func (n *stepNode) targets() []target {
	var ts []target
	for _, b := range slices.Sorted(maps.Keys(n.spec.Branches)) {
		ts = append(ts, target{[]string{"branches", b}, n.spec.Branches[b]})
	}
	return ts
}

// ends: a step whose outcomes are not all wired (and no Default) hands
// those back to the dialplan.
func (n *stepNode) ends() bool {
	_, hasDefault := n.spec.Branches[Default]
	return !hasDefault && len(n.spec.Branches) < len(branchNames)-1
}

func (n *stepNode) reads() map[string][]string {
	r := readsOf{}
	r.template("config_id", n.spec.ConfigID)
	r.template("workflow_id", n.spec.WorkflowID)
	r.template("tenant", n.spec.Tenant)
	r.payload("payload", n.spec.Payload)
	r.sequence("sequence", n.spec.Sequence)
	return r
}

// writes: the result and error variables, and the mappings'.
func (n *stepNode) writes() []string {
	vars := []string{n.spec.ResultVar, n.spec.ErrorVar}
	for _, m := range n.spec.Mappings {
		vars = append(vars, m.Var)
	}
	return vars
}

func (n *stepNode) sequences() map[string]*Sequence {
	return map[string]*Sequence{"sequence": n.spec.Sequence}
}

// drawing: a hexagon naming the workflow; without Default, the outcomes
// no branch names go back to the dialplan.
func (n *stepNode) drawing() drawing {
	d := drawing{shape: ShapeStep, detail: n.spec.ConfigID.String() + " / " + n.spec.WorkflowID.String()}
	if _, ok := n.spec.Branches[Default]; !ok && n.ends() {
		d.exits = []exit{{label: "other outcomes", implicit: true, problem: "no Default: other outcomes go back to the dialplan"}}
	}
	return d
}

func (n *stepNode) run(ctx context.Context, c *call, _ *slog.Logger) string {
	rep := c.runStep(ctx, n.spec, nil)
	c.e.report(c, rep)
	if rep.hangup {
		return ""
	}
	c.applyStep(rep)
	if c.fault != nil {
		c.overrideOnFault()
		c.e.leave(ctx, c)
		return ""
	}
	c.e.agentEvent(ctx, c, rep)
	id := n.spec.Branches[string(rep.res.Branch)]
	if id == "" {
		id = n.spec.Branches[Default]
	}
	if id == "" {
		c.e.leave(ctx, c)
	}
	return id
}
