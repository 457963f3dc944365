package callflow_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/eslapp/eslapp/callflow"
	"github.com/eslapp/eslapp/prompts"
)

func compile(t *testing.T, text string) error { return compileConfig(t, text) }

// CompileFlows rejects what eslapp check must reject, naming the key.
func TestCompileFlowsRejects(t *testing.T) {
	for _, tc := range []struct {
		name, toml string
		key, msg   string
	}{
		{"unknown type", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "dance"`, "flows.f.actions.a.type", "unknown action type"},
		{"missing type", `[flows.f]
start = "a"
[flows.f.actions.a]
next = "a"`, "flows.f.actions.a.type", "missing"},
		{"dangling next", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "play"
sequence = '"hold.wav"'
next = "nowhere"`, "flows.f.actions.a.next", `no action "nowhere"`},
		{"dangling branch", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
config_id = "c"
workflow_id = "w"
branches = { OnSuccess = "gone" }`, "flows.f.actions.a.branches.OnSuccess", `no action "gone"`},
		{"unknown branch name", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
config_id = "c"
workflow_id = "w"
branches = { OnSucess = "b" }
[flows.f.actions.b]
type = "continue"`, "flows.f.actions.a.branches.OnSucess", "unknown branch"},
		{"unreachable", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "continue"
[flows.f.actions.island]
type = "hangup"`, "flows.f.actions.island", "no action leads here"},
		{"no way to end", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "play"
sequence = '"hold.wav"'
next = "b"
[flows.f.actions.b]
type = "play"
sequence = '"hold.wav"'
next = "a"`, "flows.f.actions.a", "cannot end"},
		{"missing config id", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
workflow_id = "w"`, "flows.f.actions.a.config_id", "missing"},
		{"missing start", `[flows.f]
[flows.f.actions.a]
type = "continue"`, "flows.f.start", "missing"},
		{"start names nothing", `[flows.f]
start = "zz"
[flows.f.actions.a]
type = "continue"`, "flows.f.start", `no action "zz"`},
		{"key of another type", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "continue"
next = "a"`, "flows.f.actions.a.next", "not used by a continue action"},
		{"explicit zero timeout", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
config_id = "c"
workflow_id = "w"
timeout_ms = 0`, "flows.f.actions.a.timeout_ms", "must be from 1 to 600000"},
		{"timeout over the CRM's bound", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
config_id = "c"
workflow_id = "w"
timeout_ms = 900000`, "flows.f.actions.a.timeout_ms", "must be from 1 to 600000"},
		{"bad reference in a sequence", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "play"
sequence = '"%Hello {a..b}"'
next = "b"
[flows.f.actions.b]
type = "continue"`, "flows.f.actions.a.sequence", "{a..b}"},
		{"unknown key", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "play"
sequence = '"hold.wav"'
colour = "red"
next = "b"
[flows.f.actions.b]
type = "continue"`, "flows.f.actions.a.colour", "not used by a play action (its keys: sequence, next)"},
		{"bad sequence", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "play"
sequence = '"unterminated'
next = "b"
[flows.f.actions.b]
type = "continue"`, "flows.f.actions.a.sequence", "column"},
		{"bad payload", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
config_id = "c"
workflow_id = "w"
payload = '{"a":'`, "flows.f.actions.a.payload", ""},
		{"bad policy", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
config_id = "c"
workflow_id = "w"
prompt_policy = "sometimes"`, "flows.f.actions.a.prompt_policy", "interrupt, complete, loop"},
		{"bad mapping", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
config_id = "c"
workflow_id = "w"
mappings = { x = "contact.id" }`, "flows.f.actions.a.mappings.x", `start it with "result"`},
		{"unknown mapping type", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
config_id = "c"
workflow_id = "w"
mappings = { x = { path = "result.x", type = "int" } }`, "flows.f.actions.a.mappings.x.type", "must be one of text, digits"},
		{"enum without values", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
config_id = "c"
workflow_id = "w"
mappings = { tier = { path = "result.tier", type = "enum" } }`, "flows.f.actions.a.mappings.tier.values", "an enum mapping lists its values"},
		{"enum value not a word", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
config_id = "c"
workflow_id = "w"
mappings = { tier = { path = "result.tier", type = "enum", values = ["gold", "${x}"] } }`, "flows.f.actions.a.mappings.tier.values", "is not a word"},
		{"values on a non-enum", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
config_id = "c"
workflow_id = "w"
mappings = { ext = { path = "result.ext", type = "digits", values = ["1"] } }`, "flows.f.actions.a.mappings.ext.values", "only an enum mapping"},
		{"unknown mapping key", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
config_id = "c"
workflow_id = "w"
mappings = { ext = { path = "result.ext", kind = "digits" } }`, "flows.f.actions.a.mappings.ext.kind", "unknown key"},
		{"mapping without path", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
config_id = "c"
workflow_id = "w"
mappings = { ext = { type = "digits" } }`, "flows.f.actions.a.mappings.ext.path", "missing"},
		{"mapping of a number", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
config_id = "c"
workflow_id = "w"
mappings = { ext = 5 }`, "flows.f.actions.a.mappings.ext", "must be a path"},
		{"bad destination", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "transfer"
destination = "1000 XML default; rm -rf"`, "flows.f.actions.a.destination", "transfer destination"},
		{"bad cause", `[flows.f]
start = "a"
[flows.f.actions.a]
type = "hangup"
cause = "bye bye"`, "flows.f.actions.a.cause", "not a hangup cause"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := compile(t, tc.toml)
			var fes callflow.FieldErrors
			if !errors.As(err, &fes) {
				t.Fatalf("err = %v, want FieldErrors", err)
			}
			for _, fe := range fes {
				if strings.Join(fe.Key, ".") == tc.key && strings.Contains(fe.Msg, tc.msg) {
					return
				}
			}
			t.Fatalf("no error at %s containing %q: %v", tc.key, tc.msg, err)
		})
	}
}

// A step whose unwired outcomes go back to the dialplan is a way to end.
func TestCompileFlowsAcceptsImplicitEnd(t *testing.T) {
	err := compile(t, `[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
config_id = "c"
workflow_id = "w"
branches = { OnSuccess = "a" }`)
	if err != nil {
		t.Fatal(err)
	}
}

// Lint warns about references to variables no action sets.
func TestLintUnknownReferences(t *testing.T) {
	var cfg struct {
		Flows map[string]callflow.FlowConfig `toml:"flows"`
	}
	md, err := toml.Decode(`[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
config_id = "demo"
workflow_id = "w"
payload = '{"phone":"{ANI}","who":"{customer.name}"}'
result_var = "lookup"
branches = { OnSuccess = "b" }
[flows.f.actions.b]
type = "play"
sequence = '"%Hello {lookup.name} {lokup.name}"'
next = "c"
[flows.f.actions.c]
type = "continue"
`, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := prompts.NewRenderer(prompts.RenderConfig{SoundsDir: soundsDir(t)})
	flows, err := callflow.CompileFlows(&md, cfg.Flows, r)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range callflow.Lint(flows) {
		got = append(got, strings.Join(w.Key, ".")+": "+w.Msg)
	}
	if len(got) != 2 || !strings.Contains(got[0], "flows.f.actions.a.payload: {customer}") || !strings.Contains(got[1], "flows.f.actions.b.sequence: {lokup}") {
		t.Fatalf("warnings: %q", got)
	}
}
