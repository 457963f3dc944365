package callflow

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/eslapp/eslapp/crm"
	"github.com/eslapp/eslapp/esl"
)

// call is one call's state. One goroutine owns it: the one Engine.Handle
// runs on; nothing else reads or writes it.
type call struct {
	e    *Engine
	ch   Channel
	log  *slog.Logger
	vars *Vars
	// outputs are the channel variables to set before the call leaves
	// eslapp, in the order first written; "" unsets.
	outputs    []esl.Var
	outputIdx  map[string]int
	terminated bool // playback_terminators has been set for this call
	// zombie is the first prompt application that had not started when
	// the prompt was stopped with uuid_break all: FreeSWITCH may have taken
	// it off the queue just before the break, and it would then play. The
	// call's loop watches it in every wait that follows, and breaks it if
	// it starts.
	zombie Running
	// prompt is what plays now (a play action's or a step's sequence, or
	// the hold music), step the step running, awaiting the application
	// awaited: the sources of the call's loop.
	prompt   *prompter
	step     *stepRun
	awaiting Running
	steps    int // workflow_execute steps run, for step ids
	// fault is the first wait on FreeSWITCH that ran past its bound (an
	// application it never reported ended): the call cannot go on with a
	// peer in that state, and is handed back OnError.
	fault error
	// left: the call has been handed back, transferred or hung up; eslapp
	// has nothing more to send it, even at shutdown.
	left bool
}

// noteFault records a wait that expired; the first one is kept.
func (c *call) noteFault(err error) {
	if c.fault == nil {
		c.log.Error("FreeSWITCH did not finish an application in time; the call will be handed back", "err", err)
		c.fault = err
	}
}

// overrideOnFault makes the call's outcome OnError when a wait expired,
// with the error variable saying which, whatever the step decided.
func (c *call) overrideOnFault() {
	if c.fault == nil {
		return
	}
	_, errorVar := c.outputNames()
	b, _ := json.Marshal(crm.StepError{Branch: crm.OnError, Message: "FreeSWITCH did not finish in time: " + c.fault.Error()})
	c.setOutput("wfe_branch", string(crm.OnError))
	c.setOutput(errorVar, string(b))
}

// setOutput records a channel variable to set when the call leaves. A value
// holding a NUL byte cannot be stored (FreeSWITCH ends a command's body
// there): that variable is left out, with a warning, and the others, the
// branch among them, still go.
func (c *call) setOutput(name, value string) {
	if strings.IndexByte(value, 0) >= 0 {
		c.log.Warn("output not set: its value holds a NUL byte", "var", name)
		return
	}
	if i, ok := c.outputIdx[name]; ok {
		c.outputs[i].Value = value
		return
	}
	c.outputIdx[name] = len(c.outputs)
	c.outputs = append(c.outputs, esl.Var{Name: name, Value: value})
}

// flushOutputs sets the recorded outputs on the channel and waits until
// FreeSWITCH has run the set.
func (c *call) flushOutputs(ctx context.Context) error {
	if len(c.outputs) == 0 {
		return nil
	}
	last, err := c.ch.SetVars(ctx, c.outputs, c.e.cfg.WaitMargin)
	if err != nil {
		return fmt.Errorf("setting outputs: %w", err)
	}
	c.outputs, c.outputIdx = nil, map[string]int{}
	if last == nil {
		return nil
	}
	_, err = c.await(ctx, last)
	return err
}

// await waits for an application to end (the outputs' multiset, say),
// through the call's loop: a zombie prompt that starts meanwhile is broken
// without "all", so that what is queued after it still runs.
func (c *call) await(ctx context.Context, r Running) (esl.AppResult, error) {
	c.awaiting = r
	defer func() { c.awaiting = nil }()
	if err := c.loop(ctx, func() bool { return isDone(r) }); err != nil {
		return esl.AppResult{}, err
	}
	return r.Result()
}

func isDone(r Running) bool {
	select {
	case <-r.Done():
		return true
	default:
		return false
	}
}

// loop is the one place the call's owner waits (the shape of livekit's
// waitForCallEnd): it selects over every source of the call's events — the
// prompt's applications, a zombie prompt, the running step's CRM result and
// grace timer, an application awaited — handles each as it comes, and
// returns once until reports true, or with the call's end (its context's
// cause). Sources that do not exist are nil channels, never watched.
func (c *call) loop(ctx context.Context, until func() bool) error {
	for !until() {
		var started, ended, zombie, awaited <-chan struct{}
		if c.prompt != nil {
			started, ended = c.prompt.watch()
		}
		if c.zombie != nil {
			zombie = c.zombie.Started()
		}
		if c.awaiting != nil {
			awaited = c.awaiting.Done()
		}
		var results <-chan crm.Result
		var grace <-chan time.Time
		if st := c.step; st != nil {
			results, grace = st.results, st.grace
		}
		select {
		case <-started:
			c.prompt.onStarted(ctx)
		case <-ended:
			c.promptEnded(ctx)
		case <-zombie:
			c.killZombie(ctx)
		case <-awaited:
		case res := <-results:
			c.step.decide(ctx, res)
		case <-grace:
			c.step.grace = nil
			c.endGraceFiller(ctx)
			c.step.startPrompt(ctx)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

// promptEnded handles the end of the prompt's head application. When the
// whole sequence is over and the running step's CRM still works, hold
// music plays: never dead air.
func (c *call) promptEnded(ctx context.Context) {
	if !c.prompt.onDone(ctx) {
		return
	}
	if st := c.step; st != nil && !st.decided {
		if err := c.prompt.playFiller(ctx); err != nil {
			st.rep.promptErr = err
		}
	}
}

// endGraceFiller stops the hold music that filled a step's grace, before
// the step's prompt starts.
func (c *call) endGraceFiller(ctx context.Context) {
	p := c.prompt
	if !p.filler || !p.active() {
		return
	}
	if _, err := p.stop(ctx); err != nil {
		c.log.Warn("uuid_break", "err", err)
	}
	p.filler, p.startedAt, p.stoppedAt = false, time.Time{}, time.Time{}
}

// killZombie stops a prompt application that started after its prompt was
// stopped: a uuid_break that lands between two applications is lost, so
// the next one plays unless it is broken again.
func (c *call) killZombie(ctx context.Context) {
	z := c.zombie
	c.zombie = nil
	select {
	case <-z.Done():
		return // it ended by itself (for instance it was a flushed one)
	default:
	}
	c.log.Debug("a prompt application started after the prompt was stopped; breaking it again")
	c.e.metrics.rebreak()
	if err := c.ch.Break(ctx, false); err != nil {
		c.log.Warn("uuid_break", "err", err)
	}
}

// elapsedMs renders a duration for wfe_elapsed_ms.
func elapsedMs(d time.Duration) string { return fmt.Sprint(d.Milliseconds()) }
