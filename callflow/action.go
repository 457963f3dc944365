package callflow

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/eslapp/eslapp/conf"
	"github.com/eslapp/eslapp/prompts"
)

// A flow's actions are units: each type is one file (action_*.go) holding a
// Go type that implements actionType, and one line in actionTypes. Every
// question check, lint, the sound check, the graph and a call ask of an
// action is a method of actionType, so a type that misses one does not
// compile (TestActionTypeIsWhole), and nothing outside the type's own file
// asks which type an action is.

// actionType is a type of flow action, whole.
type actionType interface {
	// keys are the keys of its table besides type and caption, in the
	// order the README lists them.
	keys() []string
	// compile decodes an action's table (d.decode into a struct of the
	// type's own), checks it, and returns the action; nil when the table
	// does not decode.
	compile(d *decoder) actionType
	// targets are the actions it can lead to, with the key that names each.
	targets() []target
	// ends reports whether the flow can end here: the call leaves eslapp
	// (transfer, hangup) or goes back to the dialplan (continue, a step's
	// outcomes without a branch).
	ends() bool
	// reads lists, by key, the variables its templates read.
	reads() map[string][]string
	// writes lists the variables it sets, for the rest of the flow and the
	// channel: Lint counts them as set.
	writes() []string
	// sequences are the prompt sequences it plays, by key: check finds
	// their sounds.
	sequences() map[string]*Sequence
	// drawing is its node in the flow's graph: shape and detail as data,
	// and the ways back to the dialplan no key of it names.
	drawing() drawing
	// hold is how long it may hold the call and the workflow it calls: a
	// socket-less call's safety net is re-armed with it before it runs,
	// and a call's first action decides its claim (net.go).
	hold(c *call) hold
	// run runs the action on a call: next is the action to run after it,
	// "" when the call has left eslapp (or, for a step, goes back to the
	// dialplan because no branch is wired for its outcome).
	run(ctx context.Context, c *call, log *slog.Logger) (next string)
}

// actionTypes registers the types, by the name a flow's type key gives:
// one zero value of each, whose compile makes the configured actions.
var actionTypes = map[string]actionType{
	TypeWorkflowExecute: &stepNode{},
	TypePlay:            &playNode{},
	TypeSet:             &setNode{},
	TypeTransfer:        &transferNode{},
	TypeContinue:        continueNode{},
	TypeHangup:          &hangupNode{},
	TypeCustomEvent:     &customEventNode{},
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

// Action is a compiled action of a flow.
type Action struct {
	ID      string
	Type    string
	Caption string
	actionType
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

// decodeKey decodes one key of the action's table into v, a pointer to the
// Go type its TOML value must have, and reports whether the key is written
// (even as a zero value: "timeout_ms = 0", "agent_event = false") and
// whether it decoded. It marks that key alone as read, so that the keys no
// input reads are still reported (undecodedActionKeys).
func (d *decoder) decodeKey(key string, v any) (written, ok bool) {
	if !d.written(key) {
		return false, true
	}
	box := reflect.New(reflect.StructOf([]reflect.StructField{{
		Name: "V", Type: reflect.TypeOf(v).Elem(), Tag: reflect.StructTag(`toml:"` + key + `"`),
	}}))
	if !d.decode(box.Interface()) {
		return true, false
	}
	reflect.ValueOf(v).Elem().Set(box.Elem().Field(0))
	return true, true
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

// readsOf collects the roots of references (of templates, payloads,
// sequences) under a key.
type readsOf map[string][]string

func (r readsOf) add(key string, refs []Expr) {
	for _, e := range refs {
		r[key] = append(r[key], e.Root())
	}
}
