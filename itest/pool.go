package itest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A pool is several FreeSWITCH processes from the kit side by side, and
// several eslapps each connected to every one of them — socket-less over
// [[socketless.hosts]], held-socket through each FreeSWITCH's "socket A|B"
// list — with a CRM of its own, and a record of every call as FreeSWITCH
// saw it: the pool's fault tests (pool_test.go) and itest/pool (the long
// runs whose figures go to BENCHMARKS.md) drive it.

// PoolOptions say what pool to start.
type PoolOptions struct {
	FreeSWITCH string        // the freeswitch binary
	Eslapp     string        // the eslapp binary; "" builds one
	Dir        string        // everything the pool writes; required
	Hosts      int           // FreeSWITCH processes; default 2
	Eslapps    int           // eslapp processes; default 2
	CRMDelay   time.Duration // how long the CRM takes to answer; default 1 s
	// StepTimeout is the integration's timeout_ms: a step's bound, and so
	// the net of a call whose eslapp dies; default 3 s.
	StepTimeout time.Duration
	LogLevel    string // FreeSWITCH's core log level; default warning
	// ConfDir is the FreeSWITCH tree to copy; default conf/freeswitch
	// (a test may give a copy with extensions of its own).
	ConfDir string
	// ClaimStagger is the eslapps' [socketless] claim_stagger; "" leaves
	// eslapp's default.
	ClaimStagger string
	// EslappLog is eslapp's log level; default info (each step's line
	// names its call, which the record reads).
	EslappLog string
	Logf      func(format string, args ...any)
}

// Pool is a running pool.
type Pool struct {
	opts  PoolOptions
	root  string
	sipp  string
	CRM   *PoolCRM
	Hosts []*PoolHost
	Apps  []*PoolEslapp

	mu    sync.Mutex
	calls map[string]*PoolCall
}

// PoolHost is one FreeSWITCH of the pool.
type PoolHost struct {
	Index   int
	Options FreeSWITCHOptions
	mu      sync.Mutex
	fs      *FreeSWITCH
	watch   chan struct{} // closed to stop the event reader
	localIP string
}

// FS is the running FreeSWITCH (a restart replaces it).
func (h *PoolHost) FS() *FreeSWITCH {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fs
}

// PoolEslapp is one eslapp of the pool.
type PoolEslapp struct {
	Index            int
	Listen, Metrics  string
	cfgPath, logBase string
	mu               sync.Mutex
	proc             *Eslapp
	logs             []string // every log it has written, one per start
}

// Proc is the running process (a restart replaces it).
func (e *PoolEslapp) Proc() *Eslapp {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.proc
}

// PoolCall is one call as FreeSWITCH and the CRM saw it.
type PoolCall struct {
	UUID string
	Host int
	// Ext is the extension the caller called.
	Ext string
	// Announced is when the dialplan fired eslapp::call (socket-less),
	// Prompted when eslapp's prompt (hold.wav) first started, Branched
	// when the call's branch first played (transferring.wav on the way to
	// the agent, apology.wav on OnError), Ended the hangup.
	Announced, Prompted, Branched, Ended time.Time
	// Started is when the INVITE reached FreeSWITCH, Answered its answer
	// (from the hangup's start_uepoch and answer_uepoch: set once the
	// call has ended).
	Started, Answered time.Time
	// Prompts counts the starts of eslapp's prompt: a call whose prompt
	// restarted was taken twice.
	Prompts int
	// Branch is wfe_branch at the end: eslapp's, or the dialplan's OnError
	// when no eslapp set one. Elapsed is eslapp's wfe_elapsed_ms ("" when
	// no eslapp finished a step for the call).
	Branch, Elapsed string
	// Branches are the crm_branches extensions the call was transferred to
	// (OnSuccess XML crm_branches…), in order: more than one is a call
	// moved twice.
	Branches []string
	Agent    bool // it reached the agent stand-in (1000)
	Cause    string
}

// Routed reports whether the call reached one of crm_branches' extensions.
func (c *PoolCall) Routed() bool { return len(c.Branches) > 0 }

