package callflow

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/eslapp/eslapp/conf"
	"github.com/eslapp/eslapp/crm"
	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/prompts"
)

// Workflows runs CRM workflows; *crm.Service provides it.
type Workflows interface {
	Execute(ctx context.Context, req crm.Request) crm.Result
	// Precheck returns the outcome of a request that would be rejected
	// without being sent (invalid input, disabled, undefined workflow).
	Precheck(req crm.Request) (crm.Result, bool)
	// Timeout is the step timeout: the step's own (stepMs, 0 when unset),
	// else the channel's timeoutMilliSec, else the integration's.
	Timeout(configID string, stepMs int64, channel string) time.Duration
	// BreakerState is a workflow's circuit breaker (closed for unknown
	// ids): a socket-less call whose first workflow's is open is claimed
	// later, so that a healthier eslapp takes it.
	BreakerState(configID, workflowID string) crm.BreakerState
	// PathVars are the variables workflow paths read.
	PathVars() []string
}

var _ Workflows = (*crm.Service)(nil)

// maxActions bounds the actions one call runs, so that a flow looping
// through a step (retrying a CRM, say) cannot hold a call forever.
const maxActions = 200

// Config is what an Engine needs; cmd/eslapp builds it from the
// configuration.
type Config struct {
	Flows    map[string]*Flow
	Renderer *prompts.Renderer
	// Catalog knows how long the sounds play, which bounds the waits for
	// a prompt's end; nil: a fresh one.
	Catalog *prompts.Catalog
	CRM     Workflows
	Logger  *slog.Logger
	Metrics *Metrics // nil: no metrics

	// PlaybackTerminators is set on the channel before the first prompt:
	// FreeSWITCH's default "*" lets a caller's key end a prompt. "none"
	// (the default here) makes prompts ignore keys; "" leaves the
	// channel's own value.
	PlaybackTerminators string
	// HoldMusic plays, looping, when a step's sequence is over and the CRM
	// still works, or when a step has no sequence: "" means silence.
	HoldMusic string
	// WaitMargin is how much longer than expected an application may take
	// before FreeSWITCH counts as stuck and the call is handed back
	// OnError (default 10 s). Tests shorten it.
	WaitMargin time.Duration
	// DefaultPolicy and DefaultGraceMs apply to dialplan-mode steps that
	// do not set wfe_prompt_policy and wfe_grace_ms.
	DefaultPolicy  string
	DefaultGraceMs int64

	// SharedSecret, when set, must be presented by every call in the
	// channel variable SharedSecretVar before eslapp sends the CRM
	// anything: the outbound socket has no authentication, and a local
	// process that connects like FreeSWITCH would otherwise run workflows
	// with eslapp's CRM credentials. eslapp unsets the variable when the
	// call leaves, so it does not travel on in the channel's events.
	SharedSecret    conf.Secret
	SharedSecretVar string

	// Late delivers the late results of steps with a window (late.go)
	// when the call names no sink of its own (Channel.Late: the inbound
	// connection to its FreeSWITCH); nil: they are logged, not delivered.
	Late LateSink
}

// Engine runs calls: dialplan-mode steps and flows.
type Engine struct {
	cfg       Config
	flows     map[string]*Flow
	renderer  *prompts.Renderer
	catalog   *prompts.Catalog
	crm       Workflows
	log       *slog.Logger
	metrics   *Metrics
	holdMusic *prompts.Step
	pathReads map[string]bool // variables the CRM's workflow paths read, lower case
	// secretVar is the shared secret's channel variable ("" when none is
	// configured), secretLower its lower case, secretSum the secret's hash.
	secretVar, secretLower string
	secretSum              [sha256.Size]byte
}

