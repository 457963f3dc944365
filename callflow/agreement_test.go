package callflow_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/eslapp/eslapp/callflow"
	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/esl/esltest"
	"github.com/eslapp/eslapp/prompts"
)

// eslapp check and a call agree: every rule a flow is checked against is
// the rule the call applies at run time. For each value, the verdict of
// compiling a flow that holds it must equal the verdict of a call that
// meets it at run time: dialplan mode reads the same inputs from channel
// variables (every input of the step's table that has one), and a flow's
// custom event meets FreeSWITCH's sendevent.
func TestCheckAndCallAgree(t *testing.T) {
	const base = `
[tenants.default]
agent_integrations = true
[integrations.demo]
kind = "fixture"
[[integrations.demo.workflows.lookup.rules]]
delay_ms = 10
body = '{"ok":true}'
`
	// step is a flow whose step writes the inputs given, as TOML lines,
	// besides config_id and workflow_id (unless given).
	step := func(extra string) string {
		ids := ""
		if !strings.Contains(extra, "config_id =") {
			ids += "config_id = \"demo\"\n"
		}
		if !strings.Contains(extra, "workflow_id =") {
			ids += "workflow_id = \"lookup\"\n"
		}
		return base + `
[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
` + ids + extra + `
branches = { Default = "b" }
[flows.f.actions.b]
type = "continue"
`
	}
	event := func(extra string) string {
		return base + `
[flows.f]
start = "a"
[flows.f.actions.a]
type = "custom_event"
` + extra + `
next = "b"
[flows.f.actions.b]
type = "continue"
`
	}
	// dialplanAccepts runs a dialplan-mode call with one input set: the
	// call accepts the value unless it ends OnInvalidInput.
	dialplanAccepts := func(t *testing.T, name, value string) bool {
		e := newEngine(t, base, testLog(t))
		fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
		vars := map[string]string{"wfe_config_id": "demo", "wfe_workflow_id": "lookup", name: value}
		c := runCall(t, e, fs, callScript{opts: esltest.CallOptions{Vars: vars}})
		branch, _ := c.Var("wfe_branch")
		return branch != "OnInvalidInput"
	}
	// eventFired runs the flow (compiled without the rule under test in
	// the way) and reports whether FreeSWITCH got the event as written.
	eventFired := func(t *testing.T, cfg string, match func(esltest.FiredEvent) bool) bool {
		e := newEngine(t, cfg, testLog(t))
		fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
		runCall(t, e, fs, callScript{opts: esltest.CallOptions{Vars: map[string]string{"wfe_flow": "f"}}})
		for _, ev := range fs.FiredEvents() {
			if match(ev) {
				return true
			}
		}
		return false
	}

	type rule struct {
		name   string
		values []string
		check  func(v string) string                   // a configuration holding v
		run    func(t *testing.T, v string) (ran bool) // a call meeting v; nil: the checked flow itself
		runCfg func(v string) (string, func(esltest.FiredEvent) bool)
	}
	rules := []rule{
		{name: "event subclass", values: []string{"eslapp::workflow_result", "acme.crm-events", "a:b_c", "has space", "x!", "ünï"},
			check: func(v string) string { return event(fmt.Sprintf("subclass = %q", v)) },
			runCfg: func(v string) (string, func(esltest.FiredEvent) bool) {
				return event(fmt.Sprintf("subclass = %q", v)), func(ev esltest.FiredEvent) bool { return ev.Subclass == v }
			}},
		{name: "event header name", values: []string{"X-Agent", "Priority_1", "Unique-ID", "Call-UUID", "Event-Name", "bad header"},
			check: func(v string) string { return event(fmt.Sprintf("headers = { %q = \"v\" }", v)) },
			runCfg: func(v string) (string, func(esltest.FiredEvent) bool) {
				return event(fmt.Sprintf("headers = { %q = \"v\" }", v)), func(ev esltest.FiredEvent) bool {
					for _, h := range ev.Headers {
						if strings.EqualFold(h.Name, v) && h.Value == "v" {
							return true
						}
					}
					return false
				}
			}},
	}
	// Every input of a step that has a channel variable: its values as
	// dialplan mode reads them. A flow writes the same value as TOML of the
	// input's kind (a value that is not one is a TOML string there: check
	// refuses it as a call does).
	stepValues := map[string][]string{
		"config_id":       {"demo", "", "{a..b}", "{1x}"},
		"workflow_id":     {"lookup", "", "{a..b}"},
		"payload":         {`{"p":"{ANI}"}`, `{"a":1}`, `{"a":`, `{"a":{1x}}`},
		"sequence":        {`"%Hi {ANI}"`, `"%Hi {a.b}"`, `"%Hi {a..b}"`, `"%Hi {1x}"`, `"%Hi {a[}"`, `"unterminated`},
		"tenant":          {"default", "{a..b}"},
		"timeout_ms":      {"1", "3000", "600000", "0", "600001", "900000", "-5", "3s"},
		"result_var":      {"crm_result", "a.b-c", "bad name", "1x", "x!"},
		"error_var":       {"crm_error", "bad name", "x!"},
		"prompt_policy":   {"interrupt", "complete", "loop", "sometimes", "LOOP"},
		"grace_ms":        {"0", "500", "600000", "600001", "-1", "soon"},
		"agent_event":     {"true", "false"}, // a channel variable is a boolean whatever it holds (switch_true)
		"late_result_ms":  {"1", "30000", "600000", "0", "600001", "-1", "x"},
		"late_result_var": {"crm_late", "bad name"},
	}
	for _, in := range callflow.StepInputs() {
		if in.Var == "" {
			continue
		}
		values, ok := stepValues[in.Key]
		if !ok {
			t.Errorf("step input %s (%s) has no values here: give it some that check accepts and some it refuses", in.Key, in.Var)
		}
		delete(stepValues, in.Key)
		rules = append(rules, rule{name: in.Var, values: values,
			check: func(v string) string { return step(in.Key + " = " + tomlValue(in.Kind, v)) },
			run:   func(t *testing.T, v string) bool { return dialplanAccepts(t, in.Var, v) }})
	}
	for key := range stepValues {
		t.Errorf("values for %s, which is no step input with a channel variable", key)
	}
	for _, r := range rules {
		for _, v := range r.values {
			t.Run(r.name+"/"+v, func(t *testing.T) {
				checked := compileConfig(t, r.check(v)) == nil
				var ran bool
				switch {
				case r.run != nil:
					ran = r.run(t, v)
				case checked:
					cfg, match := r.runCfg(v)
					ran = eventFired(t, cfg, match)
				case r.name == "event header name":
					// The flow does not compile: a call meets the name
					// where its custom_event sends its headers.
					ran = callflow.CheckEventHeaderName(v) == nil && sendEventAccepts(t, r.name, v)
				default:
					// The flow does not compile: the call meets the value
					// in the one place FreeSWITCH gets it, sendevent.
					ran = sendEventAccepts(t, r.name, v)
				}
				if checked != ran {
					t.Errorf("%s %q: check says %v, the call says %v", r.name, v, verdict(checked), verdict(ran))
				}
			})
		}
	}
}