// ByNet reports whether a net moved the call to OnError: it got there
// without eslapp's outputs.
func (c *PoolCall) ByNet() bool {
	return c.Elapsed == "" && len(c.Branches) > 0 && strings.HasPrefix(c.Branches[0], "OnError")
}

// StartPool starts the FreeSWITCH processes, the CRM and the eslapps, and
// records every call.
func StartPool(ctx context.Context, o PoolOptions) (*Pool, error) {
	if o.Hosts == 0 {
		o.Hosts = 2
	}
	if o.Eslapps == 0 {
		o.Eslapps = 2
	}
	if o.CRMDelay == 0 {
		o.CRMDelay = time.Second
	}
	if o.StepTimeout == 0 {
		o.StepTimeout = 3 * time.Second
	}
	if o.LogLevel == "" {
		o.LogLevel = "warning"
	}
	if o.EslappLog == "" {
		o.EslappLog = "info"
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	p := &Pool{opts: o, root: root, calls: map[string]*PoolCall{}}
	var why string
	if p.sipp, why = SIPpPath(); p.sipp == "" {
		return nil, errors.New(why)
	}
	if o.Eslapp == "" {
		if o.Eslapp, err = BuildEslapp(ctx, o.Dir); err != nil {
			return nil, err
		}
		p.opts.Eslapp = o.Eslapp
	}
	p.CRM, err = startPoolCRM(o.CRMDelay)
	if err != nil {
		return nil, err
	}
	for i := range o.Eslapps {
		listen, err := FreeTCPAddr()
		if err != nil {
			return nil, err
		}
		metrics, err := FreeTCPAddr()
		if err != nil {
			return nil, err
		}
		p.Apps = append(p.Apps, &PoolEslapp{Index: i, Listen: listen, Metrics: metrics,
			cfgPath: filepath.Join(o.Dir, fmt.Sprintf("eslapp-%d.toml", i)), logBase: filepath.Join(o.Dir, fmt.Sprintf("eslapp-%d", i))})
	}
	// Ports: SIP and ESL free now, RTP ranges disjoint and apart from the
	// default one (another FreeSWITCH may run on it).
	var sockets []string
	for _, a := range p.Apps {
		sockets = append(sockets, a.Listen)
	}
	for i := range o.Hosts {
		sip, err := FreeUDPPorts("127.0.0.1", 1)
		if err != nil {
			return nil, err
		}
		esl, err := FreeTCPAddr()
		if err != nil {
			return nil, err
		}
		_, eslPort, _ := net.SplitHostPort(esl)
		ep, _ := strconv.Atoi(eslPort)
		// Each FreeSWITCH lists the eslapps in its own order, so that the
		// held-socket calls of both go to different ones first.
		order := slices.Clone(sockets)
		for range i % len(order) {
			order = append(order[1:], order[0])
		}
		h := &PoolHost{Index: i, Options: FreeSWITCHOptions{
			Binary: o.FreeSWITCH, ConfDir: o.ConfDir, Dir: filepath.Join(o.Dir, fmt.Sprintf("freeswitch-%d", i)), LogLevel: o.LogLevel,
			// Below the ephemeral ports (32768 up), where SIPp's media
			// ports come from, and apart from the default range
			// (16384-32768) another FreeSWITCH may use.
			SIPPort: sip, ESLPort: ep, RTPStart: 10000 + 1500*i, RTPEnd: 10000 + 1500*i + 1499,
			Sockets: strings.Join(order, "|"),
		}}
		p.Hosts = append(p.Hosts, h)
	}
	errs := make([]error, len(p.Hosts))
	var wg sync.WaitGroup
	for i, h := range p.Hosts {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = p.startHost(ctx, h) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		p.Stop()
		return nil, err
	}
	for _, a := range p.Apps {
		if err := p.writeEslappConfig(a); err != nil {
			p.Stop()
			return nil, err
		}
		if err := p.StartEslapp(ctx, a.Index); err != nil {
			p.Stop()
			return nil, err
		}
	}
	return p, nil
}

// startHost starts a FreeSWITCH and the reader that records its calls.
func (p *Pool) startHost(ctx context.Context, h *PoolHost) error {
	fs, err := StartFreeSWITCH(ctx, h.Options)
	if err != nil {
		return fmt.Errorf("FreeSWITCH %d: %w", h.Index, err)
	}
	if h.localIP, err = LocalIPFor(fs.SIP); err != nil {
		fs.Stop()
		return err
	}
	h.mu.Lock()
	h.fs, h.watch = fs, make(chan struct{})
	watch := h.watch
	h.mu.Unlock()
	p.opts.Logf("FreeSWITCH %d: pid %d, SIP %s, ESL %s, sockets %s", h.Index, fs.PID(), fs.SIP, fs.ESL, h.Options.Sockets)
	ready := make(chan error, 1)
	go p.record(h.Index, fs, watch, ready)
	return <-ready
}

// record reads a FreeSWITCH's events about eslapp's calls until it stops.
func (p *Pool) record(host int, fs *FreeSWITCH, watch chan struct{}, ready chan<- error) {
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	c, err := DialInbound(dctx, fs.ESL, fs.Password)
	cancel()
	if err == nil {
		// CUSTOM last: every word after it is a subclass.
		_, err = c.Command("event plain PLAYBACK_START CHANNEL_HANGUP_COMPLETE CUSTOM eslapp::call")
	}
	ready <- err
	if err != nil {
		return
	}
	go func() {
		select {
		case <-watch:
		case <-fs.Done():
		}
		c.Close()
	}()
	for {
		ev, err := c.Next()
		if err != nil {
			return
		}
		p.note(host, ev)
	}
}

func (p *Pool) note(host int, ev Event) {
	uuid := ev.Get("Unique-ID")
	if uuid == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.calls[uuid]
	if c == nil {
		c = &PoolCall{UUID: uuid, Host: host, Ext: ev.Get("variable_sip_req_user")}
		p.calls[uuid] = c
	}
	switch ev.Get("Event-Name") {
	case "CUSTOM":
		if c.Announced.IsZero() {
			c.Announced = ev.Time()
		}
	case "PLAYBACK_START":
		switch path := ev.Get("Playback-File-Path"); {
		case strings.HasSuffix(path, "/hold.wav"):
			c.Prompts++
			if c.Prompted.IsZero() {
				c.Prompted = ev.Time()
			}
		case strings.HasSuffix(path, "/apology.wav"), strings.HasSuffix(path, "/transferring.wav"):
			if c.Branched.IsZero() {
				c.Branched = ev.Time()
			}
		}
	case "CHANNEL_HANGUP_COMPLETE":
		c.Ended = ev.Time()
		c.Branch = ev.Get("variable_wfe_branch")
		c.Elapsed = ev.Get("variable_wfe_elapsed_ms")
		c.Agent = ev.Get("variable_harness_agent") != ""
		c.Cause = ev.Get("Hangup-Cause")
		c.Started = uepoch(ev.Get("variable_start_uepoch"))
		c.Answered = uepoch(ev.Get("variable_answer_uepoch"))
		c.Branches = transfersTo(ev.Get("variable_transfer_history"), "crm_branches")
		if c.Ext == "" {
			c.Ext = ev.Get("variable_sip_req_user")
		}
	}
}

// uepoch reads FreeSWITCH's microseconds since the epoch; zero for "" or
// "0" (a call never answered).
func uepoch(v string) time.Time {
	us, err := strconv.ParseInt(v, 10, 64)
	if err != nil || us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us)
}

