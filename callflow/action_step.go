package callflow

import (
	"context"
	"log/slog"
	"maps"
	"slices"

	"github.com/eslapp/eslapp/conf"
	"github.com/eslapp/eslapp/crm"
)

// workflow_execute: the Workflow Execute step — the CRM workflow runs while
// the prompt plays — then its outcome's branch (else Default, else back to
// the dialplan). Its inputs are described in step_inputs.go, which dialplan
// mode reads as well.

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
	keys := make([]string, len(stepInputs))
	for i, in := range stepInputs {
		keys[i] = in.key
	}
	return keys
}

// compile reads every input of stepInputs from the action's table.
func (*stepNode) compile(d *decoder) actionType {
	s := newStepSpec(d.caption)
	ok := true
	for _, in := range stepInputs {
		ok = in.fromFlow(d, s) && ok
	}
	if !ok {
		return nil
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
	for _, in := range stepInputs {
		if in.refs != nil {
			r.add(in.key, in.refs(n.spec))
		}
	}
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
func (n *stepNode) hold(c *call) hold { return c.stepHold(n.spec) }

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
