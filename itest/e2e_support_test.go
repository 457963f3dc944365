//go:build integration

package itest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// What the end-to-end tests run on: FreeSWITCH's addresses, a test CRM,
// eslapp as a child process, and a log of FreeSWITCH's events per call.

type e2eEnv struct {
	sip      string // FreeSWITCH's SIP profile "eslapp", host:port
	esl      string // its inbound Event Socket, host:port
	password string
	listen   string // where FreeSWITCH's socket application connects
	sounds   string // eslapp's [sounds] dir, as FreeSWITCH sees it too
}

func e2eEnvironment(t *testing.T) e2eEnv {
	env := e2eEnv{
		sip:      os.Getenv("ESLAPP_FS_SIP"),
		esl:      os.Getenv("ESLAPP_FS_ESL"),
		password: os.Getenv("ESLAPP_FS_ESL_PASSWORD"),
		listen:   os.Getenv("ESLAPP_LISTEN"),
		sounds:   os.Getenv("ESLAPP_SOUNDS_DIR"),
	}
	if env.sip == "" || env.esl == "" {
		t.Skip("end-to-end tests need a FreeSWITCH configured from conf/freeswitch: set ESLAPP_FS_SIP (e.g. 127.0.0.1:5080) and ESLAPP_FS_ESL (e.g. 127.0.0.1:8021, password in ESLAPP_FS_ESL_PASSWORD, default ClueCon); see itest/README.md")
	}
	if env.password == "" {
		env.password = "ClueCon"
	}
	if env.listen == "" {
		env.listen = "127.0.0.1:8084" // the socket address of conf/freeswitch/dialplan
	}
	if env.sounds == "" {
		env.sounds = filepath.Join(repoRoot(t), "sounds")
	}
	return env
}

// callLog keeps FreeSWITCH's events by call, as they arrive on the inbound
// Event Socket.
type callLog struct {
	mu      sync.Mutex
	byCall  map[string][]Event // by Unique-ID (CUSTOM events: by Call-UUID)
	hangups map[string]Event   // CHANNEL_HANGUP_COMPLETE by caller number
	err     error
	wake    chan struct{}
}

func newCallLog() *callLog {
	return &callLog{byCall: map[string][]Event{}, hangups: map[string]Event{}, wake: make(chan struct{})}
}

func (l *callLog) add(ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := ev.Get("Unique-ID")
	if ev.Get("Event-Name") == "CUSTOM" {
		id = ev.Get("Call-UUID")
	}
	l.byCall[id] = append(l.byCall[id], ev)
	if ev.Get("Event-Name") == "CHANNEL_HANGUP_COMPLETE" {
		l.hangups[ev.Get("Caller-Caller-ID-Number")] = ev
	}
	close(l.wake)
	l.wake = make(chan struct{})
}

func (l *callLog) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.err = err
	close(l.wake)
	l.wake = make(chan struct{})
}

// hangup waits for the CHANNEL_HANGUP_COMPLETE of the call from ani and
// returns it with every event of that call, in FreeSWITCH's order.
func (l *callLog) hangup(ctx context.Context, ani string) (Event, []Event, error) {
	for {
		l.mu.Lock()
		if ev, ok := l.hangups[ani]; ok {
			evs := slices.Clone(l.byCall[ev.Get("Unique-ID")])
			l.mu.Unlock()
			slices.SortFunc(evs, func(a, b Event) int { return int(a.Sequence() - b.Sequence()) })
			return ev, evs, nil
		}
		err, wake := l.err, l.wake
		l.mu.Unlock()
		if err != nil {
			return Event{}, nil, err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return Event{}, nil, fmt.Errorf("no CHANNEL_HANGUP_COMPLETE for caller %s: %w", ani, ctx.Err())
		}
	}
}

// crmPlan is how the test CRM answers one caller.
type crmPlan struct {
	delay  time.Duration
	status int
	body   string
}

// crmRequest is what the test CRM saw of one caller's request.
type crmRequest struct {
	requestID string
	answered  time.Time // when the response was written
	cancelled bool      // eslapp gave up on the request before the answer
	done      chan struct{}
}

// testCRM answers eslapp's workflow requests by the payload's "phone"
// (the caller's number), with the delay and status planned for it.
type testCRM struct {
	srv   *httptest.Server
	mu    sync.Mutex
	plans map[string]crmPlan
	reqs  map[string]*crmRequest
	logf  func(string, ...any)
}

func newTestCRM(logf func(string, ...any)) *testCRM {
	c := &testCRM{plans: map[string]crmPlan{}, reqs: map[string]*crmRequest{}, logf: logf}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	return c
}