// transfersTo reads FreeSWITCH's transfer_history ("EPOCH:UUID:bl_xfer:
// DEST/CONTEXT/DIALPLAN", several as an ARRAY::a|:b) and returns the
// transfers into context, "DEST XML CONTEXT" each.
func transfersTo(history, context string) []string {
	history = strings.TrimPrefix(history, "ARRAY::")
	var out []string
	for _, h := range strings.Split(history, "|:") {
		i := strings.LastIndex(h, ":")
		if i < 0 {
			continue
		}
		parts := strings.Split(h[i+1:], "/")
		if len(parts) == 3 && parts[1] == context {
			out = append(out, parts[0]+" "+parts[2]+" "+parts[1])
		}
	}
	return out
}

// Calls returns the calls recorded so far, by the time they were announced
// (or ended).
func (p *Pool) Calls() []PoolCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]PoolCall, 0, len(p.calls))
	for _, c := range p.calls {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return firstTime(out[i]).Before(firstTime(out[j])) })
	return out
}

func firstTime(c PoolCall) time.Time {
	if !c.Announced.IsZero() {
		return c.Announced
	}
	return c.Ended
}

// Forget drops the calls recorded so far (between scenarios).
func (p *Pool) Forget() {
	p.mu.Lock()
	p.calls = map[string]*PoolCall{}
	p.mu.Unlock()
	p.CRM.Forget()
}

