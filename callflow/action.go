package callflow

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/eslapp/eslapp/conf"
	"github.com/eslapp/eslapp/prompts"
)

// A flow's actions are units: each type declares its keys, decodes and
// checks its own TOML table, names the actions it leads to, and runs.
// Adding a type is a file of its own and one line in actionTypes.

// actionType is one type of flow action.
type actionType struct {
	// keys are the keys of its table besides type and caption.
	keys []string
	// compile decodes the action's table (d.decode into a struct of the
	// type's own) and checks it.
	compile func(d *decoder) node
}

// actionTypes registers the types, by the name a flow's type key gives.
var actionTypes = map[string]actionType{
	TypeWorkflowExecute: workflowExecuteType,
	TypePlay:            playType,
	TypeSet:             setType,
	TypeTransfer:        transferType,
	TypeContinue:        continueType,
	TypeHangup:          hangupType,
	TypeCustomEvent:     customEventType,
}

// Action types.
const (
	TypeWorkflowExecute = "workflow_execute"
	TypePlay            = "play"
	TypeSet             = "set"
	TypeTransfer        = "transfer"
	TypeContinue        = "continue"
	TypeHangup          = "hangup"
	TypeCustomEvent     = "custom_event"
)

// node is a compiled action of one type.
type node interface {
	// targets are the actions it can lead to, with the key that names each.
	targets() []target
	// ends reports whether the flow can end here (the call leaves eslapp).
	ends() bool
	// reads lists, by key, the variables its templates read.
	reads() map[string][]string
	// run runs the action on a call: next is the action to run after it,
	// "" when the call has left eslapp (or, for a step, goes back to the
	// dialplan because no branch is wired for its outcome).
	run(ctx context.Context, c *call, log *slog.Logger) (next string)
}

// Action is a compiled action of a flow.
type Action struct {
	ID      string
	Type    string
	Caption string
	node
}

type target struct {
	key []string
	to  string
}

// next is the target of an action's next key.
func next(to string) []target {
	if to == "" {
		return nil
	}
	return []target{{[]string{"next"}, to}}
}

// decoder reads one action's TOML table for its type, and collects the
// problems under the action's key.
type decoder struct {
	md       *toml.MetaData
	prim     toml.Primitive
	key      []string // flows, NAME, actions, ID
	caption  string
	renderer *prompts.Renderer
	errs     *conf.FieldErrors
}

// decode fills v, the type's own struct, from the action's table.
func (d *decoder) decode(v any) bool {
	if err := d.md.PrimitiveDecode(d.prim, v); err != nil {
		d.errorf(nil, "%v", strings.TrimPrefix(err.Error(), "toml: "))
		return false
	}
	return true
}

// written reports whether the configuration sets the key, even to a zero
// value ("timeout_ms = 0", "agent_event = false").
func (d *decoder) written(k ...string) bool {
	return d.md.IsDefined(append(slices.Clone(d.key), k...)...)
}

func (d *decoder) errorf(k []string, format string, args ...any) {
	d.errs.Add(append(slices.Clone(d.key), k...), fmt.Sprintf(format, args...))
}

func (d *decoder) require(k string, v string) {
	if v == "" {
		d.errorf([]string{k}, "missing")
	}
}

func (d *decoder) template(k []string, s string) *Template {
	t, err := ParseTemplate(s)
	if err != nil {
		d.errorf(k, "%v", err)
		return nil
	}
	return t
}

func (d *decoder) payload(k []string, s string) *PayloadTemplate {
	p, err := ParsePayload(s)
	if err != nil {
		d.errorf(k, "%v", err)
		return nil
	}
	return p
}

func (d *decoder) sequence(k []string, s string) *Sequence {
	if s == "" || d.renderer == nil {
		return nil
	}
	q, err := CompileSequence(d.renderer, s)
	if err != nil {
		d.errorf(k, "%v", err)
		return nil
	}
	return q
}

// readsOf collects the roots of templates' references under a key.
type readsOf map[string][]string

func (r readsOf) template(key string, t *Template) {
	if t != nil {
		for _, e := range t.Refs() {
			r[key] = append(r[key], e.Root())
		}
	}
}

func (r readsOf) payload(key string, p *PayloadTemplate) {
	if p != nil {
		for _, e := range p.Refs() {
			r[key] = append(r[key], e.Root())
		}
	}
}

func (r readsOf) sequence(key string, q *Sequence) {
	if q != nil {
		for _, e := range q.refs {
			r[key] = append(r[key], e.Root())
		}
		sort.Strings(r[key])
	}
}
