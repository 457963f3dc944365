package callflow_test

import (
	"context"
	"fmt"
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
// variables, and a flow's custom event meets FreeSWITCH's sendevent.
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
	step := func(extra string) string {
		return base + `
[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
config_id = "demo"
workflow_id = "lookup"
` + extra + `
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
		{name: "step timeout", values: []string{"1", "3000", "600000", "0", "600001", "900000", "-5"},
			check: func(v string) string { return step("timeout_ms = " + v) },
			run:   func(t *testing.T, v string) bool { return dialplanAccepts(t, "wfe_timeout_ms", v) }},
		{name: "prompt policy", values: []string{"interrupt", "complete", "loop", "sometimes", "LOOP"},
			check: func(v string) string { return step(fmt.Sprintf("prompt_policy = %q", v)) },
			run:   func(t *testing.T, v string) bool { return dialplanAccepts(t, "wfe_prompt_policy", v) }},
		{name: "sequence reference", values: []string{`"%Hi {ANI}"`, `"%Hi {a.b}"`, `"%Hi {a..b}"`, `"%Hi {1x}"`, `"%Hi {a[}"`},
			check: func(v string) string { return step(fmt.Sprintf("sequence = '%s'", v)) },
			run:   func(t *testing.T, v string) bool { return dialplanAccepts(t, "wfe_sequence", v) }},
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
