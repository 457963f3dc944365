package callflow_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eslapp/eslapp/callflow"
	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/esl/esltest"
)

// lateEngine is an engine on the base configuration whose late results go
// over an inbound connection to fs.
func lateEngine(t *testing.T, fs *esltest.FreeSWITCH) *callflow.Engine {
	t.Helper()
	var in *esl.Inbound
	e := newEngine(t, expandIncludes(t, "@base\n"), testLog(t), func(c *callflow.Config) {
		c.Late = lateSinkFunc(func() callflow.LateSink { return in })
	})
	in, _ = startInbound(t, e, fs)
	return e
}

// lateSinkFunc resolves the sink when a result comes: the inbound
// connection is made after the engine it serves.
type lateSinkFunc func() callflow.LateSink

func (f lateSinkFunc) SendEvent(ctx context.Context, sub string, h []esl.EventHeader, b []byte) error {
	return f().SendEvent(ctx, sub, h, b)
}
func (f lateSinkFunc) SetVar(ctx context.Context, uuid, name, value string) error {
	return f().SetVar(ctx, uuid, name, value)
}

func lateEvents(fs *esltest.FreeSWITCH) []esltest.FiredEvent {
	var out []esltest.FiredEvent
	for _, ev := range fs.FiredEvents() {
		if ev.Subclass == callflow.LateSubclass {
			out = append(out, ev)
		}
	}
	return out
}

func waitLate(t *testing.T, fs *esltest.FreeSWITCH) esltest.FiredEvent {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if evs := lateEvents(fs); len(evs) > 0 {
			return evs[0]
		}
		if time.Now().After(deadline) {
			t.Fatal("no eslapp::workflow_late_result event")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func header(ev esltest.FiredEvent, name string) string {
	for _, h := range ev.Headers {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

// A step with a late-result window still ends OnTimeout on time; the CRM's
// answer, 2 s in, reaches the agent as an event and, while the flow plays
// on, the channel variable.
func TestLateResultDelivered(t *testing.T) {
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	var in *esl.Inbound
	e := newEngine(t, expandIncludes(t, `[flows.late]
start = "find"
[flows.late.actions.find]
type = "workflow_execute"
config_id = "demo"
workflow_id = "slow"
timeout_ms = 300
late_result_ms = 5000
late_result_var = "late_answer"
branches = { Default = "wait" }
[flows.late.actions.wait]
type = "play"
sequence = '"hold.wav"'
next = "back"
[flows.late.actions.back]
type = "continue"
@base
`), testLog(t), func(c *callflow.Config) {
		c.Late = lateSinkFunc(func() callflow.LateSink { return in })
	})
	in, _ = startInbound(t, e, fs)
	c := runCall(t, e, fs, callScript{opts: esltest.CallOptions{CallerIDNumber: "1235550100", Vars: map[string]string{"wfe_flow": "late"},
		Media: func(string) (time.Duration, bool) { return 3 * time.Second, true }}})
	if b, _ := c.Var("wfe_branch"); b != "OnTimeout" {
		t.Fatalf("branch %q, want OnTimeout", b)
	}
	ev := waitLate(t, fs)
	if got := string(ev.Body); got != `{"late":true}` {
		t.Errorf("late event body %q", got)
	}
	for name, want := range map[string]string{"Call-UUID": c.UUID(), "Workflow-Branch": "OnSuccess", "Workflow-Config-Id": "demo", "Workflow-Id": "slow"} {
		if got := header(ev, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if v, _ := c.Var("late_answer"); v != `{"late":true}` {
		t.Errorf("late_answer = %q on the channel", v)
	}
}

// A caller's hangup does not cancel a request with a window: the answer
// still reaches the agent (the channel is gone, the event carries it).
func TestLateResultAfterHangup(t *testing.T) {
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	e := lateEngine(t, fs)
	c := runCall(t, e, fs, callScript{
		opts: esltest.CallOptions{CallerIDNumber: "1235550100", Vars: map[string]string{
			"wfe_config_id": "demo", "wfe_workflow_id": "slow", "wfe_late_result_ms": "5000",
		}},
		actions: []timedAction{{after: 300 * time.Millisecond, what: "hangup"}},
	})
	if c.Outcome().Kind != esltest.HungUp {
		t.Fatalf("outcome %v", c.Outcome().Kind)
	}
	ev := waitLate(t, fs)
	if got := string(ev.Body); got != `{"late":true}` || header(ev, "Call-UUID") != c.UUID() {
		t.Errorf("late event %q for %q", got, header(ev, "Call-UUID"))
	}
}

// Without an answer within the window nothing is sent; without a window
// (the default) the request is cancelled at the timeout: a step's request
// never outlives its OnTimeout.
func TestLateResultExpiresAndDefaultsOff(t *testing.T) {
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	e := lateEngine(t, fs)
	for _, vars := range []map[string]string{
		{"wfe_late_result_ms": "500"}, // the answer comes 2 s in: too late even for the window
		{},                            // no window
	} {
		vars["wfe_config_id"], vars["wfe_workflow_id"], vars["wfe_timeout_ms"] = "demo", "slow", "300"
		c := runCall(t, e, fs, callScript{opts: esltest.CallOptions{CallerIDNumber: "1235550100", Vars: vars}})
		if b, _ := c.Var("wfe_branch"); b != "OnTimeout" {
			t.Fatalf("%v: branch %q", vars, b)
		}
	}
	time.Sleep(2500 * time.Millisecond) // past the fixture's answer
	if evs := lateEvents(fs); len(evs) != 0 {
		t.Errorf("%d late event(s) sent: %q", len(evs), evs[0].Body)
	}
}

// late_result_ms and late_result_var are checked like every key.
func TestLateResultKeysChecked(t *testing.T) {
	err := compile(t, `[flows.f]
start = "a"
[flows.f.actions.a]
type = "workflow_execute"
config_id = "c"
workflow_id = "w"
late_result_ms = 0
late_result_var = "bad name"`)
	for _, want := range []string{"flows.f.actions.a.late_result_ms", "flows.f.actions.a.late_result_var"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no error at %s: %v", want, err)
		}
	}
}