// tomlValue writes v, a channel variable's text, as a flow's TOML writes a
// value of the input's kind: digits as an integer, true and false as a
// boolean, anything else as a string.
func tomlValue(kind, v string) string {
	if _, err := strconv.ParseInt(v, 10, 64); err == nil && kind == "millis" {
		return v
	}
	if (v == "true" || v == "false") && kind == "flag" {
		return v
	}
	if !strings.ContainsAny(v, "'\n") {
		return "'" + v + "'"
	}
	return strconv.Quote(v)
}

func verdict(ok bool) string {
	if ok {
		return "accepted"
	}
	return "refused"
}

// compileConfig compiles a configuration's flows as eslapp check does.
func compileConfig(t *testing.T, text string) error {
	t.Helper()
	var cfg goldenConfig
	md, err := toml.Decode(text, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := prompts.NewRenderer(prompts.RenderConfig{SoundsDir: soundsDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = callflow.CompileFlows(&md, cfg.Flows, r)
	return err
}

// sendEventAccepts sends a CUSTOM event through a real session to the
// double, with v as the subclass or as a header's name, and reports
// whether the call could send it.
func sendEventAccepts(t *testing.T, rule, v string) bool {
	t.Helper()
	subclass, headers := "eslapp::x", []esl.EventHeader{{Name: "Call-UUID", Value: "x"}}
	if rule == "event subclass" {
		subclass = v
	} else {
		headers = append(headers, esl.EventHeader{Name: v, Value: "v"})
	}
	accepted := make(chan bool, 1)
	addr := serve(t, esl.RunnerConfig{Logger: testLog(t), Handler: func(ctx context.Context, c *esl.Call) {
		_, err := c.SendEvent(ctx, subclass, headers, nil)
		accepted <- err == nil
	}}, esl.ServerConfig{Logger: testLog(t)})
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	if _, err := fs.Dial(context.Background(), addr, esltest.CallOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case ok := <-accepted:
		return ok
	case <-time.After(10 * time.Second):
		t.Fatal("no verdict")
		return false
	}
}
