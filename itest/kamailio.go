package itest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Kamailio is conf/kamailio/kamailio.cfg run as a child process in front
// of a pool's FreeSWITCH hosts: the configuration as it ships, with what
// differs per run (the SIP socket, the dispatcher list, the probe interval,
// the control socket) given as -A defines, the way conf/kamailio/README.md
// runs it. The TestKamailio tests place calls at it and read where they
// went from the pool's records, and read the rotation from kamcmd and from
// the log lines the configuration writes on every change.

// KamailioPath is the kamailio binary and kamcmd (ESLAPP_KAMAILIO and
// ESLAPP_KAMCMD, else on PATH, else /usr/sbin), or "" and the reason when
// one is missing.
func KamailioPath() (kamailio, kamcmd, why string) {
	find := func(env, name string) string {
		if p := os.Getenv(env); p != "" {
			return p
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		// Debian installs both in /usr/sbin, which a user's PATH may lack.
		if p := filepath.Join("/usr/sbin", name); isExecutable(p) {
			return p
		}
		return ""
	}
	kamailio, kamcmd = find("ESLAPP_KAMAILIO", "kamailio"), find("ESLAPP_KAMCMD", "kamcmd")
	if kamailio == "" || kamcmd == "" {
		return "", "", "Kamailio is not installed (Debian: apt-get install kamailio, which brings kamcmd; 5.6 is what conf/kamailio is written for)"
	}
	return kamailio, kamcmd, ""
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// KamailioOptions say how to start Kamailio.
type KamailioOptions struct {
	Binary string // kamailio
	Kamcmd string // kamcmd, for the dispatcher's state
	Config string // default <repo>/conf/kamailio/kamailio.cfg
	Dir    string // its dispatcher list, control socket and log; required
	// FreeSWITCH are the SIP addresses (host:port) of the pool's
	// FreeSWITCH hosts, set 1 of the dispatcher list in this order.
	FreeSWITCH []string
	// ProbeInterval is PROBE_INTERVAL, whole seconds; default 2 s.
	ProbeInterval time.Duration
	// ReplyTimeout is REPLY_TIMEOUT; default 1 s.
	ReplyTimeout time.Duration
}

// Kamailio is a running Kamailio.
type Kamailio struct {
	SIP           string // where callers send INVITEs, 127.0.0.1:port (UDP)
	Ctl           string // its control socket, unix:PATH
	LogPath       string // its stderr (-E): the log the rotation's changes go to
	ProbeInterval time.Duration
	ReplyTimeout  time.Duration
	kamcmd        string
	cmd           *exec.Cmd
	done          chan struct{}
	err           error
}

// KamailioDestination is one FreeSWITCH as kamcmd dispatcher.list shows it.
type KamailioDestination struct {
	URI   string // sip:ADDRESS:PORT
	Flags string // AP active and probed, IP inactive, TP trying, DP disabled
}

// Active reports whether the host is in the rotation.
func (d KamailioDestination) Active() bool { return strings.HasPrefix(d.Flags, "A") }

// DestinationURI is the dispatcher URI of a FreeSWITCH's SIP address.
func DestinationURI(sipAddr string) string { return "sip:" + sipAddr }

// StartKamailio writes the dispatcher list, starts Kamailio on a free
// loopback UDP port and waits until its control socket answers. Every
// FreeSWITCH starts inactive (flags 9): WaitRotation says when the probes
// put them in.
func StartKamailio(ctx context.Context, o KamailioOptions) (*Kamailio, error) {
	if o.Dir == "" {
		return nil, errors.New("kamailio: no directory to run in")
	}
	if o.Config == "" {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		o.Config = filepath.Join(root, "conf", "kamailio", "kamailio.cfg")
	}
	if o.ProbeInterval == 0 {
		o.ProbeInterval = 2 * time.Second
	}
	if o.ProbeInterval%time.Second != 0 {
		return nil, fmt.Errorf("kamailio: probe interval %v: the dispatcher counts whole seconds", o.ProbeInterval)
	}
	if o.ReplyTimeout == 0 {
		o.ReplyTimeout = time.Second
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	var list strings.Builder
	list.WriteString("# Written by itest (Kamailio in front of the pool).\n")
	for _, fs := range o.FreeSWITCH {
		// Flags 9: probed, inactive until the first answered probe, as
		// conf/kamailio/dispatcher.list ships.
		fmt.Fprintf(&list, "1 %s 9 0\n", DestinationURI(fs))
	}
	dsList := filepath.Join(o.Dir, "dispatcher.list")
	if err := os.WriteFile(dsList, []byte(list.String()), 0o644); err != nil {
		return nil, err
	}
	port, err := FreeUDPPorts("127.0.0.1", 1)
	if err != nil {
		return nil, err
	}
	k := &Kamailio{
		SIP:           fmt.Sprintf("127.0.0.1:%d", port),
		Ctl:           "unix:" + filepath.Join(o.Dir, "kamailio_ctl"),
		LogPath:       filepath.Join(o.Dir, "kamailio.log"),
		ProbeInterval: o.ProbeInterval,
		ReplyTimeout:  o.ReplyTimeout,
		kamcmd:        o.Kamcmd,
		done:          make(chan struct{}),
	}
	logFile, err := os.Create(k.LogPath)
	if err != nil {
		return nil, err
	}
	k.cmd = exec.Command(o.Binary, "-DD", "-E", "-m", "64", "-M", "8", "-f", o.Config,
		"-A", "LISTEN=udp:"+k.SIP,
		"-A", fmt.Sprintf("DS_LIST=%q", dsList),
		"-A", fmt.Sprintf("PROBE_INTERVAL=%d", int(o.ProbeInterval/time.Second)),
		"-A", fmt.Sprintf("REPLY_TIMEOUT=%d", o.ReplyTimeout.Milliseconds()),
		"-A", fmt.Sprintf("CTL_SOCKET=%q", k.Ctl),
	)
	k.cmd.Dir = o.Dir
	k.cmd.Stdout, k.cmd.Stderr = logFile, logFile
	k.cmd.SysProcAttr = childAttr()
	if err := k.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("kamailio: %w", err)
	}
	go func() { k.err = k.cmd.Wait(); logFile.Close(); close(k.done) }()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		_, err := k.RPC(wctx, "core.uptime")
		if err == nil {
			return k, nil
		}
		select {
		case <-k.done:
			return nil, fmt.Errorf("kamailio exited while starting (%v); its log, last lines:\n%s", k.err, fileTail(k.LogPath, 30))
		case <-wctx.Done():
			k.Stop()
			return nil, fmt.Errorf("kamailio's control socket did not answer (%v); its log, last lines:\n%s", err, fileTail(k.LogPath, 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// RPC runs a kamcmd command on Kamailio's control socket and returns what
// it printed.
func (k *Kamailio) RPC(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, k.kamcmd, append([]string{"-s", k.Ctl}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kamcmd %s: %w (%s)", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Destinations is the pool as the dispatcher sees it now.
func (k *Kamailio) Destinations(ctx context.Context) ([]KamailioDestination, error) {
	out, err := k.RPC(ctx, "dispatcher.list")
	if err != nil {
		return nil, err
	}
	var dests []KamailioDestination
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "URI:"):
			dests = append(dests, KamailioDestination{URI: strings.TrimSpace(strings.TrimPrefix(line, "URI:"))})
		case strings.HasPrefix(line, "FLAGS:") && len(dests) > 0:
			dests[len(dests)-1].Flags = strings.TrimSpace(strings.TrimPrefix(line, "FLAGS:"))
		}
	}
	if len(dests) == 0 {
		return nil, fmt.Errorf("kamcmd dispatcher.list: no destination in %.300q", out)
	}
	return dests, nil
}

// WaitRotation polls the dispatcher every 50 ms until each FreeSWITCH
// (its SIP address) is in the rotation or out of it as want says, and
// returns when it saw that.
func (k *Kamailio) WaitRotation(ctx context.Context, want map[string]bool) (time.Time, error) {
	var last []KamailioDestination
	for {
		dests, err := k.Destinations(ctx)
		if err == nil {
			last = dests
			ok := true
			for addr, active := range want {
				found := false
				for _, d := range dests {
					if d.URI == DestinationURI(addr) {
						found = true
						ok = ok && d.Active() == active
					}
				}
				ok = ok && found
			}
			if ok {
				return time.Now(), nil
			}
		}
		select {
		case <-k.done:
			return time.Time{}, fmt.Errorf("kamailio exited (%v); its log, last lines:\n%s", k.err, fileTail(k.LogPath, 30))
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("the rotation did not become %v: last seen %v (%w)", want, last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// RotationChange is one line the configuration logs when a FreeSWITCH
// leaves or joins the rotation (event_route[dispatcher:dst-down|dst-up]).
type RotationChange struct {
	URI string
	Up  bool
	At  time.Time // Kamailio's clock, to the microsecond
}

var rotationRE = regexp.MustCompile(`rotation: (\S+) (up|down) at (\d+)\.(\d{6})`)

// RotationChanges reads every change of the rotation from Kamailio's log,
// in order.
func (k *Kamailio) RotationChanges() ([]RotationChange, error) {
	f, err := os.Open(k.LogPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []RotationChange
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		m := rotationRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		sec, _ := strconv.ParseInt(m[3], 10, 64)
		usec, _ := strconv.ParseInt(m[4], 10, 64)
		out = append(out, RotationChange{URI: m[1], Up: m[2] == "up", At: time.Unix(sec, usec*1000)})
	}
	return out, sc.Err()
}

// AwaitChange waits, within limit, until the dispatcher has FreeSWITCH
// sipAddr in the rotation (up) or out of it, and returns that change as
// Kamailio's log dates it: the first at or after since.
func (k *Kamailio) AwaitChange(ctx context.Context, sipAddr string, up bool, since time.Time, limit time.Duration) (RotationChange, error) {
	wctx, cancel := context.WithTimeout(ctx, limit)
	_, err := k.WaitRotation(wctx, map[string]bool{sipAddr: up})
	cancel()
	if err != nil {
		return RotationChange{}, err
	}
	c, ok, err := k.ChangeAfter(sipAddr, up, since)
	if err == nil && !ok {
		err = errors.New("no rotation change in Kamailio's log")
	}
	return c, err
}

// ChangeAfter is the first change of a FreeSWITCH's state (up or down) at
// or after t, as the log has it; ok is false when there is none yet.
func (k *Kamailio) ChangeAfter(sipAddr string, up bool, t time.Time) (RotationChange, bool, error) {
	changes, err := k.RotationChanges()
	if err != nil {
		return RotationChange{}, false, err
	}
	for _, c := range changes {
		if c.URI == DestinationURI(sipAddr) && c.Up == up && !c.At.Before(t) {
			return c, true, nil
		}
	}
	return RotationChange{}, false, nil
}

// LogSize is how many bytes Kamailio has logged so far: LogLines from it
// reads what came after.
func (k *Kamailio) LogSize() int64 {
	st, err := os.Stat(k.LogPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// LogLines returns the lines of Kamailio's log from offset (a LogSize) on
// that contain s.
func (k *Kamailio) LogLines(offset int64, s string) []string {
	b, _ := os.ReadFile(k.LogPath)
	if offset > int64(len(b)) {
		offset = int64(len(b))
	}
	var out []string
	for _, l := range strings.Split(string(b[offset:]), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// Done is closed when Kamailio has exited.
func (k *Kamailio) Done() <-chan struct{} { return k.done }

// Stop ends Kamailio (SIGTERM to its main process, which stops its
// children; SIGKILL to the group after 10 s). Safe to call more than once.
func (k *Kamailio) Stop() {
	select {
	case <-k.done:
		return
	default:
	}
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
		<-k.done
	}
}

// KamailioPool is a pool with Kamailio in front of its FreeSWITCH hosts:
// the scenarios below place their calls at Kamailio, and the pool's
// records say which FreeSWITCH took each call and how it ended. Each
// returns what it measured (Notes) and what it found wrong (Violations),
// as the pool's fault scenarios do: TestKamailio fails on a violation.
type KamailioPool struct {
	*Pool
	K       *Kamailio
	localIP string // the address the callers send from
}

// NewKamailioPool puts Kamailio k in front of pool p.
func NewKamailioPool(p *Pool, k *Kamailio) (*KamailioPool, error) {
	ip, err := LocalIPFor(k.SIP)
	if err != nil {
		return nil, err
	}
	return &KamailioPool{Pool: p, K: k, localIP: ip}, nil
}

// LoadKamailio places n calls to ext at Kamailio at cps with scenario
// (uac_load_any.xml or uac_load_any_15s.xml); wait returns SIPp's result.
func (kp *KamailioPool) LoadKamailio(ctx context.Context, scenario, ext string, cps float64, n int) (wait func() SIPpResult) {
	return kp.LoadAt(ctx, kp.K.SIP, kp.localIP, scenario, ext, cps, n)
}

// WaitAllActive waits until every FreeSWITCH of the pool is in the
// rotation.
func (kp *KamailioPool) WaitAllActive(ctx context.Context) error {
	want := map[string]bool{}
	for _, h := range kp.Hosts {
		want[h.FS().SIP] = true
	}
	ctx, cancel := context.WithTimeout(ctx, kp.K.ProbeInterval+kp.K.ReplyTimeout+10*time.Second)
	defer cancel()
	_, err := kp.K.WaitRotation(ctx, want)
	return err
}

// settle waits until the pool has no call left and the last hangup events
// are in, then returns the calls recorded.
func (kp *KamailioPool) settle(ctx context.Context, r *FaultResult) []PoolCall {
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := kp.WaitIdle(wctx); err != nil {
		r.violate("%v", err)
	}
	time.Sleep(300 * time.Millisecond)
	return kp.Calls()
}

// checkSIPp records a SIPp run that did not run or lost calls.
func checkSIPp(r *FaultResult, what string, res SIPpResult, allowedFailures int) {
	switch {
	case res.Successful < 0:
		r.violate("%s: SIPp did not run: %v", what, res)
	case res.Failed > allowedFailures:
		r.violate("%s: %d calls failed (%d allowed): %v", what, res.Failed, allowedFailures, res)
	}
}

// byHost counts calls per FreeSWITCH.
func byHost(calls []PoolCall, keep func(PoolCall) bool) map[int]int {
	out := map[int]int{}
	for _, c := range calls {
		if keep(c) {
			out[c.Host]++
		}
	}
	return out
}

func delivered(c PoolCall) bool {
	return c.Branch == "OnSuccess" && c.Agent && len(c.Branches) == 1
}

// Spread: calls to 7010 (socket-less) and then to 7000 (held socket)
// through Kamailio. Round robin over the two FreeSWITCH hosts gives each
// half of each extension's calls (40 to 60 % passes); every call reaches
// the agent, and each socket-less call runs in exactly one eslapp.
func (kp *KamailioPool) Spread(ctx context.Context, run FaultRun) FaultResult {
	r := FaultResult{Name: "spread over the FreeSWITCH hosts"}
	kp.Forget()
	if err := kp.WaitAllActive(ctx); err != nil {
		r.violate("%v", err)
		return r
	}
	for _, ext := range []string{"7010", "7000"} {
		checkSIPp(&r, ext, kp.LoadKamailio(ctx, "uac_load_any.xml", ext, run.CPS, run.Calls)(), 0)
	}
	calls := kp.settle(ctx, &r)
	r.Calls = len(calls)
	handlers := kp.Handlers()
	for _, ext := range []string{"7010", "7000"} {
		perHost := byHost(calls, func(c PoolCall) bool { return c.Ext == ext })
		total := 0
		for _, n := range perHost {
			total += n
		}
		if total != run.Calls {
			r.violate("%s: %d calls recorded, %d placed", ext, total, run.Calls)
		}
		for h := range kp.Hosts {
			if share := float64(perHost[h]) / float64(max(total, 1)); share < 0.4 || share > 0.6 {
				r.violate("%s: FreeSWITCH %d took %d of %d calls, want 40-60 %%", ext, h, perHost[h], total)
			}
		}
		r.Notes = append(r.Notes, fmt.Sprintf("%s: %s", ext, describeHosts(perHost)))
	}
	for _, c := range calls {
		if delivered(c) {
			r.OnSuccess++
		} else {
			r.violate("not delivered: %s", c.Describe())
		}
		if c.Ext == "7010" && len(handlers[c.UUID]) != 1 {
			r.violate("run by eslapps %v: %s", handlers[c.UUID], c.Describe())
		}
	}
	return r
}

func describeHosts(perHost map[int]int) string {
	keys := make([]int, 0, len(perHost))
	for k := range perHost {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("FreeSWITCH %d took %d", k, perHost[k]))
	}
	return strings.Join(parts, ", ")
}

// FreeSWITCHStopped: FreeSWITCH h is stopped with sig (SIGTERM: its own
// shutdown; SIGKILL: a crash) while socket-less calls come in through
// Kamailio, then started again. It must leave the rotation within the
// probe interval plus the reply timeout (and a second of timers); no call
// placed meanwhile fails — Kamailio tries the other host when one answers
// 503 or not at all — except those the stopped FreeSWITCH held (a crash
// cuts them); once it is out, calls (to 7000, held socket) all go to the
// other host and reach the agent; started again, it rejoins the rotation
// within a probe interval of being ready and takes its share again.
func (kp *KamailioPool) FreeSWITCHStopped(ctx context.Context, run FaultRun, h int, sig syscall.Signal, after time.Duration) FaultResult {
	r := FaultResult{Name: fmt.Sprintf("FreeSWITCH %d stopped (%s) and started again", h, signalName(sig))}
	kp.Forget()
	if err := kp.WaitAllActive(ctx); err != nil {
		r.violate("%v", err)
		return r
	}
	addr := kp.Hosts[h].FS().SIP
	other := 1 - h
	leaveBound := kp.K.ProbeInterval + kp.K.ReplyTimeout + time.Second
	logFrom := kp.K.LogSize()

	waitA := kp.LoadKamailio(ctx, "uac_load_any_15s.xml", "7010", run.CPS, run.Calls)
	time.Sleep(after)
	stopAt := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- kp.StopFreeSWITCH(h, sig) }()
	down, err := kp.K.AwaitChange(ctx, addr, false, stopAt, leaveBound+5*time.Second)
	if err != nil {
		r.violate("FreeSWITCH %d did not leave the rotation after the stop: %v", h, err)
		return r
	}
	leave := down.At.Sub(stopAt)
	if leave > leaveBound {
		r.violate("FreeSWITCH %d left the rotation %v after %s, want within %v", h, leave.Round(time.Millisecond), signalName(sig), leaveBound)
	}
	// Calls placed now must all go to the other host.
	waitB := kp.LoadKamailio(ctx, "uac_load_any_15s.xml", "7000", run.CPS, max(run.Calls/4, 4))
	resA, resB := waitA(), waitB()
	if err := <-stopped; err != nil {
		r.violate("stopping FreeSWITCH %d: %v", h, err)
	}
	calls := kp.settle(ctx, &r)
	r.Calls = len(calls)

	// The calls the stopped FreeSWITCH held when it stopped: a SIGTERM
	// hangs them up (their caller gets a BYE), a SIGKILL cuts them (no
	// BYE: the caller's call fails). Either way their hangup may never
	// reach the record: FreeSWITCH's Event Socket goes with it.
	var cut, cutUnended int
	for _, c := range calls {
		switch {
		case c.Host == h && !delivered(c):
			cut++
			if c.Ended.IsZero() {
				cutUnended++
			}
			if !c.Announced.IsZero() && c.Announced.After(down.At) {
				r.violate("FreeSWITCH %d took a call after it left the rotation: %s", h, c.Describe())
			}
		case c.Host == h:
			r.OnSuccess++
			if !c.Announced.IsZero() && c.Announced.After(down.At) {
				r.violate("FreeSWITCH %d took a call after it left the rotation: %s", h, c.Describe())
			}
		case delivered(c):
			r.OnSuccess++
		default:
			r.violate("a call of FreeSWITCH %d, which stayed up: %s", other, c.Describe())
		}
	}
	// Every SIPp failure must be a call the stopped FreeSWITCH cut.
	checkSIPp(&r, "calls during the stop", resA, cutUnended)
	checkSIPp(&r, "calls after it left the rotation", resB, 0)
	onOther := byHost(calls, func(c PoolCall) bool { return c.Ext == "7000" })
	if onOther[other] != max(run.Calls/4, 4) || onOther[h] != 0 {
		r.violate("calls after FreeSWITCH %d left the rotation: %s, want all %d on FreeSWITCH %d", h, describeHosts(onOther), max(run.Calls/4, 4), other)
	}
	retried503 := len(kp.K.LogLines(logFrom, "FreeSWITCH "+DestinationURI(addr)+" answered the INVITE"))
	retriedSilent := len(kp.K.LogLines(logFrom, "FreeSWITCH "+DestinationURI(addr)+" did not answer the INVITE"))
	r.Notes = append(r.Notes,
		fmt.Sprintf("left the rotation %v after the %s (bound %v)", leave.Round(time.Millisecond), signalName(sig), leaveBound),
		fmt.Sprintf("%d calls during the stop, %d failed at the caller (SIPp): FreeSWITCH %d held %d that did not reach the agent", resA.Successful+resA.Failed, resA.Failed, h, cut),
		fmt.Sprintf("Kamailio tried the other host for %d INVITEs answered 503 and %d unanswered", retried503, retriedSilent),
		fmt.Sprintf("after it left: %d calls, %s", resB.Successful+resB.Failed, describeHosts(onOther)))

	// Back: started again, it answers a probe and takes calls.
	startAt := time.Now()
	if err := kp.StartFreeSWITCHAgain(ctx, h); err != nil {
		r.violate("starting FreeSWITCH %d again: %v", h, err)
		return r
	}
	readyAt := time.Now()
	up, err := kp.K.AwaitChange(ctx, addr, true, startAt, kp.K.ProbeInterval+kp.K.ReplyTimeout+10*time.Second)
	if err != nil {
		r.violate("FreeSWITCH %d did not rejoin the rotation after the start: %v", h, err)
		return r
	}
	back := up.At.Sub(readyAt)
	if backBound := kp.K.ProbeInterval + kp.K.ReplyTimeout; back > backBound {
		r.violate("FreeSWITCH %d rejoined the rotation %v after it was ready, want within %v", h, back.Round(time.Millisecond), backBound)
	}
	for i := range kp.Apps {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := kp.Apps[i].Proc().WaitSocketless(wctx)
		cancel()
		if err != nil {
			r.violate("eslapp %d did not reconnect to FreeSWITCH %d: %v", i, h, err)
		}
	}
	reconnected := time.Since(readyAt)
	kp.Forget()
	again := max(run.Calls/4, 4)
	checkSIPp(&r, "calls after the restart", kp.LoadKamailio(ctx, "uac_load_any.xml", "7010", run.CPS, again)(), 0)
	calls = kp.settle(ctx, &r)
	perHost := byHost(calls, func(PoolCall) bool { return true })
	for hh := range kp.Hosts {
		if perHost[hh] < again/4 {
			r.violate("after the restart: %s, want both hosts to take calls", describeHosts(perHost))
			break
		}
	}
	for _, c := range calls {
		if !delivered(c) {
			r.violate("after the restart: %s", c.Describe())
		}
	}
	r.Notes = append(r.Notes,
		fmt.Sprintf("started again: ready (Event Socket and SIP profile) %v after the start, in the rotation %v after the start (its first probe answered; bound: ready plus %v), eslapps connected %v after it was ready",
			readyAt.Sub(startAt).Round(10*time.Millisecond), up.At.Sub(startAt).Round(10*time.Millisecond), kp.K.ProbeInterval+kp.K.ReplyTimeout, reconnected.Round(10*time.Millisecond)),
		fmt.Sprintf("after the restart: %s", describeHosts(perHost)))
	return r
}

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGKILL:
		return "SIGKILL"
	}
	return sig.String()
}

// HeldSocketEslappKilled: eslapp 0 is killed (SIGKILL) while calls to
// 7000 (socket A|B async full) come in through Kamailio. The calls it
// held end on their branch (the socket closes, the dialplan goes on to
// OnError); every call that starts after the kill runs in eslapp 1 — on
// the FreeSWITCH that lists eslapp 0 first too, where the refused
// connection sends the socket to the next address — and reaches the
// agent. prompted is how long after the answer those calls' prompts
// started: the refused connection costs nothing a caller hears.
func (kp *KamailioPool) HeldSocketEslappKilled(ctx context.Context, run FaultRun, after time.Duration) FaultResult {
	r := FaultResult{Name: "held socket, eslapp 0 killed"}
	return kp.heldSocketFault(ctx, &r, run, after, func() { kp.KillEslapp(0) }, true)
}

// HeldSocketEslappDrained: eslapp 0 drains (SIGTERM) while calls to 7000
// come in through Kamailio: it stops listening at once and finishes the
// calls it holds; every call reaches the agent, and every call that
// starts after the SIGTERM runs in eslapp 1.
func (kp *KamailioPool) HeldSocketEslappDrained(ctx context.Context, run FaultRun, after time.Duration) FaultResult {
	r := FaultResult{Name: "held socket, eslapp 0 drained"}
	return kp.heldSocketFault(ctx, &r, run, after, func() {
		if err := kp.Apps[0].Proc().cmd.Process.Signal(syscall.SIGTERM); err != nil {
			r.violate("%v", err)
		}
	}, false)
}

func (kp *KamailioPool) heldSocketFault(ctx context.Context, r *FaultResult, run FaultRun, after time.Duration, fault func(), cutAllowed bool) FaultResult {
	kp.Forget()
	if err := kp.WaitAllActive(ctx); err != nil {
		r.violate("%v", err)
		return *r
	}
	wait := kp.LoadKamailio(ctx, "uac_load_any.xml", "7000", run.CPS, run.Calls)
	time.Sleep(after)
	faultAt := time.Now()
	fault()
	res := wait()
	checkSIPp(r, "7000", res, 0)
	calls := kp.settle(ctx, r)
	r.Calls = len(calls)
	// eslapp 0 is gone (killed) or going (draining: it exits once its
	// calls are over, and WaitIdle waited for them).
	if proc := kp.Apps[0].Proc(); proc != nil {
		select {
		case <-proc.Done():
		case <-time.After(30 * time.Second):
			r.violate("eslapp 0 did not exit")
		}
	}
	if err := kp.StartEslapp(ctx, 0); err != nil {
		r.violate("starting eslapp 0 again: %v", err)
	}
	handlers := kp.Handlers()
	r.PerEslapp = map[int]int{}
	var prompted []time.Duration
	finishedByFirst := 0
	for _, c := range calls {
		h := handlers[c.UUID]
		if len(h) == 1 {
			r.PerEslapp[h[0]]++
		}
		startedAfter := !c.Started.IsZero() && c.Started.After(faultAt)
		switch {
		case delivered(c):
			r.OnSuccess++
			if !startedAfter && slices.Equal(h, []int{0}) && c.Ended.After(faultAt) {
				finishedByFirst++
			}
		case cutAllowed && !startedAfter && c.ByNet():
			r.CutAfter = append(r.CutAfter, c.Branched.Sub(faultAt))
		default:
			r.violate("%s; run by eslapps %v", c.Describe(), h)
		}
		if startedAfter {
			if !slices.Equal(h, []int{1}) {
				r.violate("a call after the fault ran in eslapps %v: %s", h, c.Describe())
			}
			if !c.Prompted.IsZero() && !c.Answered.IsZero() {
				prompted = append(prompted, c.Prompted.Sub(c.Answered))
			}
		}
	}
	if len(prompted) > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d calls after the fault, all in eslapp 1, prompt started %v to %v after the answer",
			len(prompted), slices.Min(prompted).Round(time.Millisecond), slices.Max(prompted).Round(time.Millisecond)))
		if slices.Max(prompted) > time.Second {
			r.violate("a call after the fault waited %v for its prompt", slices.Max(prompted))
		}
	} else {
		r.violate("no call started after the fault: the scenario tested nothing")
	}
	if !cutAllowed {
		r.Notes = append(r.Notes, fmt.Sprintf("eslapp 0 finished %d calls while draining", finishedByFirst))
	}
	return *r
}

// HungEslapp: eslapp 0 stands still (SIGSTOP) for hold (0: until the
// nets of its calls have fired) — the kernel still
// accepts FreeSWITCH's connections to it, so the socket application
// neither fails nor tries the next address — while calls come in through
// Kamailio to the shipped 7000. FreeSWITCH 0 lists eslapp 0 first,
// FreeSWITCH 1 lists it second. The dialplan's pick-up net, armed before
// "socket", moves FreeSWITCH 0's calls to OnError within 4 s of the answer
// (FreeSWITCH's scheduler fires "+3" 2 to 3.5 s later), with no prompt
// and no CRM request; on FreeSWITCH 1 every call reaches the agent, the
// CRM answering after 2.5 s so that the step outlasts the net (eslapp 1
// deleted it). Then eslapp 0 goes on: within FreeSWITCH's 25 s it takes
// up the connections the kernel accepted for it, finds their nets fired,
// and sends those calls nothing but exit (its
// eslapp_socket_calls_net_fired_total counts them); the calls placed after
// that run in it again.
func (kp *KamailioPool) HungEslapp(ctx context.Context, hold time.Duration) FaultResult {
	r := FaultResult{Name: fmt.Sprintf("eslapp 0 stands still %v (held socket)", hold)}
	kp.Forget()
	if err := kp.WaitAllActive(ctx); err != nil {
		r.violate("%v", err)
		return r
	}
	kp.CRM.SetDelay(2500 * time.Millisecond)
	defer kp.CRM.SetDelay(kp.opts.CRMDelay)
	proc := kp.Apps[0].Proc()
	firedBefore := kp.Metric(0, "eslapp_socket_calls_net_fired_total")
	if err := proc.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		r.violate("%v", err)
		return r
	}
	stoppedAt := time.Now()
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = proc.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer resume()
	const calls = 8 // round robin: four on each FreeSWITCH
	wait := kp.LoadKamailio(ctx, "uac_load_any.xml", "7000", 8, calls)
	if hold > 0 {
		time.Sleep(time.Until(stoppedAt.Add(hold)))
	} else {
		// Until every call of FreeSWITCH 0 is on OnError (its net fired),
		// while the apology still plays: eslapp 0 then finds the
		// connections up and the nets gone.
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			moved := 0
			for _, c := range kp.Calls() {
				if c.Host == 0 && !c.Branched.IsZero() { // the apology started
					moved++
				}
			}
			if moved == calls/2 {
				break
			}
		}
	}
	resume()
	resumedAt := time.Now()
	checkSIPp(&r, "7000 while eslapp 0 stands still", wait(), 0)
	stood := kp.settle(ctx, &r)
	// The connections FreeSWITCH 0 made while eslapp 0 stood still are
	// taken up once it goes on; give it a moment to reach them all.
	var fired float64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if fired = kp.Metric(0, "eslapp_socket_calls_net_fired_total") - firedBefore; fired >= calls/2 {
			break
		}
	}

	// Then calls again: eslapp 0 runs FreeSWITCH 0's as before.
	kp.Forget()
	checkSIPp(&r, "7000 after eslapp 0 went on", kp.LoadKamailio(ctx, "uac_load_any.xml", "7000", 4, 4)(), 0)
	after := kp.settle(ctx, &r)
	r.Calls = len(stood) + len(after)

	handlers := kp.Handlers()
	var netAfter []time.Duration
	onFS0 := 0
	for _, c := range stood {
		switch {
		case c.Host == 1 && delivered(c):
			r.OnSuccess++
			if !slices.Equal(handlers[c.UUID], []int{1}) {
				r.violate("run by eslapps %v: %s", handlers[c.UUID], c.Describe())
			}
		case c.Host == 1:
			r.violate("FreeSWITCH 1, which lists the standing eslapp second: %s", c.Describe())
		default:
			onFS0++
			r.ByNet++
			if c.Branch != "OnError" || len(c.Branches) != 1 || c.Branched.IsZero() || c.Answered.IsZero() {
				r.violate("the pick-up net did not move the call to OnError: %s", c.Describe())
				continue
			}
			d := c.Branched.Sub(c.Answered)
			netAfter = append(netAfter, d)
			if d > 4*time.Second {
				r.violate("the net moved the call %v after the answer, want within 4 s: %s", d, c.Describe())
			}
			if c.Prompts > 0 || len(handlers[c.UUID]) > 0 || kp.CRM.Requests(c.UUID) > 0 {
				r.violate("eslapp acted on a call its net had moved (prompts %d, run by %v, CRM asked %d times): %s",
					c.Prompts, handlers[c.UUID], kp.CRM.Requests(c.UUID), c.Describe())
			}
		}
	}
	if onFS0 != calls/2 {
		r.violate("FreeSWITCH 0 took %d of the %d calls, want %d", onFS0, calls, calls/2)
	}
	// Resumed while the moved calls still play their apology, eslapp 0
	// finds every connection up and every net fired. A stand fixed in
	// advance may outlast the calls (FreeSWITCH closes a connection whose
	// channel is gone) or FreeSWITCH's 25 s: it may find fewer, or none.
	if hold == 0 && fired != float64(onFS0) || fired > float64(onFS0) {
		r.violate("eslapp 0 found %v nets fired when it went on, want %d (the connections FreeSWITCH 0 still held)", fired, onFS0)
	}
	for _, c := range after {
		if !delivered(c) {
			r.violate("after eslapp 0 went on: %s", c.Describe())
		} else if want := []int{c.Host}; !slices.Equal(handlers[c.UUID], want) {
			r.violate("after eslapp 0 went on, run by eslapps %v, want %v: %s", handlers[c.UUID], want, c.Describe())
		} else {
			r.OnSuccess++
		}
	}
	if len(netAfter) > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("FreeSWITCH 0 (the standing eslapp first): %d calls moved to OnError by the pick-up net %v to %v after the answer, no prompt, no CRM request",
			len(netAfter), slices.Min(netAfter).Round(10*time.Millisecond), slices.Max(netAfter).Round(10*time.Millisecond)))
	}
	r.Notes = append(r.Notes, fmt.Sprintf("eslapp 0 went on %v after it stopped and left %v calls alone whose nets had fired; %d calls after that, all on OnSuccess",
		resumedAt.Sub(stoppedAt).Round(100*time.Millisecond), fired, len(after)))
	return r
}