// New checks cfg and returns an Engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Renderer == nil || cfg.CRM == nil {
		return nil, errors.New("callflow: a renderer and a CRM are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DefaultPolicy == "" {
		cfg.DefaultPolicy = PolicyInterrupt
	}
	if cfg.WaitMargin <= 0 {
		cfg.WaitMargin = esl.DefaultWithin
	}
	if cfg.Catalog == nil {
		cfg.Catalog = prompts.NewCatalog()
	}
	e := &Engine{cfg: cfg, flows: cfg.Flows, renderer: cfg.Renderer, catalog: cfg.Catalog, crm: cfg.CRM, log: cfg.Logger, metrics: cfg.Metrics}
	e.pathReads = map[string]bool{}
	for _, name := range cfg.CRM.PathVars() {
		e.pathReads[lowerASCII(name)] = true
	}
	if secret := cfg.SharedSecret.Reveal(); secret != "" && cfg.SharedSecretVar != "" {
		e.secretVar, e.secretLower = cfg.SharedSecretVar, lowerASCII(cfg.SharedSecretVar)
		e.secretSum = sha256.Sum256([]byte(secret))
	}
	if cfg.HoldMusic != "" {
		path, err := cfg.Renderer.FilePath(cfg.HoldMusic)
		if err != nil {
			return nil, fmt.Errorf("hold music: %w", err)
		}
		item, err := esl.File(path)
		if err != nil {
			return nil, fmt.Errorf("hold music: %w", err)
		}
		arg, err := esl.PlaybackArg(item)
		if err != nil {
			return nil, fmt.Errorf("hold music: %w", err)
		}
		e.holdMusic = &prompts.Step{App: "playback", Arg: arg, Kind: prompts.KindFile, Files: []string{path}, Items: 1, Text: cfg.HoldMusic}
	}
	return e, nil
}

// Handle runs one call, whichever way it came: it is the esl.Handler of
// eslapp's runner.
func (e *Engine) Handle(ctx context.Context, c *esl.Call) {
	e.Run(ctx, FromCall(c), c.Logger())
}

// Run runs one call on any Channel.
func (e *Engine) Run(ctx context.Context, ch Channel, log *slog.Logger) {
	e.metrics.callStarted()
	defer e.metrics.callEnded()
	c := e.newCall(ch, log)
	if e.secretVar != "" {
		// Unset with the outputs, whichever way the call leaves, so that
		// the secret does not travel on in its events and CDR.
		c.setOutput(e.secretVar, "")
	}
	if !ch.Full() {
		// Without "full" FreeSWITCH refuses uuid_break: a prompt could not
		// be stopped. Say so in the call's outputs rather than run half a
		// step.
		c.log.Error("the dialplan runs eslapp without \"full\": use <action application=\"socket\" data=\"ADDR async full\"/>")
		c.fail(crm.OnError, `eslapp needs the socket in "async full" mode`)
		e.metrics.step(crm.OnError)
		e.leave(ctx, c)
		return
	}
	defer e.handBackOnShutdown(ctx, c)
	if !e.authentic(ctx, c) {
		return
	}
	if name, _ := ch.Var("wfe_flow"); name != "" {
		e.runFlow(ctx, c, name)
		return
	}
	e.runDialplanStep(ctx, c)
}

func (e *Engine) newCall(ch Channel, log *slog.Logger) *call {
	builtins := make(map[string]string, len(builtinVars))
	for _, b := range builtinVars {
		builtins[b.name] = b.value(ch)
	}
	return &call{
		e:         e,
		ch:        ch,
		log:       log,
		vars:      NewVars(ch.Var, builtins),
		outputIdx: map[string]int{},
	}
}

// builtinVars are the variables every call has besides its channel
// variables: CXone's names, and the caller profile fields FreeSWITCH's own
// ${...} would find (they are not channel variables). Lint knows them too.
var builtinVars = []struct {
	name  string
	value func(Channel) string
}{
	// The caller profile's ANI (a trunk may send it apart from the caller
	// ID), else the caller ID number.
	{"ANI", func(ch Channel) string {
		return firstNonEmpty(ch.Header("Caller-ANI"), ch.Header("Caller-Caller-ID-Number"))
	}},
	{"DNIS", func(ch Channel) string { return ch.Header("Caller-Destination-Number") }},
	{"ContactID", func(ch Channel) string { return ch.UUID() }},
	{"caller_id_name", func(ch Channel) string { return ch.Header("Caller-Caller-ID-Name") }},
	{"caller_id_number", func(ch Channel) string { return ch.Header("Caller-Caller-ID-Number") }},
	{"destination_number", func(ch Channel) string { return ch.Header("Caller-Destination-Number") }},
}

