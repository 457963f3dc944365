package callflow

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/eslapp/eslapp/crm"
	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/prompts"
)

// A socket-less call's safety net (esl.Call.Arm) is re-armed before each
// action of a flow with how long that action may hold the call (its hold):
// if eslapp dies meanwhile, FreeSWITCH moves the call to OnError within
// about that bound plus 2 s. The first action's bound is armed with the
// claim (Binding.Bound), so a one-step call re-arms nothing.

// hold is how long an action may hold the call, and the workflow it calls.
type hold struct {
	bound                time.Duration // 0: too short to re-arm for
	configID, workflowID string
}

// leaveMargin covers what follows a step's outcome or a prompt's end: the
// prompt stopped, the outputs set, the hand-back.
const leaveMargin = time.Second

// breakerClaimDelay is how much later an eslapp claims a call whose first
// step would go to OnError at once because the workflow's circuit breaker
// is open here: a healthy peer claims it first, and when none is, this
// one still does and the flow's own OnError branch runs. It exceeds the
// largest load stagger (esl.DefaultMaxClaimDelay and its random part), so
// a busy healthy peer still claims first, and with it stays well inside
// the second the pick-up net leaves.
const breakerClaimDelay = 300 * time.Millisecond

// arm re-arms the call's net for an action's hold. A net found fired ends
// the call (its context, as a hangup): the loop stops on it.
func (c *call) arm(ctx context.Context, h hold) {
	if h.bound <= 0 {
		return
	}
	if err := c.ch.Arm(ctx, h.bound); err != nil && !errors.Is(err, esl.ErrNetFired) && ctx.Err() == nil {
		c.log.Warn("re-arming the call's safety net", "err", err)
	}
}

// stepHold is how long a step may hold the call — its timeout, its grace,
// the whole prompt under the complete policy, and the leaving — and the
// workflow it calls, with the call's variables as they are now.
func (c *call) stepHold(spec *StepSpec) hold {
	render := func(t *Template) string {
		if t == nil {
			return ""
		}
		s, _ := t.Render(c.vars)
		return strings.TrimSpace(s)
	}
	h := hold{configID: render(spec.ConfigID), workflowID: render(spec.WorkflowID)}
	h.bound = c.e.crm.Timeout(h.configID, spec.TimeoutMs, c.chanVar("timeoutMilliSec")) +
		time.Duration(spec.GraceMs)*time.Millisecond + leaveMargin
	if spec.PromptPolicy == PolicyComplete && spec.Sequence != nil {
		h.bound += c.playBound(c.renderSequence(spec.Sequence))
	}
	return h
}

// playBound is how long a prompt plays: the catalog's lengths, a stream or
// an unknown file counted as a minute (the net is renewed while a wait
// runs long anyway).
func (c *call) playBound(steps []prompts.Step) time.Duration {
	var b time.Duration
	for _, s := range steps {
		if d, ok := c.e.catalog.Bound(s); ok {
			b += d
		} else {
			b += time.Minute
		}
	}
	return b
}

// firstHold is the hold of the action a call starts with: the dialplan
// step, or its flow's start action.
func (e *Engine) firstHold(call *esl.Call) (hold, bool) {
	c := e.newCall(FromCall(call), call.Logger())
	if name, _ := c.ch.Var("wfe_flow"); name != "" {
		f := e.flows[name]
		if f == nil || f.Actions[f.Start] == nil {
			return hold{}, false
		}
		return f.Actions[f.Start].hold(c), true
	}
	spec, err := e.dialplanSpec(c)
	if err != nil {
		return hold{}, false
	}
	return c.stepHold(spec), true
}

// FirstBound is esl.Binding.Bound: how long the call's first action may
// hold it, for the net its claim arms.
func (e *Engine) FirstBound(call *esl.Call) time.Duration {
	if h, ok := e.firstHold(call); ok && h.bound > 0 {
		return h.bound
	}
	return esl.DefaultFirstBound
}

// ClaimDelay is esl.Binding.ClaimDelay: a call whose first step's
// workflow has its circuit breaker open here is claimed later.
func (e *Engine) ClaimDelay(call *esl.Call) time.Duration {
	h, ok := e.firstHold(call)
	if ok && h.workflowID != "" && e.crm.BreakerState(h.configID, h.workflowID) != crm.BreakerClosed {
		return breakerClaimDelay
	}
	return 0
}

// Binding is what a runner needs to run calls on this engine: the handler,
// the refusal, the variable filter, the first action's bound and the claim
// delay (esl.RunnerConfig.Bind).
func (e *Engine) Binding() esl.Binding {
	return esl.Binding{Handler: e.Handle, Refuse: e.Refuse, VarFilter: e.ChannelVars, Bound: e.FirstBound, ClaimDelay: e.ClaimDelay}
}
