package callflow

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/eslapp/eslapp/prompts"
)

// Each input of the table has one rule and one name per mode; its default
// passes its own rule; only a flow's TOML can hold a table.
func TestStepInputs(t *testing.T) {
	keys, vars := map[string]bool{}, map[string]bool{}
	for _, in := range stepInputs {
		if keys[in.key] || in.wfe != "" && vars[in.wfe] {
			t.Errorf("%s: listed twice", in.key)
		}
		keys[in.key], vars[in.wfe] = true, true
		kind := in.kind()
		switch {
		case kind == "":
			t.Errorf("%s: not exactly one rule (text, millis, flag or table)", in.key)
		case kind == "table" && in.wfe != "":
			t.Errorf("%s: a channel variable cannot hold a table", in.key)
		case in.wfe != "" && in.wfe != "wfe_"+in.key:
			t.Errorf("%s: its channel variable is %q, not wfe_%s", in.key, in.wfe, in.key)
		case in.required && kind != "text":
			t.Errorf("%s: only text can be missing", in.key)
		}
		if in.def != "" {
			if err := in.fromText(&StepSpec{}, in.def, nil); err != nil {
				t.Errorf("%s: its default %q breaks its rule: %v", in.key, in.def, err)
			}
		}
	}
	// outputNames reads these two: they must be the table's.
	for _, in := range []stepInput{resultVarInput, errorVarInput} {
		if !slices.ContainsFunc(stepInputs, func(s stepInput) bool { return s.key == in.key }) {
			t.Errorf("%s is not in stepInputs", in.key)
		}
	}
}

// A call keeps the channel variables its dialplan-mode inputs reference
// (Engine.ChannelVars, from dialplanTemplateInputs): every input of the
// table that holds references is among them.
func TestDialplanTemplateInputs(t *testing.T) {
	sounds, err := filepath.Abs(filepath.Join("..", "sounds"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := prompts.NewRenderer(prompts.RenderConfig{SoundsDir: sounds})
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{pathReads: map[string]bool{}}
	// A reference in the syntax of a template or a payload value, or of a
	// sequence's text.
	probes := []string{"{zz_probe}", `"%{zz_probe}"`}
	var found []string
	for _, in := range stepInputs {
		if in.refs == nil || in.wfe == "" {
			continue
		}
		found = append(found, in.wfe)
		i := slices.IndexFunc(probes, func(v string) bool {
			spec := newStepSpec("")
			return in.fromText(spec, v, r) == nil && slices.ContainsFunc(in.refs(spec), func(e Expr) bool { return e.Root() == "zz_probe" })
		})
		if i < 0 {
			t.Errorf("%s: no reference to {zz_probe} found in it", in.wfe)
			continue
		}
		v := probes[i]
		keep := e.ChannelVars(func(name string) (string, bool) { return map[string]string{in.wfe: v}[name], name == in.wfe })
		if !keep("zz_probe") {
			t.Errorf("%s=%s references {zz_probe}, but a call does not keep the variable: add %s to dialplanTemplateInputs", in.wfe, v, in.wfe)
		}
	}
	if len(found) != len(dialplanTemplateInputs) {
		t.Errorf("inputs that hold references: %v; dialplanTemplateInputs: %v", found, dialplanTemplateInputs)
	}
}