// writeEslappConfig writes an eslapp's configuration: its own listener and
// metrics, every FreeSWITCH of the pool, the pool's CRM.
func (p *Pool) writeEslappConfig(a *PoolEslapp) error {
	var hosts strings.Builder
	for _, h := range p.Hosts {
		fmt.Fprintf(&hosts, "[[socketless.hosts]]\naddress = %q\npassword = \"${env:ESLAPP_POOL_ESL_%d}\"\n", h.FS().ESL, h.Index)
	}
	stagger := ""
	if p.opts.ClaimStagger != "" {
		stagger = fmt.Sprintf("claim_stagger = %q\n", p.opts.ClaimStagger)
	}
	cfg := fmt.Sprintf(`# Written by itest (the pool).
[server]
listen = %q
metrics_listen = %q
max_calls = 0
drain_timeout = "20s"

[socketless]
enabled = true
probe_interval = "1s"
max_backoff = "1s"
%s%s
[log]
level = %q

[sounds]
dir = %q

[tenants.default]
agent_integrations = true

[integrations.demo-crm]
kind = "http"
base_url = %q
timeout_ms = %d
retries = 0
breaker_failures = 0

[integrations.demo-crm.workflows.search-by-phone]
path = "/search"

[flows.demo]
start = "lookup"

[flows.demo.actions.lookup]
type = "workflow_execute"
config_id = "demo-crm"
workflow_id = "search-by-phone"
payload = '{"phone":"{ANI}"}'
sequence = '"hold.wav"'
branches = { OnSuccess = "agent", Default = "back" }

[flows.demo.actions.agent]
type = "transfer"
destination = "1000 XML default"

[flows.demo.actions.back]
type = "continue"
`, a.Listen, a.Metrics, stagger, hosts.String(), p.opts.EslappLog, filepath.Join(p.root, "sounds"), p.CRM.URL, p.opts.StepTimeout.Milliseconds())
	return os.WriteFile(a.cfgPath, []byte(cfg), 0o644)
}

// StartEslapp starts eslapp i (again) and waits until it is connected to
// every FreeSWITCH.
func (p *Pool) StartEslapp(ctx context.Context, i int) error {
	a := p.Apps[i]
	a.mu.Lock()
	logPath := fmt.Sprintf("%s-%d.log", a.logBase, len(a.logs)+1)
	a.logs = append(a.logs, logPath)
	a.mu.Unlock()
	var env []string
	for _, h := range p.Hosts {
		env = append(env, fmt.Sprintf("ESLAPP_POOL_ESL_%d=%s", h.Index, h.FS().Password))
	}
	proc, err := StartEslapp(ctx, p.opts.Eslapp, p.root, a.cfgPath, a.Metrics, logPath, env...)
	if err != nil {
		return fmt.Errorf("eslapp %d: %w", i, err)
	}
	a.mu.Lock()
	a.proc = proc
	a.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := proc.WaitSocketless(wctx); err != nil {
		return fmt.Errorf("eslapp %d: %w", i, err)
	}
	p.opts.Logf("eslapp %d: pid %d, socket %s, metrics %s, log %s", i, proc.PID(), a.Listen, a.Metrics, logPath)
	return nil
}