// authentic checks the call's shared secret, when one is configured, in
// constant time, and unsets the variable in the call's outputs. A call
// without it is handed back OnError, unrun; the value is never logged.
func (e *Engine) authentic(ctx context.Context, c *call) bool {
	if e.secretVar == "" {
		return true
	}
	got, _ := c.ch.Var(e.secretVar)
	have := sha256.Sum256([]byte(got))
	if subtle.ConstantTimeCompare(e.secretSum[:], have[:]) == 1 {
		return true
	}
	c.log.Warn("call refused: it did not present eslapp's shared secret", "var", e.secretVar, "present", got != "")
	c.fail(crm.OnError, "the call did not present eslapp's shared secret")
	e.metrics.refused()
	e.leave(ctx, c)
	return false
}

// Refuse hands a call back to the dialplan without running it (eslapp at
// max_calls, shutting down, or failed on it): in dialplan terms the step
// ended OnError, and the error variable says why. It is the runner's
// esl.RefuseFunc.
func (e *Engine) Refuse(ctx context.Context, call *esl.Call, why error) {
	e.RefuseChannel(ctx, FromCall(call), call.Logger(), why)
}

// RefuseChannel is Refuse on any Channel.
func (e *Engine) RefuseChannel(ctx context.Context, ch Channel, log *slog.Logger, why error) {
	c := e.newCall(ch, log)
	e.metrics.refused()
	c.fail(crm.OnError, why.Error())
	e.leave(ctx, c)
}

// fail records a step-less outcome (unknown flow, refusal) in the outputs.
func (c *call) fail(branch crm.Branch, msg string) {
	resultVar, errorVar := c.outputNames()
	b, _ := json.Marshal(crm.StepError{Branch: branch, Message: msg})
	c.setOutput("wfe_branch", string(branch))
	c.setOutput(resultVar, "")
	c.setOutput(errorVar, string(b))
	c.setOutput("wfe_elapsed_ms", "0")
}

// outputNames are the result and error variables of dialplan mode, by their
// inputs' rule; an invalid name gives the default (the step itself reports
// it: parseDialplanInputs).
func (c *call) outputNames() (result, errVar string) {
	spec := newStepSpec("")
	_ = readChannelInputs(spec, c.chanVar, nil, resultVarInput, errorVarInput)
	return spec.ResultVar, spec.ErrorVar
}

// leave sets the outputs and hands the call back to the dialplan (resume;
// the server sends exit).
func (e *Engine) leave(ctx context.Context, c *call) {
	// The branch the dialplan routes on: the one eslapp sets now, else the
	// last step's, else what the dialplan set before handing the call
	// over, else OnError.
	branch := string(crm.OnError)
	if i, ok := c.outputIdx["wfe_branch"]; ok && crm.IsBranch(c.outputs[i].Value) {
		branch = c.outputs[i].Value
	} else if b, ok := c.vars.Get("wfe_branch"); ok && crm.IsBranch(b.Text()) {
		branch = b.Text()
	}
	if err := c.flushOutputs(ctx); err != nil {
		c.log.Warn("outputs not set", "err", err)
	}
	if ctx.Err() != nil {
		return // hung up: nothing but exit
	}
	// Left once the hand-back is on its way: a shutdown landing before its
	// reply must not hand the call back a second time.
	c.left = true
	if err := c.ch.HandBack(ctx, branch); err != nil {
		c.log.Warn("handing the call back", "err", err)
	}
}

// shutdownHandback bounds the hand-back of a call ended by shutdown: the
// runner gives handlers esl.RunnerConfig.ShutdownGrace (2 s) before it
// closes their connections.
const shutdownHandback = 1500 * time.Millisecond

