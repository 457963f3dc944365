//go:build integration

package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
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
	out      string // where eslapp's log, its config, SIPp's traces and FreeSWITCH's console go
	fs       *FreeSWITCH
}

var (
	fsOnce    sync.Once
	fsStarted *FreeSWITCH
	fsErr     error
)

// e2eEnvironment finds the FreeSWITCH to call: one it starts from
// ESLAPP_FREESWITCH (a binary; once per test run, stopped after the last
// test), else a running one at ESLAPP_FS_SIP and ESLAPP_FS_ESL. Without
// either the test skips with one line, except in CI (CI set), where it
// fails: CI must never skip the real calls.
func e2eEnvironment(t *testing.T) e2eEnv {
	env := e2eEnv{
		sip:      os.Getenv("ESLAPP_FS_SIP"),
		esl:      os.Getenv("ESLAPP_FS_ESL"),
		password: os.Getenv("ESLAPP_FS_ESL_PASSWORD"),
		listen:   os.Getenv("ESLAPP_LISTEN"),
		sounds:   os.Getenv("ESLAPP_SOUNDS_DIR"),
		out:      os.Getenv("ESLAPP_ITEST_OUT"),
	}
	if env.listen == "" {
		env.listen = "127.0.0.1:8084" // the socket address of conf/freeswitch/dialplan
	}
	if env.sounds == "" {
		env.sounds = filepath.Join(repoRoot(t), "sounds")
	}
	if env.out == "" {
		env.out = t.TempDir()
	} else if err := os.MkdirAll(env.out, 0o755); err != nil {
		t.Fatalf("ESLAPP_ITEST_OUT: %v", err)
	}
	if bin := os.Getenv("ESLAPP_FREESWITCH"); bin != "" {
		env.fs = startFreeSWITCHOnce(t, bin, env)
		env.sip, env.esl, env.password = env.fs.SIP, env.fs.ESL, env.fs.Password
		return env
	}
	if env.sip == "" || env.esl == "" {
		const why = "end-to-end tests need a FreeSWITCH: set ESLAPP_FREESWITCH to its binary (the kit's install prints it), or ESLAPP_FS_SIP and ESLAPP_FS_ESL to a running one configured from conf/freeswitch; see itest/README.md"
		if os.Getenv("CI") != "" {
			t.Fatal("CI: " + why)
		}
		t.Skip(why)
	}
	if env.password == "" {
		env.password = "ClueCon"
	}
	return env
}

// startFreeSWITCHOnce starts FreeSWITCH for the whole test run, in
// OUT/freeswitch, and stops it after the last test.
func startFreeSWITCHOnce(t *testing.T, bin string, env e2eEnv) *FreeSWITCH {
	fsOnce.Do(func() {
		dir := filepath.Join(env.out, "freeswitch")
		if os.Getenv("ESLAPP_ITEST_OUT") == "" {
			// t.TempDir goes with the first test; FreeSWITCH outlives it.
			if dir, fsErr = os.MkdirTemp("", "eslapp-itest-freeswitch-"); fsErr != nil {
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		fsStarted, fsErr = StartFreeSWITCH(ctx, FreeSWITCHOptions{Binary: bin, SoundsDir: env.sounds, Dir: dir})
		if fsErr != nil {
			return
		}
		atExitMu.Lock()
		atExit = append(atExit, func() {
			fsStarted.Stop()
			if os.Getenv("ESLAPP_ITEST_OUT") == "" {
				os.RemoveAll(dir)
			}
		})
		atExitMu.Unlock()
	})
	if fsErr != nil {
		t.Fatalf("ESLAPP_FREESWITCH=%s: %v", bin, fsErr)
	}
	t.Logf("%s (pid %d, console %s)", fsStarted.Version, fsStarted.PID(), fsStarted.ConsoleLog)
	return fsStarted
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
	none   bool // no request may come (no eslapp takes the call)
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

// seen is the caller's request, nil when none came.
func (c *testCRM) seen(ani string) *crmRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reqs[ani]
}

// started waits until the caller's request has come.
func (c *testCRM) started(ctx context.Context, ani string) error {
	for c.seen(ani) == nil {
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("eslapp sent the CRM no request for caller %s: %w", ani, ctx.Err())
		}
	}
	return nil
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

// startEslapp writes the test configuration and starts eslapp on it: the
// demo-crm integration of the dialplan extensions (7000, 7002, 7010)
// pointing at the test CRM, a "demo" flow for 7001 and 7011 that fires the
// agent event, and the socket-less mode on FreeSWITCH's inbound Event
// Socket (the password by ${env:...}, as operators write it). The process
// is stopped when t ends.
func startEslapp(t *testing.T, env e2eEnv, crmURL, dir string) *Eslapp {
	t.Helper()
	if ln, err := net.Listen("tcp", env.listen); err != nil {
		t.Fatalf("cannot listen on %s, where FreeSWITCH's socket application connects (is the compose eslapp service running? docker compose -f docker/compose.yaml stop eslapp): %v", env.listen, err)
	} else {
		ln.Close()
	}
	p, err := launchEslapp(eslappBinary(t), env, crmURL, dir)
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(t, p)
	return p
}

// stopAtEnd stops p when t ends, with its log's tail if t failed.
func stopAtEnd(t *testing.T, p *Eslapp) {
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("eslapp's log (%s), last lines:\n%s", p.LogPath, p.Tail(60))
		}
	})
}

// launchEslapp is startEslapp without a test to fail: it returns once
// eslapp serves and its socket-less connection is up.
func launchEslapp(bin string, env e2eEnv, crmURL, dir string) (*Eslapp, error) {
	metrics, err := FreeTCPAddr()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`# Written by itest (end-to-end tests).
[server]
listen = %q
allow = ["127.0.0.0/8", "::1/128"]
metrics_listen = %q
max_calls = 0
drain_timeout = "5s"

[socketless]
enabled = true
address = %q
password = "${env:ESLAPP_ITEST_ESL_PASSWORD}"

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

# 7021: CRM data the dialplan uses (see conf/freeswitch, harness_mappings).
[flows.mapped]
start = "lookup"

[flows.mapped.actions.lookup]
type = "workflow_execute"
config_id = "demo-crm"
workflow_id = "search-by-phone"
payload = '{"phone":"{ANI}"}'
sequence = '"hold.wav"'
branches = { Default = "back" }

[flows.mapped.actions.lookup.mappings]
pwn_name = "result.name"
crm_agent = { path = "result.agent", type = "digits" }
crm_bad = { path = "result.name", type = "digits" }

[flows.mapped.actions.back]
type = "continue"

# 7022: a late result (see conf/freeswitch, harness_late_result).
[flows.late]
start = "find"

[flows.late.actions.find]
type = "workflow_execute"
config_id = "demo-crm"
workflow_id = "search-by-phone"
payload = '{"phone":"{ANI}"}'
sequence = '"hold.wav"'
timeout_ms = 500
late_result_ms = 5000
late_result_var = "late_answer"
branches = { Default = "back" }

[flows.late.actions.back]
type = "continue"
`, env.listen, metrics, env.esl, env.sounds, crmURL)
	cfgPath := filepath.Join(dir, "eslapp.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	p, err := StartEslapp(context.Background(), bin, dir, cfgPath, metrics, filepath.Join(dir, "eslapp.log"),
		"ESLAPP_ITEST_ESL_PASSWORD="+env.password)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WaitSocketless(ctx); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}
