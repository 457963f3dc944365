package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eslapp/eslapp/esl/esltest"
)

// reloadConfig is a configuration whose fixture answers body after delay.
func reloadConfig(listen, metrics, body string, delayMs, maxCalls int) string {
	return fmt.Sprintf(`[server]
listen = %q
metrics_listen = %q
max_calls = %d
drain_timeout = "10s"
[prompts]
hold_music = ""
[integrations.demo]
kind = "fixture"
[[integrations.demo.workflows.lookup.rules]]
delay_ms = %d
body = '%s'
`, listen, metrics, maxCalls, delayMs, body)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func lookupCall(t *testing.T, fs *esltest.FreeSWITCH, addr string) *esltest.Call {
	t.Helper()
	c, err := fs.Dial(context.Background(), addr, esltest.CallOptions{Vars: map[string]string{"wfe_config_id": "demo", "wfe_workflow_id": "lookup"}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func result(t *testing.T, c *esltest.Call) string {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("call not over")
	}
	if c.Outcome().Kind != esltest.Resumed {
		t.Errorf("outcome %v", c.Outcome().Kind)
	}
	v, _ := c.Var("workflowResultOutput")
	return v
}

// SIGHUP reloads: new calls get the new configuration, a call in progress
// finishes on the one it started with, a broken configuration is refused
// whole (each problem logged with its line, the failure in a metric) and
// the running one stays, and a change to listen is logged as needing a
// restart.
func TestServeReloadOnSIGHUP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "eslapp.toml")
	listen, metrics := freeAddr(t), freeAddr(t)
	writeFile(t, path, reloadConfig(listen, metrics, `{"v":"a"}`, 300, 0))
	srv := startServing(t, path)
	defer srv.stop(t)
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})

	inFlight := lookupCall(t, fs, srv.addr)
	if _, err := inFlight.WaitFor(context.Background(), func(cmd esltest.Command) bool { return cmd.Name == "myevents" }); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, reloadConfig(listen, metrics, `{"v":"b"}`, 0, 0))
	srv.signals <- syscall.SIGHUP
	waitLog(t, srv, "reload: configuration loaded")
	if got := result(t, lookupCall(t, fs, srv.addr)); got != `{"v":"b"}` {
		t.Errorf("a call after the reload got %s", got)
	}
	if got := result(t, inFlight); got != `{"v":"a"}` {
		t.Errorf("the call in progress got %s, want the configuration it started with\n%s", got, srv.stderr.String())
	}

	writeFile(t, path, reloadConfig(listen, metrics, `{"v":"c"}`, 0, 0)+"[prompts]\npolicy = \"sometimes\"\n")
	srv.signals <- syscall.SIGHUP
	waitLog(t, srv, "the running configuration stays")
	if !strings.Contains(srv.stderr.String(), path+":") {
		t.Errorf("the problem is not logged with its file and line:\n%s", srv.stderr.String())
	}
	if got := result(t, lookupCall(t, fs, srv.addr)); got != `{"v":"b"}` {
		t.Errorf("after a failed reload a call got %s, want the running configuration's", got)
	}
	if m := scrape(t, metrics); !strings.Contains(m, "eslapp_config_reload_failures_total 1") || strings.Contains(m, "eslapp_config_last_reload_failure_timestamp_seconds 0\n") {
		t.Errorf("reload metrics:\n%s", grepLines(m, "eslapp_config"))
	}

	writeFile(t, path, reloadConfig(freeAddr(t), metrics, `{"v":"d"}`, 0, 0))
	srv.signals <- syscall.SIGHUP
	waitLog(t, srv, `key=server.listen`)
	if got := result(t, lookupCall(t, fs, srv.addr)); got != `{"v":"d"}` {
		t.Errorf("the listener moved, or the rest did not reload: %s", got)
	}
}

// Reloading in a loop under load loses no call: every call ends on one of
// the two configurations' answers.
func TestServeReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "eslapp.toml")
	listen, metrics := freeAddr(t), freeAddr(t)
	configs := []string{reloadConfig(listen, metrics, `{"v":"a"}`, 20, 0), reloadConfig(listen, metrics, `{"v":"b"}`, 5, 0)}
	writeFile(t, path, configs[0])
	srv := startServing(t, path)
	defer srv.stop(t)
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})

	stop := make(chan struct{})
	var reloads sync.WaitGroup
	reloads.Add(1)
	go func() {
		defer reloads.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			writeFile(t, path, configs[i%2])
			srv.signals <- syscall.SIGHUP
		}
	}()
	const calls, workers = 300, 20
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls / workers {
				c, err := fs.Dial(context.Background(), srv.addr, esltest.CallOptions{Vars: map[string]string{"wfe_config_id": "demo", "wfe_workflow_id": "lookup"}})
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				<-c.Done()
				v, _ := c.Var("workflowResultOutput")
				branch, _ := c.Var("wfe_branch")
				mu.Lock()
				seen[branch+" "+v]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	reloads.Wait()
	total := 0
	for k, n := range seen {
		if k != `OnSuccess {"v":"a"}` && k != `OnSuccess {"v":"b"}` {
			t.Errorf("%d call(s) ended %q", n, k)
		}
		total += n
	}
	if total != calls {
		t.Errorf("%d calls ended, want %d: %v", total, calls, seen)
	}
	t.Logf("outcomes: %v", seen)
}

func waitLog(t *testing.T, srv *serving, text string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(srv.stderr.String(), text); {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q:\n%s", text, srv.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
