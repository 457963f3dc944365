package callflow

import (
	"context"
	"log/slog"
	"maps"
	"slices"

	"github.com/eslapp/eslapp/esl"
)

// set: sets variables from templates, for the flow and (when the call
// leaves) the channel, then next.

type setConfig struct {
	Vars map[string]string `toml:"vars"`
	Next string            `toml:"next"`
}

// SetSpec is one assignment of a set action.
type SetSpec struct {
	Name  string
	Value *Template
}

type setNode struct {
	set  []SetSpec
	next string
}

func (*setNode) keys() []string { return []string{"vars", "next"} }

func (*setNode) compile(d *decoder) actionType {
	var cfg setConfig
	if !d.decode(&cfg) {
		return nil
	}
	d.require("next", cfg.Next)
	if len(cfg.Vars) == 0 {
		d.errorf([]string{"vars"}, "missing: the variables to set, e.g. vars = { greeting = \"Hello {ANI}\" }")
	}
	n := &setNode{next: cfg.Next}
	for _, name := range slices.Sorted(maps.Keys(cfg.Vars)) {
		if !esl.IsVarName(name) {
			d.errorf([]string{"vars", name}, "not a variable name")
			continue
		}
		n.set = append(n.set, SetSpec{Name: name, Value: d.template([]string{"vars", name}, cfg.Vars[name])})
	}
	return n
}

func (n *setNode) targets() []target { return next(n.next) }
func (n *setNode) ends() bool        { return false }
func (n *setNode) reads() map[string][]string {
	r := readsOf{}
	for _, s := range n.set {
		r.add("vars", s.Value.Refs())
	}
	return r
}

func (n *setNode) writes() []string {
	vars := make([]string, len(n.set))
	for i, s := range n.set {
		vars[i] = s.Name
	}
	return vars
}

func (n *setNode) sequences() map[string]*Sequence { return nil }
func (n *setNode) drawing() drawing                { return drawing{shape: ShapeAction} }
func (n *setNode) hold(*call) hold                 { return hold{} }

func (n *setNode) run(_ context.Context, c *call, log *slog.Logger) string {
	for _, s := range n.set {
		v, warnings := s.Value.Render(c.vars)
		for _, w := range warnings {
			log.Warn("set: unknown value", "var", s.Name, "warning", w)
		}
		c.vars.SetString(s.Name, v)
		c.setOutput(s.Name, v)
	}
	return n.next
}