// KillEslapp ends eslapp i at once (SIGKILL), as a crash would.
func (p *Pool) KillEslapp(i int) { p.Apps[i].Proc().Kill() }

// PauseEslapp stops eslapp i (SIGSTOP) for d, then lets it go on
// (SIGCONT): a process that stood still.
func (p *Pool) PauseEslapp(i int, d time.Duration) error {
	proc := p.Apps[i].Proc()
	if err := proc.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	time.Sleep(d)
	return proc.cmd.Process.Signal(syscall.SIGCONT)
}

// RestartEslapp drains eslapp i (SIGTERM, waiting for it to exit) and
// starts it again.
func (p *Pool) RestartEslapp(ctx context.Context, i int) error {
	p.Apps[i].Proc().Stop()
	return p.StartEslapp(ctx, i)
}

// RestartFreeSWITCH stops FreeSWITCH h (SIGTERM: its calls end) and
// starts it again on the same ports; the eslapps reconnect by themselves.
func (p *Pool) RestartFreeSWITCH(ctx context.Context, h int) error {
	host := p.Hosts[h]
	host.mu.Lock()
	fs, watch := host.fs, host.watch
	host.watch = nil
	host.mu.Unlock()
	if watch != nil {
		close(watch)
	}
	fs.Stop()
	// The eslapps log in with the password they were started with.
	host.Options.Password = fs.Password
	return p.startHost(ctx, host)
}

// Load places calls to ext on FreeSWITCH h at cps for n calls, each
// waiting for FreeSWITCH's BYE whatever branch it took; wait returns
// SIPp's result.
func (p *Pool) Load(ctx context.Context, h int, ext string, cps float64, n int) (wait func() SIPpResult) {
	host := p.Hosts[h]
	return p.LoadAt(ctx, host.FS().SIP, host.localIP, "uac_load_any.xml", ext, cps, n)
}

// LoadAt places calls to ext at any SIP address — a proxy in front of the
// pool, Kamailio — from localIP with scenario (uac_load_any.xml or a
// variant: its ACK follows the route set), at cps for n calls; wait
// returns SIPp's result.
func (p *Pool) LoadAt(ctx context.Context, remote, localIP, scenario, ext string, cps float64, n int) (wait func() SIPpResult) {
	return SIPp{
		Path: p.sipp, Scenario: scenario, Remote: remote, LocalIP: localIP, Dir: p.opts.Dir,
		Args:    []string{"-s", ext, "-r", strconv.FormatFloat(cps, 'f', -1, 64), "-l", "5000", "-m", strconv.Itoa(n)},
		Timeout: time.Duration(float64(n)/cps*float64(time.Second)) + 2*time.Minute,
	}.Start(ctx)
}

// StopFreeSWITCH ends FreeSWITCH h with sig — SIGTERM, its own shutdown
// (it hangs its calls up); SIGKILL, a crash (its calls get no BYE) — and
// waits until it has exited; StartFreeSWITCHAgain brings it back. Until
// then the pool's other hosts go on and WaitIdle leaves it out.
func (p *Pool) StopFreeSWITCH(h int, sig syscall.Signal) error {
	host := p.Hosts[h]
	host.mu.Lock()
	fs, watch := host.fs, host.watch
	host.watch = nil
	host.mu.Unlock()
	if watch == nil {
		return fmt.Errorf("FreeSWITCH %d is already stopped", h)
	}
	close(watch)
	if err := fs.cmd.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-fs.Done():
	case <-time.After(30 * time.Second):
		fs.Stop() // SIGKILL to its group, after another SIGTERM and 20 s
	}
	fs.removeShm()
	return nil
}

// StartFreeSWITCHAgain starts FreeSWITCH h after StopFreeSWITCH, on the
// same ports and with the same password; the eslapps reconnect by
// themselves.
func (p *Pool) StartFreeSWITCHAgain(ctx context.Context, h int) error {
	host := p.Hosts[h]
	host.Options.Password = host.FS().Password
	return p.startHost(ctx, host)
}

