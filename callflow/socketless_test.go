package callflow_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eslapp/eslapp/callflow"
	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/esl/esltest"
)

// Every golden call again, socket-less: the dialplan fires the start event
// and parks, eslapp runs the call over its shared inbound connection. The
// contract is the held socket's, so the channel variables and the events
// fired must be exactly the golden file's, and the call must leave the
// same way: where the socket resumed the dialplan, the socket-less call is
// transferred to ${wfe_branch} in the context the dialplan named. Only
// the commands differ (see the socket-less goldens' commands in
// TestSocketlessCommands). Calls about the socket itself (a socket without
// "full", a dropped socket) have no socket-less counterpart.
func TestGoldenCallsSocketless(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "calls", "*.txt"))
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			g := parseGolden(raw)
			cs := parseCall(t, g.sections["call"])
			if cs.opts.NotFull || hasAction(cs, "cut") {
				t.Skip("about the socket itself")
			}
			log := testLog(t)
			e := newEngine(t, expandIncludes(t, g.sections["config"]), log)
			fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
			c := runSocketless(t, e, fs, cs)

			if got, want := renderVars(c, cs.show), g.sections["vars"]; got != want {
				t.Errorf("vars:\n--- got\n%s--- want\n%s", got, want)
			}
			if got, want := renderEventsFor(fs, cs.opts.UUID, soundsDir(t)), g.sections["events"]; got != want {
				t.Errorf("events:\n--- got\n%s--- want\n%s", got, want)
			}
			want := strings.TrimSpace(g.sections["outcome"])
			if want == "Resumed" {
				branch, _ := c.Var("wfe_branch")
				want = "Transferred to " + branch + " XML crm_branches"
			}
			if got := socketlessOutcome(c); got != want {
				t.Errorf("outcome %q, want %q; commands:\n%s", got, want, renderCommands(c, cs.opts.UUID, soundsDir(t)))
			}
			if c.Outcome().NetFired {
				t.Error("the safety net fired: eslapp did not cancel it")
			}
			// Nothing left in FreeSWITCH's scheduler: the claim took the
			// pick-up net, leaving (or the hangup) took eslapp's.
			deadline := time.Now().Add(2 * time.Second)
			for fs.ScheduledTasks(esl.PickGroup(c.UUID()))+fs.ScheduledTasks(esl.NetGroup(c.UUID())) > 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if n := fs.ScheduledTasks(esl.PickGroup(c.UUID())) + fs.ScheduledTasks(esl.NetGroup(c.UUID())); n > 0 {
				t.Errorf("%d scheduled tasks left for the call", n)
			}
			if n := len(c.Outcome().Transfers); n > 1 {
				t.Errorf("transferred %d times: %v", n, c.Outcome().Transfers)
			}
		})
	}
}

func hasAction(cs callScript, what string) bool {
	for _, a := range cs.actions {
		if a.what == what {
			return true
		}
	}
	return false
}

// socketlessOutcome is renderOutcome without the hangup that follows a
// transfer (the socket-less call is observed until it hangs up, a socket
// call until its socket closes).
func socketlessOutcome(c *esltest.Call) string {
	o := c.Outcome()
	if o.Kind == esltest.Transferred {
		return "Transferred to " + o.TransferDest
	}
	return strings.TrimSpace(renderOutcome(c))
}

