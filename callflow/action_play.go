package callflow

import (
	"context"
	"log/slog"
)

// play: plays a sequence to its end, then next.

type playConfig struct {
	Sequence string `toml:"sequence"`
	Next     string `toml:"next"`
}

type playNode struct {
	seq  *Sequence
	next string
}

func (*playNode) keys() []string { return []string{"sequence", "next"} }

func (*playNode) compile(d *decoder) actionType {
	var cfg playConfig
	if !d.decode(&cfg) {
		return nil
	}
	d.require("sequence", cfg.Sequence)
	d.require("next", cfg.Next)
	return &playNode{seq: d.sequence([]string{"sequence"}, cfg.Sequence), next: cfg.Next}
}

func (n *playNode) targets() []target { return next(n.next) }
func (n *playNode) ends() bool        { return false }
func (n *playNode) reads() map[string][]string {
	r := readsOf{}
	r.add("sequence", n.seq.Refs())
	return r
}
func (n *playNode) writes() []string                { return nil }
func (n *playNode) sequences() map[string]*Sequence { return map[string]*Sequence{"sequence": n.seq} }
func (n *playNode) drawing() drawing                { return drawing{shape: ShapeAction} }

// hold: the prompt plays to its end.
func (n *playNode) hold(c *call) hold {
	return hold{bound: c.playBound(c.renderSequence(n.seq)) + leaveMargin}
}

func (n *playNode) run(ctx context.Context, c *call, _ *slog.Logger) string {
	c.play(ctx, n.seq)
	return n.next
}
