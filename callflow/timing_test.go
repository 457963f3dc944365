package callflow_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eslapp/eslapp/esl/esltest"
)

// crmServer answers every request after delay and records when it
// answered, and whether a request was cancelled before.
type crmServer struct {
	*httptest.Server
	delay     time.Duration
	mu        sync.Mutex
	answered  []time.Time
	cancelled int
}

func newCRMServer(t testing.TB, delay time.Duration) *crmServer {
	s := &crmServer{delay: delay}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(s.delay):
		case <-r.Context().Done():
			s.mu.Lock()
			s.cancelled++
			s.mu.Unlock()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		s.mu.Lock()
		s.answered = append(s.answered, time.Now())
		s.mu.Unlock()
		_, _ = w.Write([]byte(`{"contact":{"id":"C-9","name":"Grace Hopper"}}`))
	}))
	t.Cleanup(s.Close)
	return s
}

func httpConfig(url string) string {
	return fmt.Sprintf(`[integrations.crm]
base_url = %q
retries = 0
[integrations.crm.workflows.lookup]
`, url)
}

func firstCommand(c *esltest.Call, match func(esltest.Command) bool) (esltest.Command, bool) {
	for _, cmd := range c.Commands() {
		if match(cmd) {
			return cmd, true
		}
	}
	return esltest.Command{}, false
}

// The step of the issue, measured: the prompt starts right after connect,
// the CRM answers at 800 ms, the prompt is broken as soon as the answer is
// in, the outputs are set, then resume and the socket closes. The times are logged, not
// asserted (performance is measured by benchmarks, see BENCHMARKS.md).
func TestDialplanStepTiming(t *testing.T) {
	crmSrv := newCRMServer(t, 800*time.Millisecond)
	e := newEngine(t, httpConfig(crmSrv.URL), testLog(t))
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	start := time.Now()
	c := runCall(t, e, fs, callScript{opts: esltest.CallOptions{
		UUID: "22222222-2222-4333-8444-555555555555",
		Vars: map[string]string{
			"wfe_config_id": "crm", "wfe_workflow_id": "lookup",
			"wfe_payload": `{"phone":"{ANI}"}`, "wfe_sequence": `"hold.wav"`,
		},
		Media: func(string) (time.Duration, bool) { return 10 * time.Second, true },
	}})
	connect, _ := firstCommand(c, func(cmd esltest.Command) bool { return cmd.Name == "connect" })
	play, ok := firstCommand(c, func(cmd esltest.Command) bool { return cmd.App == "playback" })
	if !ok {
		t.Fatal("no prompt")
	}
	brk, ok := firstCommand(c, func(cmd esltest.Command) bool { return cmd.Name == "api" && strings.HasPrefix(cmd.Arg(), "uuid_break") })
	if !ok {
		t.Fatal("no uuid_break")
	}
	crmSrv.mu.Lock()
	answered := crmSrv.answered[0]
	crmSrv.mu.Unlock()
	t.Logf("prompt queued %v after connect; CRM answered %v after connect; uuid_break on the wire %v after the CRM's answer",
		play.At.Sub(connect.At).Round(time.Microsecond), answered.Sub(start).Round(time.Millisecond), brk.At.Sub(answered).Round(time.Microsecond))

	names := renderCommands(c, c.UUID(), soundsDir(t))
	want := "connect\nmyevents\nsendmsg set playback_terminators=none\nsendmsg playback SOUNDS/hold.wav\napi uuid_break UUID all\n"
	if !strings.HasPrefix(names, want) || !strings.HasSuffix(names, "resume\n") {
		t.Errorf("commands:\n%s", names)
	}
	if v, _ := c.Var("wfe_branch"); v != "OnSuccess" {
		t.Errorf("wfe_branch = %q", v)
	}
	if v, _ := c.Var("workflowResultOutput"); v != `{"contact":{"id":"C-9","name":"Grace Hopper"}}` {
		t.Errorf("result = %q", v)
	}
	if c.Outcome().Kind != esltest.Resumed {
		t.Errorf("outcome %v", c.Outcome().Kind)
	}
}

// A CRM answering after 2 s with timeoutMilliSec=1000: OnTimeout at about
// one second, and the CRM sees its request cancelled.
func TestDialplanStepTimeout(t *testing.T) {
	crmSrv := newCRMServer(t, 2*time.Second)
	e := newEngine(t, httpConfig(crmSrv.URL), testLog(t))
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	c := runCall(t, e, fs, callScript{opts: esltest.CallOptions{
		Vars: map[string]string{
			"wfe_config_id": "crm", "wfe_workflow_id": "lookup", "timeoutMilliSec": "1000",
			"wfe_sequence": `"hold.wav"`,
		},
		Media: func(string) (time.Duration, bool) { return 10 * time.Second, true },
	}})
	branch, _ := c.Var("wfe_branch")
	elapsed, _ := c.Var("wfe_elapsed_ms")
	if branch != "OnTimeout" {
		t.Fatalf("wfe_branch = %q", branch)
	}
	t.Logf("OnTimeout after %s ms", elapsed)
	deadline := time.Now().Add(5 * time.Second)
	for {
		crmSrv.mu.Lock()
		cancelled := crmSrv.cancelled
		crmSrv.mu.Unlock()
		if cancelled == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the CRM never saw its request cancelled")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkDecisionLatency runs dialplan-mode calls one after another
// against a CRM answering in 20 ms and reports, from the CRM's answer to
// uuid_break on the wire, the median and the 99th percentile.
func BenchmarkDecisionLatency(b *testing.B) {
	crmSrv := newCRMServer(b, 20*time.Millisecond)
	e := newEngine(b, httpConfig(crmSrv.URL), nil)
	fs := esltest.New(esltest.Options{NoRecordFrames: true, Logf: func(string, ...any) {}})
	var lat []time.Duration
	for i := range b.N {
		c := runCall(b, e, fs, callScript{opts: esltest.CallOptions{
			Vars: map[string]string{"wfe_config_id": "crm", "wfe_workflow_id": "lookup", "wfe_sequence": `"hold.wav"`},
		}})
		brk, ok := firstCommand(c, func(cmd esltest.Command) bool { return cmd.Name == "api" && strings.HasPrefix(cmd.Arg(), "uuid_break") })
		crmSrv.mu.Lock()
		answered := crmSrv.answered[i]
		crmSrv.mu.Unlock()
		if ok {
			lat = append(lat, brk.At.Sub(answered))
		}
	}
	if len(lat) == 0 {
		b.Fatal("no break measured")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-break-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-break-µs")
}