// startInbound connects an Inbound with the engine to the double, and
// returns it with its runner.
func startInbound(t testing.TB, e *callflow.Engine, fs *esltest.FreeSWITCH) (*esl.Inbound, *esl.Runner) {
	t.Helper()
	addr, err := fs.ListenInbound("ClueCon")
	if err != nil {
		t.Fatal(err)
	}
	var log *slog.Logger
	if _, bench := t.(*testing.B); !bench {
		log = testLog(t)
	}
	r, err := esl.NewRunner(esl.RunnerConfig{Bind: e.Binding, CommandTimeout: 3 * time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	in, err := esl.NewInbound(r, esl.InboundConfig{
		Address: addr, Password: "ClueCon", Logger: log,
		CommandTimeout: 3 * time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	go in.Serve()
	t.Cleanup(func() {
		r.Close()
		fs.StopInbound()
	})
	waitConnected(t, in)
	return in, r
}

func waitConnected(t testing.TB, in *esl.Inbound) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for in.Stats().State != esl.InboundConnected {
		if time.Now().After(deadline) {
			t.Fatalf("inbound connection not up: %+v", in.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runSocketless runs one call on the socket-less path.
func runSocketless(t testing.TB, e *callflow.Engine, fs *esltest.FreeSWITCH, cs callScript) *esltest.Call {
	t.Helper()
	_, r := startInbound(t, e, fs)
	opts := cs.opts
	opts.Vars = map[string]string{esl.ContextVar: "crm_branches"}
	for k, v := range cs.opts.Vars {
		opts.Vars[k] = v
	}
	start := time.Now()
	// The shipped dialplan: a pick-up net, hold music while the call
	// waits.
	c, err := fs.Socketless(context.Background(), esltest.SocketlessOptions{
		CallOptions: opts, Pick: 30 * time.Second, PickDest: "OnError XML crm_branches", Music: "local_stream://eslapp_hold",
	})
	if err != nil {
		t.Fatal(err)
	}
	return play(t, c, cs, start, func() { go r.Shutdown(expired()) })
}

// What a socket-less dialplan-mode call sends FreeSWITCH, in order, with
// the shipped dialplan: the claim and the net in one write, the filter,
// the prompt, the break, the outputs, the net taken away, the transfer,
// the filter deleted. A call's one step is covered by the net its claim
// armed: nothing is re-armed.
func TestSocketlessCommands(t *testing.T) {
	e := newEngine(t, expandIncludes(t, "@base\n"), testLog(t))
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	c := runSocketless(t, e, fs, callScript{opts: esltest.CallOptions{
		Vars:  map[string]string{"wfe_config_id": "demo", "wfe_workflow_id": "lookup", "playback_terminators": "none"},
		Media: func(string) (time.Duration, bool) { return 10 * time.Second, true },
	}})
	var apps []string // the sendmsg applications, in order
	for _, cmd := range c.Commands() {
		if cmd.Name == "sendmsg" {
			apps = append(apps, cmd.App)
		}
	}
	var got []string
	for _, line := range fs.InboundCommands() {
		if !strings.Contains(line, c.UUID()) {
			continue // the connection's own: auth, event, filters of others
		}
		line = strings.ReplaceAll(line, c.UUID(), "UUID")
		if strings.HasPrefix(line, "sendmsg") && len(apps) > 0 {
			line, apps = line+" "+apps[0], apps[1:]
		}
		got = append(got, line)
	}
	want := []string{
		"api sched_del eslapp-pick-UUID",
		"api sched_api +9 eslapp-net-UUID uuid_transfer UUID OnError XML crm_branches",
		"filter Unique-ID UUID",
		"sendmsg UUID playback",
		"api uuid_break UUID all",
		"sendmsg UUID multiset",
		"api sched_del eslapp-net-UUID",
		"api uuid_transfer UUID OnSuccess XML crm_branches",
		"filter delete Unique-ID UUID",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The shipped dialplan holds a socket-less call in hold music, which the
// first step's uuid_break ends too; a later step's grace is then filled
// with eslapp's own hold music, never silence. An answer within the grace
// stops it (no prompt); one after it makes way for the prompt.
func TestSocketlessGraceFilledAfterTheMusic(t *testing.T) {
	cfg := `[flows.two]
start = "first"
[flows.two.actions.first]
type = "workflow_execute"
config_id = "demo"
workflow_id = "quick"
sequence = '"hold.wav"'
branches = { Default = "second" }
[flows.two.actions.second]
type = "workflow_execute"
config_id = "demo"
workflow_id = "{second}"
sequence = '"hold.wav"'
grace_ms = 400
branches = { Default = "back" }
[flows.two.actions.back]
type = "continue"
[[integrations.demo.workflows.quick.rules]]
delay_ms = 100
body = '{}'
[[integrations.demo.workflows.within.rules]]
delay_ms = 150
body = '{}'
[[integrations.demo.workflows.after.rules]]
delay_ms = 700
body = '{}'
@base
`
	for _, tc := range []struct {
		workflow string
		want     []string // what the caller hears, in order
	}{
		{"within", []string{"local_stream://eslapp_hold", "hold.wav", "holdmusic.wav"}},
		{"after", []string{"local_stream://eslapp_hold", "hold.wav", "holdmusic.wav", "hold.wav"}},
	} {
		t.Run(tc.workflow, func(t *testing.T) {
			e := newEngine(t, expandIncludes(t, cfg), testLog(t))
			fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
			c := runSocketless(t, e, fs, callScript{opts: esltest.CallOptions{
				Vars:  map[string]string{"wfe_flow": "two", "second": tc.workflow},
				Media: func(string) (time.Duration, bool) { return 10 * time.Second, true },
			}})
			var heard []string
			for _, p := range c.Played() {
				if strings.HasPrefix(p.Arg, "local_stream://") {
					heard = append(heard, p.Arg)
				} else {
					heard = append(heard, filepath.Base(p.Arg))
				}
			}
			if strings.Join(heard, " ") != strings.Join(tc.want, " ") {
				t.Errorf("the caller heard %v, want %v", heard, tc.want)
			}
			if b, _ := c.Var("wfe_branch"); b != "OnSuccess" {
				t.Errorf("branch %q", b)
			}
		})
	}
}