// handBackOnShutdown hands back a call that eslapp's shutdown ended (the
// drain deadline, or a second signal) like a refused call: the prompt and
// anything queued behind it (hold music loops forever) broken, the outputs
// set to OnError "eslapp is shutting down", then resume on a socket or the
// transfer to the branch socket-less. Without it the caller would stay in
// the hold music, parked, until the safety net or forever.
func (e *Engine) handBackOnShutdown(ctx context.Context, c *call) {
	if c.left || !errors.Is(context.Cause(ctx), esl.ErrShutdown) {
		return
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownHandback)
	defer cancel()
	// Through the prompter when it plays, so that an application the break
	// raced with (hold music, looping) is watched and broken too.
	var err error
	if c.prompt != nil && c.prompt.active() {
		_, err = c.prompt.stop(hctx)
	} else {
		err = c.ch.Break(hctx, true)
	}
	if err != nil {
		if errors.Is(err, esl.ErrHangup) {
			return
		}
		c.log.Warn("uuid_break at shutdown", "err", err)
	}
	c.fail(crm.OnError, "eslapp is shutting down")
	e.leave(hctx, c)
	if c.left {
		e.metrics.shutdownHandback()
		c.log.Warn("call handed back at shutdown", "branch", string(crm.OnError))
	}
}

// runDialplanStep is dialplan mode: one step from the wfe_* channel
// variables, its outputs on the channel, then back to the dialplan.
func (e *Engine) runDialplanStep(ctx context.Context, c *call) {
	spec, inputErr := e.dialplanSpec(c)
	c.arm(ctx, c.stepHold(spec))
	rep := c.runStep(ctx, spec, inputErr)
	e.report(c, rep)
	if rep.hangup {
		return
	}
	c.applyStep(rep)
	c.overrideOnFault()
	e.agentEvent(ctx, c, rep)
	e.leave(ctx, c)
}

// dialplanSpec reads a step's inputs from the channel variables. A malformed
// input does not stop the step: it makes it OnInvalidInput, through
// crm.Request.InputError, after the disabled-integration checks.
func (e *Engine) dialplanSpec(c *call) (*StepSpec, error) {
	return e.parseDialplanInputs(c.chanVar)
}

// parseDialplanInputs reads a dialplan-mode step from its wfe_* variables,
// by the rules a flow's step is checked with (stepInputs). An invalid
// wfe_result_var or wfe_error_var leaves that output at its default, where
// the step's OnInvalidInput error can still go.
func (e *Engine) parseDialplanInputs(get func(name string) string) (*StepSpec, error) {
	spec := newStepSpec("dialplan")
	// [prompts] policy and grace_ms: dialplan mode's defaults.
	spec.PromptPolicy, spec.GraceMs = e.cfg.DefaultPolicy, e.cfg.DefaultGraceMs
	return spec, readChannelInputs(spec, get, e.renderer, stepInputs...)
}

// runFlow runs a named flow from its start action.
func (e *Engine) runFlow(ctx context.Context, c *call, name string) {
	flow := e.flows[name]
	if flow == nil {
		c.log.Warn("wfe_flow names no flow", "flow", name)
		c.fail(crm.OnInvalidInput, fmt.Sprintf("no flow named %q", conf.Clip(name, 64)))
		e.metrics.step(crm.OnInvalidInput)
		e.leave(ctx, c)
		return
	}
	id := flow.Start
	for n := 0; ; n++ {
		if ctx.Err() != nil {
			return
		}
		if n == maxActions || id == "" {
			if id != "" {
				c.log.Error("flow ran too many actions; handing the call back", "flow", name, "actions", n)
				c.fail(crm.OnError, fmt.Sprintf("flow %q ran more than %d actions", name, maxActions))
			}
			e.leave(ctx, c)
			return
		}
		if c.fault != nil {
			c.overrideOnFault()
			e.leave(ctx, c)
			return
		}
		a := flow.Actions[id]
		c.arm(ctx, a.hold(c))
		id = a.run(ctx, c, c.log.With("flow", name, "action", a.ID))
		if id == "" {
			return
		}
	}
}

// play plays a sequence to its end (a play action).
func (c *call) play(ctx context.Context, q *Sequence) {
	steps := c.renderSequence(q)
	p := &prompter{c: c, steps: steps, unbounded: maxStreamPlay}
	c.prompt = p
	if err := p.play(ctx, steps, 0); err != nil {
		c.log.Warn("play", "err", err)
		return
	}
	_ = c.loop(ctx, func() bool { return !p.active() || c.fault != nil })
}

