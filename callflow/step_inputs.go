package callflow

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/eslapp/eslapp/crm"
	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/prompts"
)

// A workflow_execute step's inputs, described once. stepInputs names each
// input with its flow key, its dialplan-mode channel variable, its default
// and its rule, and both modes read them through it: the step type's compile
// from a flow action's keys (a problem is a check error at FILE:LINE: KEY), and
// parseDialplanInputs from the wfe_ channel variables (a problem makes the
// step OnInvalidInput, the message naming the variable). A value eslapp
// check accepts in a flow is therefore one a call accepts in a channel
// variable, and the other way round (TestCheckAndCallAgree runs every input
// both ways).

// stepInput is one input of a workflow_execute step.
type stepInput struct {
	key string // the flow action's key
	wfe string // dialplan mode's channel variable; "" for an input only flows have
	// def is the value an unset input has, written as a channel variable
	// would be; the input's own rule applies it ("" none). In dialplan mode
	// [prompts] policy and grace_ms replace the defaults of prompt_policy
	// and grace_ms (Config.DefaultPolicy, DefaultGraceMs).
	def string
	// refs are the references the input's value makes, for the variables
	// a flow reads (Lint, Flow.Reads); nil for an input that holds none.
	refs func(s *StepSpec) []Expr
	// required: a flow must write the key (check says "missing"). A call
	// whose channel variable is empty meets the same verdict in the CRM,
	// which refuses an empty id OnInvalidInput.
	required bool

	// The rule: exactly one of the four, by how the value is written. Each
	// checks the value and stores it in the spec, or returns what is wrong
	// with it (the message names no key: the caller adds the key or the
	// variable).
	//
	// text: a TOML string; the channel variable as it is. Applied to a
	// value that is not empty (an empty one is unset).
	text func(s *StepSpec, v string, r *prompts.Renderer) error
	// millis: a TOML integer; the channel variable's decimal digits.
	millis func(s *StepSpec, ms int64) error
	// flag: a TOML boolean; the channel variable read as FreeSWITCH's
	// switch_true reads it, which takes any text.
	flag func(s *StepSpec, on bool)
	// table: a TOML table, checked key by key (flows only: no channel
	// variable holds one). It reports false when the key does not decode.
	table func(d *decoder, s *StepSpec) bool
}

// The inputs of the outputs' names, which a step-less outcome (refused
// call, unknown flow) reads too (call.outputNames).
var (
	resultVarInput = stepInput{key: "result_var", wfe: "wfe_result_var", def: DefaultResultVar,
		text: varNameRule(func(s *StepSpec) *string { return &s.ResultVar })}
	errorVarInput = stepInput{key: "error_var", wfe: "wfe_error_var", def: DefaultErrorVar,
		text: varNameRule(func(s *StepSpec) *string { return &s.ErrorVar })}
)

// stepInputs are the step's inputs, in the order the README lists them.
var stepInputs = []stepInput{
	templateInput("config_id", true, func(s *StepSpec) **Template { return &s.ConfigID }),
	templateInput("workflow_id", true, func(s *StepSpec) **Template { return &s.WorkflowID }),
	{key: "payload", wfe: "wfe_payload", text: func(s *StepSpec, v string, _ *prompts.Renderer) error {
		var err error
		s.Payload, err = ParsePayload(v)
		return err
	}, refs: func(s *StepSpec) []Expr { return s.Payload.Refs() }},
	{key: "sequence", wfe: "wfe_sequence", text: func(s *StepSpec, v string, r *prompts.Renderer) error {
		if r == nil {
			return nil // a flow compiled without its prompts (no sound to check against)
		}
		var err error
		s.Sequence, err = CompileSequence(r, v)
		return err
	}, refs: func(s *StepSpec) []Expr { return s.Sequence.Refs() }},
	templateInput("tenant", false, func(s *StepSpec) **Template { return &s.Tenant }),
	{key: "timeout_ms", wfe: "wfe_timeout_ms", millis: millisRule(crm.CheckTimeoutMs, func(s *StepSpec) *int64 { return &s.TimeoutMs })},
	resultVarInput,
	errorVarInput,
	{key: "prompt_policy", wfe: "wfe_prompt_policy", def: PolicyInterrupt, text: func(s *StepSpec, v string, _ *prompts.Renderer) error {
		p, err := ParsePolicy(v)
		if err == nil {
			s.PromptPolicy = p
		}
		return err
	}},
	{key: "grace_ms", wfe: "wfe_grace_ms", millis: millisRule(CheckGraceMs, func(s *StepSpec) *int64 { return &s.GraceMs })},
	{key: "mappings", table: compileMappings},
	{key: "agent_event", wfe: "wfe_agent_event", flag: func(s *StepSpec, on bool) { s.AgentEvent = on }},
	{key: "branches", table: compileBranches},
	{key: "late_result_ms", wfe: "wfe_late_result_ms", millis: millisRule(crm.CheckTimeoutMs, func(s *StepSpec) *int64 { return &s.LateResultMs })},
	{key: "late_result_var", wfe: "wfe_late_result_var", def: DefaultLateResultVar,
		text: varNameRule(func(s *StepSpec) *string { return &s.LateResultVar })},
}

