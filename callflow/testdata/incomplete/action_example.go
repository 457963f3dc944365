// A new action type as its author might first write it: a copy of a small
// type's file (play's) that leaves one method out, sequences. It is not
// part of the package: TestActionTypeIsWhole type-checks it with package
// callflow and expects the compiler to refuse it for exactly that method.
package callflow

import (
	"context"
	"log/slog"
)

// The line a new type adds to actionTypes.
var exampleTypes = map[string]actionType{"example": &exampleNode{}}

type exampleConfig struct {
	Next string `toml:"next"`
}

type exampleNode struct{ next string }

func (*exampleNode) keys() []string { return []string{"next"} }

func (*exampleNode) compile(d *decoder) actionType {
	var cfg exampleConfig
	if !d.decode(&cfg) {
		return nil
	}
	d.require("next", cfg.Next)
	return &exampleNode{next: cfg.Next}
}

func (n *exampleNode) targets() []target          { return next(n.next) }
func (n *exampleNode) ends() bool                 { return false }
func (n *exampleNode) reads() map[string][]string { return nil }
func (n *exampleNode) writes() []string           { return nil }
func (n *exampleNode) drawing() drawing           { return drawing{shape: ShapeAction} }
func (n *exampleNode) hold(*call) hold            { return hold{} }

func (n *exampleNode) run(_ context.Context, _ *call, _ *slog.Logger) string { return n.next }