func (c *testCRM) plan(ani string, p crmPlan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.plans[ani] = p
}

func (c *testCRM) serve(w http.ResponseWriter, r *http.Request) {
	var payload struct {
		Phone string `json:"phone"`
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(b, &payload); err != nil || r.URL.Path != "/search" {
		c.logf("test CRM: unexpected %s %s %q", r.Method, r.URL.Path, b)
		http.Error(w, `{"error":"unexpected request"}`, http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	p, planned := c.plans[payload.Phone]
	req := &crmRequest{requestID: r.Header.Get("X-Request-Id"), done: make(chan struct{})}
	if _, seen := c.reqs[payload.Phone]; !seen {
		c.reqs[payload.Phone] = req
	}
	c.mu.Unlock()
	defer close(req.done)
	if !planned {
		c.logf("test CRM: no plan for caller %q", payload.Phone)
		http.Error(w, `{"error":"unknown caller"}`, http.StatusNotFound)
		return
	}
	select {
	case <-time.After(p.delay):
	case <-r.Context().Done():
		req.cancelled = true
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(p.status)
	io.WriteString(w, p.body)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	req.answered = time.Now()
}

// request waits for the caller's request to be answered or cancelled.
func (c *testCRM) request(ctx context.Context, ani string) (*crmRequest, error) {
	for {
		c.mu.Lock()
		req := c.reqs[ani]
		c.mu.Unlock()
		if req != nil {
			select {
			case <-req.done:
				return req, nil
			case <-ctx.Done():
				return nil, fmt.Errorf("the CRM request of caller %s is still running: %w", ani, ctx.Err())
			}
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return nil, fmt.Errorf("eslapp sent the CRM no request for caller %s: %w", ani, ctx.Err())
		}
	}
}

// eslappProc is eslapp running on the tests' configuration.
type eslappProc struct {
	cmd     *exec.Cmd
	logPath string
	metrics string
	done    chan struct{}
	err     error
}

// startEslapp writes the test configuration and starts eslapp on it: the
// demo-crm integration of the dialplan extensions (7000, 7002) pointing at
// the test CRM, and a "demo" flow for 7001 that fires the agent event.
func startEslapp(t *testing.T, env e2eEnv, crmURL, dir string) *eslappProc {
	t.Helper()
	if ln, err := net.Listen("tcp", env.listen); err != nil {
		t.Fatalf("cannot listen on %s, where FreeSWITCH's socket application connects (is the compose eslapp service running? docker compose -f docker/compose.yaml stop eslapp): %v", env.listen, err)
	} else {
		ln.Close()
	}
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metrics := mln.Addr().String()
	mln.Close()

	cfg := fmt.Sprintf(`# Written by itest (end-to-end tests).
[server]
listen = %q
allow = ["127.0.0.0/8", "::1/128"]
metrics_listen = %q
max_calls = 0
drain_timeout = "5s"

[log]
level = "debug"

[sounds]
dir = %q

[tenants.default]
agent_integrations = true

[integrations.demo-crm]
kind = "http"
base_url = %q
timeout_ms = 5000
retries = 0
breaker_failures = 0
invalid_workflow_status = [404]

[integrations.demo-crm.workflows.search-by-phone]
path = "/search"

[flows.demo]
start = "lookup"

[flows.demo.actions.lookup]
type = "workflow_execute"
caption = "itest lookup"
config_id = "demo-crm"
workflow_id = "search-by-phone"
payload = '{"phone":"{ANI}"}'
sequence = '"hold.wav"'
result_var = "lookup"
agent_event = true
branches = { OnSuccess = "agent", Default = "back" }

[flows.demo.actions.agent]
type = "transfer"
destination = "1000 XML default"

[flows.demo.actions.back]
type = "continue"
`, env.listen, metrics, env.sounds, crmURL)
	cfgPath := filepath.Join(dir, "eslapp.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &eslappProc{logPath: filepath.Join(dir, "eslapp.log"), metrics: metrics, done: make(chan struct{})}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(eslappBinary(t), "serve", "-config", cfgPath)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); logFile.Close(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("eslapp's log (%s), last lines:\n%s", p.logPath, p.tail(60))
		}
	})

	// Ready when /metrics answers: the Event Socket listener is bound
	// before the metrics one.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err == nil {
			resp.Body.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("eslapp exited: %v\n%s", p.err, p.tail(40))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("eslapp did not start in 30 s\n%s", p.tail(40))
		}
	}
}

func (p *eslappProc) tail(n int) string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// metricLines returns eslapp's metrics whose names start with prefix.
func (p *eslappProc) metricLines(prefix string) ([]string, error) {
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no metric " + prefix)
	}
	return out, nil
}
