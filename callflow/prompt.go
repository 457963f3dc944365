package callflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/prompts"
)

// maxStreamPlay bounds a play action's stream or a file of unknown
// length.
const maxStreamPlay = time.Hour

// prompter plays a rendered sequence on the call: once, in a loop, or once
// followed by hold music, and stops it on request. It belongs to the call's
// goroutine.
type prompter struct {
	c       *call
	steps   []prompts.Step
	loop    bool // queue the sequence again when its last app starts
	pending []Running
	// lastOfPass marks, per pending app, whether it ends a pass of the
	// sequence (so that a loop queues the next pass when it starts).
	lastOfPass []bool
	queuedNext bool // the next pass is already queued
	// headStarted: onStarted has handled the head application's start.
	// Both its channels may be closed when the owner looks (it started and
	// ended meanwhile): the start must still be handled first.
	headStarted bool
	filler      bool // what plays is the hold music, not the sequence
	// unbounded bounds a pass whose length is not known (streams, files
	// of unknown length): the step's timeout, or maxStreamPlay.
	unbounded time.Duration

	startedAt time.Time // first app started
	stoppedAt time.Time
}

// play queues one pass of steps (and, first, playback_terminators for the
// call). It returns an error only when FreeSWITCH refused the commands.
func (p *prompter) play(ctx context.Context, steps []prompts.Step, loops int) error {
	if len(steps) == 0 {
		return nil
	}
	c := p.c
	if !c.terminated && c.e.cfg.PlaybackTerminators != "" {
		// Already so on the channel (set by the dialplan): one command and
		// two events fewer.
		if v, _ := c.ch.Var("playback_terminators"); v == c.e.cfg.PlaybackTerminators {
			c.terminated = true
		}
	}
	if !c.terminated && c.e.cfg.PlaybackTerminators != "" {
		arg, err := esl.SetArg("playback_terminators", c.e.cfg.PlaybackTerminators)
		if err == nil {
			_, err = c.ch.Start(ctx, "set", arg, esl.ExecOptions{Within: c.e.cfg.WaitMargin})
		}
		if err != nil {
			return fmt.Errorf("playback_terminators: %w", err)
		}
		c.terminated = true
	}
	// Each application must end within what it and those queued before it
	// play, plus the engine's WaitMargin: FreeSWITCH that never reports an end does
	// not hold the call. Looping ones are stopped, never waited for.
	var ahead time.Duration
	bounded := loops == 0 || loops == 1
	for i, s := range steps {
		opts := esl.ExecOptions{Loops: loops, EventLock: true}
		if bounded {
			if d, ok := c.e.catalog.Bound(s); ok {
				ahead += d
			} else {
				ahead += p.unbounded
			}
			opts.Within = ahead + c.e.cfg.WaitMargin
		}
		r, err := c.ch.Start(ctx, s.App, s.Arg, opts)
		if err != nil {
			return fmt.Errorf("%s: %w", s.App, err)
		}
		p.pending = append(p.pending, r)
		p.lastOfPass = append(p.lastOfPass, i == len(steps)-1)
	}
	return nil
}

// active reports whether something of the prompt is queued or playing.
func (p *prompter) active() bool { return len(p.pending) > 0 }

// watch returns the channels of the application at the head of the queue:
// its start (nil once handled by onStarted) and its end.
func (p *prompter) watch() (started, done <-chan struct{}) {
	if len(p.pending) == 0 {
		return nil, nil
	}
	head := p.pending[0]
	if !p.headStarted {
		started = head.Started()
	}
	return started, head.Done()
}

// onStarted notes that the head application started; in a loop, the next
// pass is queued as the last application of a pass starts, so that the
// sequence repeats without a gap.
func (p *prompter) onStarted(ctx context.Context) {
	p.headStarted = true
	if p.startedAt.IsZero() {
		p.startedAt = time.Now()
	}
	if p.loop && !p.filler && p.lastOfPass[0] && !p.queuedNext {
		p.queuedNext = true
		if err := p.play(ctx, p.steps, 0); err != nil {
			p.c.log.Warn("queueing the prompt again", "err", err)
		}
	}
}

// onDone removes the head application; it reports whether nothing of the
// prompt is left. An application can start and end before the owner looks:
// its start is handled first.
func (p *prompter) onDone(ctx context.Context) (finished bool) {
	if !p.headStarted {
		p.onStarted(ctx)
	}
	head := p.pending[0]
	switch res, err := head.Result(); {
	case errors.Is(err, esl.ErrAppTimeout):
		p.c.noteFault(err)
	case err == nil && res.Response == "FILE NOT FOUND":
		p.c.log.Warn("prompt file not found by FreeSWITCH", "response", res.Response)
	}
	if p.lastOfPass[0] {
		p.queuedNext = false
	}
	p.headStarted = false
	p.pending, p.lastOfPass = p.pending[1:], p.lastOfPass[1:]
	if len(p.pending) == 0 {
		p.stoppedAt = time.Now()
		return true
	}
	return false
}

// stop ends the prompt at once: uuid_break all stops what plays and drops
// what is queued. The first application that had not started is kept as the
// call's zombie (see call.zombie).
func (p *prompter) stop(ctx context.Context) (sent time.Time, err error) {
	if len(p.pending) == 0 {
		return time.Time{}, nil
	}
	err = p.c.ch.Break(ctx, true)
	sent = time.Now()
	for _, r := range p.pending {
		select {
		case <-r.Started():
			continue
		default:
		}
		p.c.zombie = r
		break
	}
	p.pending, p.lastOfPass, p.headStarted = nil, nil, false
	p.stoppedAt = sent
	return sent, err
}

// playFiller starts the hold music, looping until broken.
func (p *prompter) playFiller(ctx context.Context) error {
	if p.c.e.holdMusic == nil {
		return nil
	}
	p.filler = true
	return p.play(ctx, []prompts.Step{*p.c.e.holdMusic}, -1)
}