// report writes the step's log line and metrics.
func (e *Engine) report(c *call, rep stepReport) {
	attrs := []any{
		"step", rep.id, "caption", rep.spec.Caption,
		"config_id", rep.configID, "workflow_id", rep.workflowID,
		"policy", rep.policy, "elapsed_ms", rep.elapsed.Milliseconds(),
	}
	if rep.shutdown {
		c.log.Warn("step ended: eslapp is shutting down", attrs...)
		return
	}
	if rep.hangup {
		c.log.Info("step ended: caller hung up", attrs...)
		e.metrics.hangup()
		return
	}
	res := rep.res
	attrs = append(attrs, "outcome", string(res.Branch), "crm_status", res.Status,
		"crm_latency_ms", res.Latency.Milliseconds(), "crm_attempts", res.Attempts)
	if !rep.promptFrom.IsZero() {
		attrs = append(attrs, "prompt_start", rep.promptFrom.Format(time.RFC3339Nano), "prompt_stop", rep.promptTo.Format(time.RFC3339Nano))
	}
	if !rep.breakAt.IsZero() {
		attrs = append(attrs, "break_after_outcome_us", rep.breakAt.Sub(rep.decidedAt).Microseconds())
	}
	if res.Err != nil {
		attrs = append(attrs, "error", res.Err.Message)
	}
	c.log.Info("step", attrs...)
	e.metrics.step(res.Branch)
	e.metrics.crmLatency(res)
	if !rep.breakAt.IsZero() {
		e.metrics.decision(rep.breakAt.Sub(rep.decidedAt))
	}
}

// tenant is the call's tenant (wfe_tenant, else "default").
func (c *call) tenant() string {
	if v, _ := c.ch.Var("wfe_tenant"); v != "" {
		return v
	}
	return crm.DefaultTenant
}

// channelVarsRead are the channel variables, besides wfe_*, the engine reads
// by name (lower case). A new read of a channel variable by name belongs
// here: a call keeps only these, the wfe_* ones, and those its templates and
// the workflow paths read (see ChannelVars).
var channelVarsRead = map[string]bool{"timeoutmillisec": true, "playback_terminators": true}

// dialplanTemplateInputs are the wfe_* variables of dialplan mode that hold
// templates, which may read any channel variable.
var dialplanTemplateInputs = func() []string {
	var wfe []string
	for _, in := range stepInputs {
		if in.refs != nil && in.wfe != "" {
			wfe = append(wfe, in.wfe)
		}
	}
	return wfe
}()

// ChannelVars is the runner's esl.VarFilter: from a call's wfe_* variables
// it works out every channel variable the call may read — its flow's
// templates, or in dialplan mode the templates of its wfe_* inputs, and the
// workflow paths — and keeps only those.
func (e *Engine) ChannelVars(lookup func(name string) (string, bool)) func(name string) bool {
	reads := e.pathReads
	if name, _ := lookup("wfe_flow"); name != "" {
		if f := e.flows[name]; f != nil {
			reads = f.Reads
		}
	} else {
		// The inputs' references, found by a scan rather than a parse (the
		// step parses them, and reports their errors, later): every {name
		// is kept, a few more than the templates use at worst.
		reads = map[string]bool{}
		for _, input := range dialplanTemplateInputs {
			v, _ := lookup(input)
			for i := strings.IndexByte(v, '{'); i >= 0 && i+1 < len(v); {
				j := i + 1
				for j < len(v) && isNameByte(v[j]) {
					j++
				}
				if j > i+1 && isNameStart(v[i+1]) {
					reads[lowerASCII(v[i+1:j])] = true
				}
				next := strings.IndexByte(v[j:], '{')
				if next < 0 {
					break
				}
				i = j + next
			}
		}
	}
	return func(name string) bool {
		l := lowerASCII(name)
		return strings.HasPrefix(l, "wfe_") || channelVarsRead[l] || reads[l] || e.pathReads[l] ||
			(e.secretLower != "" && l == e.secretLower)
	}
}

func (c *call) chanVar(name string) string {
	v, _ := c.ch.Var(name)
	return v
}

// pathVar gives a workflow path's {var} values from the call's variables.
func (c *call) pathVar(name string) (string, bool) {
	v, ok := c.vars.Get(name)
	if !ok {
		return "", false
	}
	return v.Text(), true
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
