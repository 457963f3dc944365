package callflow

import (
	"context"
	"log/slog"
	"time"

	"github.com/eslapp/eslapp/esl"
)

// continue and hangup: the call leaves the flow.

// continue: the outputs are set and the call goes back to the dialplan.
type continueNode struct{}

func (continueNode) keys() []string { return nil }

func (continueNode) compile(d *decoder) actionType {
	var cfg struct{}
	if !d.decode(&cfg) {
		return nil
	}
	return continueNode{}
}

func (continueNode) targets() []target               { return nil }
func (continueNode) ends() bool                      { return true }
func (continueNode) reads() map[string][]string      { return nil }
func (continueNode) writes() []string                { return nil }
func (continueNode) sequences() map[string]*Sequence { return nil }

// drawing: an end, whose way out goes back to the dialplan.
func (continueNode) hold(*call) hold { return hold{} }

func (continueNode) drawing() drawing {
	return drawing{shape: ShapeEnd, exits: []exit{{label: "continue"}}}
}

func (continueNode) run(ctx context.Context, c *call, _ *slog.Logger) string {
	c.e.leave(ctx, c)
	return ""
}

// hangup: ends the call with a cause (default NORMAL_CLEARING).
type hangupConfig struct {
	Cause string `toml:"cause"`
}

type hangupNode struct{ cause string }

// hangupWait is how long a hangup action waits for FreeSWITCH's hangup
// event.
const hangupWait = 5 * time.Second

func (*hangupNode) keys() []string { return []string{"cause"} }

func (*hangupNode) compile(d *decoder) actionType {
	var cfg hangupConfig
	if !d.decode(&cfg) {
		return nil
	}
	n := &hangupNode{cause: cfg.Cause}
	if n.cause == "" {
		n.cause = "NORMAL_CLEARING"
	} else if !esl.IsHangupCause(n.cause) {
		d.errorf([]string{"cause"}, "%q is not a hangup cause (e.g. NORMAL_CLEARING, USER_BUSY, 16)", n.cause)
	}
	return n
}

func (n *hangupNode) targets() []target               { return nil }
func (n *hangupNode) ends() bool                      { return true }
func (n *hangupNode) reads() map[string][]string      { return nil }
func (n *hangupNode) writes() []string                { return nil }
func (n *hangupNode) sequences() map[string]*Sequence { return nil }
func (n *hangupNode) drawing() drawing                { return drawing{shape: ShapeEnd} }
func (n *hangupNode) hold(*call) hold                 { return hold{} }

func (n *hangupNode) run(ctx context.Context, c *call, log *slog.Logger) string {
	// The outputs first: the call's CDR and hangup events carry them (and
	// not the shared secret, which they unset).
	if err := c.flushOutputs(ctx); err != nil {
		log.Warn("outputs not set", "err", err)
	}
	c.left = true
	if err := c.ch.Hangup(ctx, n.cause); err != nil {
		log.Warn("hangup", "err", err)
		return ""
	}
	// Wait for FreeSWITCH to report the hangup, so that the call is known
	// to be over and nothing more is sent.
	t := time.NewTimer(hangupWait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
		log.Warn("hangup not confirmed by FreeSWITCH", "waited", hangupWait)
	}
	return ""
}
