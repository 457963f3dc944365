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

// LogLines returns the lines of Kamailio's log that contain s.
func (k *Kamailio) LogLines(s string) []string {
	b, _ := os.ReadFile(k.LogPath)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
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

// SocketNetExt is the extension of the test-only dialplan that
// ConfWithSocketNet adds: 7000 with a net armed before the socket.
const SocketNetExt = "7050"

// socketNetDialplan is 7000 of conf/freeswitch with a net before the
// socket, a prototype the hung-eslapp test measures, not a shipped plan.
// An eslapp that stands still (SIGSTOP, a frozen VM) still has the kernel
// accept FreeSWITCH's connection, so the socket application neither fails
// nor tries the next address: FreeSWITCH 1.10 waits for eslapp's "connect"
// with no limit (its listener gives up after 25 s, the call stays in the
// socket application until the caller hangs up). The net fires 2 s after
// the socket starts and moves the call to OnError only if it is still in
// the socket application then: once eslapp has connected, the channel
// runs eslapp's applications (current_application is no longer "socket")
// and the net transfers no one ("none" is no channel). The condition is
// read when the net fires: the backslashes keep the dialplan from
// expanding it when the net is armed, and expand evaluates it then.
const socketNetDialplan = `<include>
  <!-- Test-only (itest/kamailio.go): 7000 with a net armed before the
       socket for an eslapp that accepts the connection but never answers. -->
  <extension name="itest_crm_lookup_socket_net">
    <condition field="destination_number" expression="^` + SocketNetExt + `$">
      <action application="answer"/>
      <action application="multiset" data='^^|wfe_config_id=demo-crm|wfe_workflow_id=search-by-phone|wfe_payload={"phone":"{ANI}"}|wfe_sequence="%Please hold while we find your account." "hold.wav"|playback_terminators=none|wfe_branch=OnError'/>
      <action application="set" data="eslapp_socket_net=${sched_api(+2 eslapp-socket-${uuid} expand uuid_transfer \${cond(\${uuid_getvar(${uuid} current_application)} == socket ? ${uuid} : none)} OnError XML crm_branches)}"/>
      <action application="socket" data="$${eslapp_sockets} async full"/>
      <action application="sched_cancel" data="eslapp-socket-${uuid}"/>
      <action application="transfer" data="${wfe_branch} XML crm_branches"/>
    </condition>
  </extension>
</include>
`

// ConfWithSocketNet copies conf/freeswitch to dir and adds the test-only
// extension SocketNetExt; it returns the copy's path, for
// PoolOptions.ConfDir.
func ConfWithSocketNet(dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	conf := filepath.Join(dir, "conf-freeswitch")
	if err := os.RemoveAll(conf); err != nil {
		return "", err
	}
	if err := os.CopyFS(conf, os.DirFS(filepath.Join(root, "conf", "freeswitch"))); err != nil {
		return "", err
	}
	// dialplan/default/*.xml is included in the default context.
	return conf, os.WriteFile(filepath.Join(conf, "dialplan", "default", "itest_socket_net.xml"), []byte(socketNetDialplan), 0o644)
}