// stepRE finds the call of an eslapp log line about a step.
var stepRE = regexp.MustCompile(`msg="?step[ "].*?call=([0-9a-f-]{36})`)

// Handlers maps each call to the eslapps whose logs (all their starts)
// hold a step of it.
func (p *Pool) Handlers() map[string][]int {
	out := map[string][]int{}
	for _, a := range p.Apps {
		a.mu.Lock()
		logs := slices.Clone(a.logs)
		a.mu.Unlock()
		for _, path := range logs {
			b, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			seen := map[string]bool{}
			for _, m := range stepRE.FindAllStringSubmatch(string(b), -1) {
				if !seen[m[1]] {
					seen[m[1]] = true
					if !slices.Contains(out[m[1]], a.Index) {
						out[m[1]] = append(out[m[1]], a.Index)
					}
				}
			}
		}
	}
	return out
}

// Metric sums eslapp i's metric lines that start with prefix.
func (p *Pool) Metric(i int, prefix string) float64 {
	lines, err := p.Apps[i].Proc().MetricLines(prefix)
	if err != nil {
		return 0
	}
	var sum float64
	for _, l := range lines {
		f := strings.Fields(l)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// WaitIdle waits until no FreeSWITCH of the pool has a channel (a
// stopped one has none).
func (p *Pool) WaitIdle(ctx context.Context) error {
	for _, h := range p.Hosts {
		fs := h.FS()
		for !hasExited(fs) {
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			c, err := DialInbound(dctx, fs.ESL, fs.Password)
			cancel()
			if err != nil {
				return err
			}
			out, err := c.API("show channels count")
			c.Close()
			if err != nil {
				return err
			}
			if strings.HasPrefix(strings.TrimSpace(out), "0 total") {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("FreeSWITCH %d still has calls: %s (%w)", h.Index, strings.TrimSpace(out), ctx.Err())
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	return nil
}

// hasExited reports whether a FreeSWITCH process has ended.
func hasExited(fs *FreeSWITCH) bool {
	select {
	case <-fs.Done():
		return true
	default:
		return false
	}
}

// Stop ends everything.
func (p *Pool) Stop() {
	for _, a := range p.Apps {
		if proc := a.Proc(); proc != nil {
			proc.Stop()
		}
	}
	for _, h := range p.Hosts {
		h.mu.Lock()
		fs, watch := h.fs, h.watch
		h.watch = nil
		h.mu.Unlock()
		if watch != nil {
			close(watch)
		}
		if fs != nil {
			fs.Stop()
		}
	}
	if p.CRM != nil {
		p.CRM.Close()
	}
}

// PoolCRM is the pool's CRM: every request is answered {"found":true}
// after a delay, and counted by the call it is for (X-Request-Id, the
// call's UUID).
type PoolCRM struct {
	URL   string
	srv   *http.Server
	delay time.Duration
	mu    sync.Mutex
	n     map[string]int
}

func startPoolCRM(delay time.Duration) (*PoolCRM, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &PoolCRM{URL: "http://" + ln.Addr().String(), delay: delay, n: map[string]int{}}
	c.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		c.mu.Lock()
		c.n[r.Header.Get("X-Request-Id")]++
		delay := c.delay
		c.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"found":true}`)
	})}
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

// Requests is how many requests the CRM got for a call.
func (c *PoolCRM) Requests(uuid string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[uuid]
}

// SetDelay changes how long the CRM takes to answer, from the next
// request on.
func (c *PoolCRM) SetDelay(d time.Duration) {
	c.mu.Lock()
	c.delay = d
	c.mu.Unlock()
}

// Forget drops the counts.
func (c *PoolCRM) Forget() {
	c.mu.Lock()
	c.n = map[string]int{}
	c.mu.Unlock()
}

func (c *PoolCRM) Close() { _ = c.srv.Close() }