// FreeSWITCHPaused: FreeSWITCH h is drained the way the README says to
// remove a host behind Kamailio — fsctl pause inbound in the middle of a
// load: it answers new INVITEs with 503 (Kamailio tries the other host)
// and OPTIONS with 503 (it leaves the rotation at its next probe), while
// the calls it has run to their end. No call fails, every call reaches the
// agent, none starts on it once it is out; fsctl resume inbound puts it
// back at the probe after.
func (kp *KamailioPool) FreeSWITCHPaused(ctx context.Context, run FaultRun, h int, after time.Duration) FaultResult {
	r := FaultResult{Name: fmt.Sprintf("FreeSWITCH %d paused (fsctl pause inbound) under load, and resumed", h)}
	kp.Forget()
	if err := kp.WaitAllActive(ctx); err != nil {
		r.violate("%v", err)
		return r
	}
	fs := kp.Hosts[h].FS()
	addr := fs.SIP
	bound := kp.K.ProbeInterval + kp.K.ReplyTimeout + time.Second
	wait := kp.LoadKamailio(ctx, "uac_load_any.xml", "7010", run.CPS, run.Calls)
	time.Sleep(after)
	pausedAt := time.Now()
	if err := fsAPI(ctx, fs, "fsctl pause inbound"); err != nil {
		r.violate("%v", err)
		wait()
		return r
	}
	defer func() { _ = fsAPI(context.WithoutCancel(ctx), fs, "fsctl resume inbound") }()
	wctx, cancel := context.WithTimeout(ctx, bound+5*time.Second)
	_, err := kp.K.WaitRotation(wctx, map[string]bool{addr: false})
	cancel()
	if err != nil {
		r.violate("FreeSWITCH %d did not leave the rotation: %v", h, err)
		wait()
		return r
	}
	left := time.Since(pausedAt)
	if left > bound {
		r.violate("FreeSWITCH %d left the rotation %v after the pause, want within %v", h, left.Round(time.Millisecond), bound)
	}
	checkSIPp(&r, "calls across the pause", wait(), 0)
	calls := kp.settle(ctx, &r)
	r.Calls = len(calls)
	before, during, outAfter := 0, 0, 0
	for _, c := range calls {
		if delivered(c) {
			r.OnSuccess++
		} else {
			r.violate("%s", c.Describe())
		}
		switch {
		case c.Started.Before(pausedAt):
			if c.Host == h {
				before++
			}
		case c.Host == h:
			during++
			r.violate("a call started on FreeSWITCH %d after it was paused: %s", h, c.Describe())
		case c.Started.After(pausedAt.Add(left)):
			outAfter++
		}
	}
	if before == 0 {
		r.violate("FreeSWITCH %d had no call when it was paused: the drain tested nothing", h)
	}
	if outAfter == 0 {
		r.violate("no call started after FreeSWITCH %d left the rotation: the scenario tested nothing", h)
	}
	perHost := byHost(calls, func(PoolCall) bool { return true })
	resumedAt := time.Now()
	if err := fsAPI(ctx, fs, "fsctl resume inbound"); err != nil {
		r.violate("%v", err)
		return r
	}
	wctx, cancel = context.WithTimeout(ctx, bound+5*time.Second)
	_, err = kp.K.WaitRotation(wctx, map[string]bool{addr: true})
	cancel()
	if err != nil {
		r.violate("FreeSWITCH %d did not rejoin the rotation: %v", h, err)
		return r
	}
	back := time.Since(resumedAt)
	if back > bound {
		r.violate("FreeSWITCH %d rejoined the rotation %v after the resume, want within %v", h, back.Round(time.Millisecond), bound)
	}
	r.Notes = append(r.Notes,
		fmt.Sprintf("out of the rotation %v after the pause, back %v after the resume (seen by kamcmd every 50 ms; bound %v)", left.Round(10*time.Millisecond), back.Round(10*time.Millisecond), bound),
		fmt.Sprintf("%d calls in all (%s): FreeSWITCH %d finished the %d it had at the pause, at the agent; every later call on the other host, none failed", len(calls), describeHosts(perHost), h, before))
	return r
}

// fsAPI runs an api command on fs.
func fsAPI(ctx context.Context, fs *FreeSWITCH, cmd string) error {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	c, err := DialInbound(dctx, fs.ESL, fs.Password)
	cancel()
	if err != nil {
		return err
	}
	defer c.Close()
	out, err := c.API(cmd)
	if err == nil && strings.HasPrefix(strings.TrimSpace(out), "-ERR") {
		err = fmt.Errorf("%s: %s", cmd, strings.TrimSpace(out))
	}
	return err
}