// CheckGraceMs is the rule for a grace in milliseconds (a step's grace_ms,
// wfe_grace_ms, [prompts] grace_ms): 0, no grace, to crm.MaxMs.
func CheckGraceMs(ms int64) error { return crm.CheckMs(ms, "no grace") }

// CheckVarName is the rule for a variable a step writes its result, error or
// late result to: a name FreeSWITCH's set and multiset store as it is.
func CheckVarName(v string) error {
	if !esl.IsVarName(v) {
		return fmt.Errorf("%q is not a variable name", v)
	}
	return nil
}

// templateInput is an input that holds a template, key in a flow and
// wfe_key on the channel.
func templateInput(key string, required bool, field func(*StepSpec) **Template) stepInput {
	return stepInput{key: key, wfe: "wfe_" + key, required: required,
		text: func(s *StepSpec, v string, _ *prompts.Renderer) error {
			t, err := ParseTemplate(v)
			*field(s) = t
			return err
		},
		refs: func(s *StepSpec) []Expr { return (*field(s)).Refs() },
	}
}

// varNameRule is the rule of an input that names a variable the step
// writes: an invalid name leaves the default in place, so that the step's
// error still has a variable to go to.
func varNameRule(field func(*StepSpec) *string) func(*StepSpec, string, *prompts.Renderer) error {
	return func(s *StepSpec, v string, _ *prompts.Renderer) error {
		if err := CheckVarName(v); err != nil {
			return err
		}
		*field(s) = v
		return nil
	}
}

// millisRule is the rule of an input in milliseconds: check's rule, and the
// value stored only when it holds.
func millisRule(check func(int64) error, field func(*StepSpec) *int64) func(*StepSpec, int64) error {
	return func(s *StepSpec, ms int64) error {
		if err := check(ms); err != nil {
			return err
		}
		*field(s) = ms
		return nil
	}
}

// newStepSpec is a step with every input at its default.
func newStepSpec(caption string) *StepSpec {
	s := &StepSpec{Caption: caption}
	for _, in := range stepInputs {
		if in.def != "" {
			_ = in.fromText(s, in.def, nil) // a default its rule refuses fails TestStepInputs
		}
	}
	return s
}

// fromFlow reads the input from a flow action's table into s; false when its
// key does not decode (the action does not compile).
func (in stepInput) fromFlow(d *decoder, s *StepSpec) bool {
	report := func(err error) {
		if err != nil {
			d.errorf([]string{in.key}, "%v", err)
		}
	}
	switch {
	case in.table != nil:
		return in.table(d, s)
	case in.millis != nil:
		var ms int64
		written, ok := d.decodeKey(in.key, &ms)
		if written && ok {
			// Written, even as 0, it must hold: "timeout_ms = 0" is not unset.
			report(in.millis(s, ms))
		}
		return ok
	case in.flag != nil:
		var on bool
		written, ok := d.decodeKey(in.key, &on)
		if written && ok {
			in.flag(s, on)
		}
		return ok
	}
	var v string
	_, ok := d.decodeKey(in.key, &v)
	switch {
	case !ok:
	case v != "":
		report(in.text(s, v, d.renderer))
	case in.required:
		d.errorf([]string{in.key}, "missing")
	}
	return ok
}

// fromText reads the input from text v, as a channel variable holds it, into
// s ("": unset).
func (in stepInput) fromText(s *StepSpec, v string, r *prompts.Renderer) error {
	switch {
	case in.table != nil:
		return nil // no text holds a table
	case in.flag != nil:
		in.flag(s, esl.IsTrue(v))
		return nil
	case v == "":
		return nil
	case in.millis != nil:
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number of milliseconds", v)
		}
		return in.millis(s, ms)
	}
	return in.text(s, v, r)
}

// readChannelInputs reads a dialplan-mode step's inputs from their channel
// variables into s; the error joins every problem, each named by its
// variable.
func readChannelInputs(s *StepSpec, get func(name string) string, r *prompts.Renderer, inputs ...stepInput) error {
	var errs []string
	for _, in := range inputs {
		if in.wfe == "" {
			continue
		}
		if err := in.fromText(s, get(in.wfe), r); err != nil {
			errs = append(errs, in.wfe+": "+err.Error())
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// compileBranches is the rule of a step's branches: outcome names (and
// Default) to actions.
func compileBranches(d *decoder, s *StepSpec) bool {
	written, ok := d.decodeKey("branches", &s.Branches)
	if !written || !ok {
		return ok
	}
	for _, b := range slices.Sorted(maps.Keys(s.Branches)) {
		if !slices.Contains(branchNames, b) {
			d.errorf([]string{"branches", b}, "unknown branch (one of %s)", strings.Join(branchNames, ", "))
		}
	}
	return true
}

// compileMappings is the rule of a step's mappings: variable names to paths
// in the result, each with a type (mapping.go).
func compileMappings(d *decoder, s *StepSpec) bool {
	var raw map[string]any
	written, ok := d.decodeKey("mappings", &raw)
	if !written || !ok {
		return ok
	}
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		if !esl.IsVarName(name) {
			d.errorf([]string{"mappings", name}, "not a variable name")
			continue
		}
		if m, ok := d.parseMapping(name, raw[name]); ok {
			s.Mappings = append(s.Mappings, m)
		}
	}
	return true
}
