package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/esl/esltest"
	"github.com/eslapp/eslapp/internal/testlog"
)

// SIGTERM with calls in flight: they finish, a call arriving during the
// drain finds eslapp no longer listening (FreeSWITCH tries its next
// address, or goes on after socket), and eslapp exits 0.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	path := filepath.Join(t.TempDir(), "eslapp.toml")
	writeFile(t, path, "[server]\nlisten = \"127.0.0.1:0\"\ndrain_timeout = \"10s\"\n[log]\nlevel = \"debug\"\n[prompts]\nhold_music = \"\"\n")

	release := make(chan struct{})
	ready := make(chan net.Addr, 1)
	signals := make(chan os.Signal, 2)
	var stderr syncWriter
	exit := make(chan int, 1)
	go func() {
		defer close(ready)
		exit <- run([]string{"serve", "-config", path}, &bytes.Buffer{}, &stderr, runHooks{
			ready:   ready,
			signals: signals,
			handler: func(ctx context.Context, c *esl.Call) {
				<-release
				_ = c.SetVar(ctx, "finished", "yes")
			},
		})
	}()
	a, ok := <-ready
	if !ok {
		t.Fatalf("eslapp did not start: exit %d\n%s", <-exit, stderr.String())
	}
	addr := a.String()
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	var inFlight []*esltest.Call
	for range 3 {
		c, err := fs.Dial(context.Background(), addr, esltest.CallOptions{})
		if err != nil {
			t.Fatal(err)
		}
		inFlight = append(inFlight, c)
	}
	for _, c := range inFlight {
		if _, err := c.WaitFor(context.Background(), func(cmd esltest.Command) bool { return cmd.Name == "myevents" }); err != nil {
			t.Fatal(err)
		}
	}
	signals <- syscall.SIGTERM
	time.Sleep(50 * time.Millisecond) // let the drain begin
	// A draining eslapp no longer listens: FreeSWITCH's "socket A|B"
	// goes to the next address, a single one's dialplan goes on after
	// socket (OnError, as it set before).
	if _, err := fs.Dial(context.Background(), addr, esltest.CallOptions{}); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("a call during the drain reached eslapp: %v", err)
	}
	close(release)
	for _, c := range inFlight {
		<-c.Done()
		if v, _ := c.Var("finished"); v != "yes" || c.Outcome().Kind != esltest.Exited {
			t.Errorf("call in flight: finished=%q outcome %v", v, c.Outcome().Kind)
		}
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("eslapp did not exit\n%s", stderr.String())
	}
}

type syncWriter = testlog.Buffer

// A second SIGTERM ends the drain at once, and the calls still in the step
// go back to the dialplan with their outputs set (OnError, "eslapp is
// shutting down") rather than being cut off in their hold music.
func TestServeSecondSignalHandsCallsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "eslapp.toml")
	writeFile(t, path, `[server]
listen = "127.0.0.1:0"
drain_timeout = "60s"
[prompts]
hold_music = ""
[integrations.demo]
kind = "fixture"
[[integrations.demo.workflows.slow.rules]]
delay_ms = 30000
body = '{}'
`)
	srv := startServing(t, path)
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	c, err := fs.Dial(context.Background(), srv.addr, esltest.CallOptions{Vars: map[string]string{
		"wfe_config_id": "demo", "wfe_workflow_id": "slow", "wfe_sequence": `"hold.wav"`,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFor(context.Background(), func(cmd esltest.Command) bool { return cmd.App == "playback" }); err != nil {
		t.Fatal(err)
	}
	srv.signals <- syscall.SIGTERM
	srv.signals <- syscall.SIGTERM
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("the call was not handed back\n%s", srv.stderr.String())
	}
	branch, _ := c.Var("wfe_branch")
	errVar, _ := c.Var("workflowErrorOutput")
	if c.Outcome().Kind != esltest.Resumed || branch != "OnError" || errVar != `{"branch":"OnError","message":"eslapp is shutting down"}` {
		t.Errorf("outcome %v, wfe_branch %q, error %q", c.Outcome().Kind, branch, errVar)
	}
	srv.wait(t)
}

// A workflow whose breaker opens shows in eslapp_crm_breaker_open with its
// integration and workflow; the integration's other workflows stay closed.
func TestServeBreakerMetric(t *testing.T) {
	metricsAddr := freeAddr(t)
	path := filepath.Join(t.TempDir(), "eslapp.toml")
	writeFile(t, path, `[server]
listen = "127.0.0.1:0"
metrics_listen = "`+metricsAddr+`"
[prompts]
hold_music = ""
[integrations.demo]
kind = "fixture"
breaker_failures = 1
[[integrations.demo.workflows.broken.rules]]
status = 500
body = '{"error":"down"}'
[[integrations.demo.workflows.fine.rules]]
body = '{}'
`)
	srv := startServing(t, path)
	defer srv.stop(t)
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	for _, wf := range []string{"broken", "fine"} {
		c, err := fs.Dial(context.Background(), srv.addr, esltest.CallOptions{Vars: map[string]string{"wfe_config_id": "demo", "wfe_workflow_id": wf}})
		if err != nil {
			t.Fatal(err)
		}
		<-c.Done()
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `eslapp_crm_breaker_open{config_id="demo",workflow_id="broken"} 1`) {
		t.Errorf("no open breaker for demo/broken in:\n%s", grepLines(string(body), "eslapp_crm_breaker"))
	}
	if strings.Contains(string(body), `workflow_id="fine"} 1`) {
		t.Error("the breaker of demo/fine is open")
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// serving is eslapp serve running in the test on a configuration file.
type serving struct {
	addr    string // the Event Socket listener
	signals chan os.Signal
	exit    chan int
	stderr  *syncWriter
}

// startServing runs serve -config path and waits until it takes calls.
func startServing(t *testing.T, path string) *serving {
	t.Helper()
	s := &serving{signals: make(chan os.Signal, 2), exit: make(chan int, 1), stderr: &syncWriter{}}
	ready := make(chan net.Addr, 1)
	go func() {
		defer close(ready)
		s.exit <- run([]string{"serve", "-config", path}, &bytes.Buffer{}, s.stderr, runHooks{ready: ready, signals: s.signals})
	}()
	a, ok := <-ready
	if !ok {
		t.Fatalf("eslapp did not start: exit %d\n%s", <-s.exit, s.stderr.String())
	}
	s.addr = a.String()
	return s
}

// stop sends SIGTERM and checks that eslapp exits 0 within 10 s.
func (s *serving) stop(t *testing.T) {
	t.Helper()
	s.signals <- syscall.SIGTERM
	s.wait(t)
}

// wait checks that eslapp exits 0 within 10 s.
func (s *serving) wait(t *testing.T) {
	t.Helper()
	select {
	case code := <-s.exit:
		if code != 0 {
			t.Errorf("exit %d\n%s", code, s.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Errorf("eslapp did not exit\n%s", s.stderr.String())
	}
}
