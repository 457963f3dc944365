package itest

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// FreeSWITCH is a FreeSWITCH process started on a temporary copy of
// conf/freeswitch: the end-to-end tests and the PBX-cost tool start one
// when given a binary (ESLAPP_FREESWITCH, the path the kit's install
// script prints), so one command works on any host that has FreeSWITCH.
// Nothing is written outside Dir (and a directory of its own in /dev/shm
// for the core's call table). Several can run side by side, as the
// FreeSWITCH processes of a pool do: give each its own Dir, SIP and Event
// Socket ports and RTP range; conf/freeswitch takes them from the
// environment (vars.xml), and each process gets its own call table.

// The defaults of conf/freeswitch/vars.xml: what a FreeSWITCH started
// without those options uses, and the ports that must then be free.
const (
	DefaultSIPPort  = 5080                            // ESLAPP_SIP_PORT
	DefaultESLPort  = 8021                            // FREESWITCH_ESL_PORT
	DefaultRTPStart = 16384                           // FREESWITCH_RTP_START
	DefaultRTPEnd   = 32768                           // FREESWITCH_RTP_END
	DefaultSockets  = "127.0.0.1:8084|127.0.0.1:8085" // ESLAPP_SOCKETS
)

// FreeSWITCHOptions says how to start FreeSWITCH.
type FreeSWITCHOptions struct {
	Binary    string // the freeswitch binary
	ConfDir   string // the tree to copy; default <repo>/conf/freeswitch
	SoundsDir string // eslapp's [sounds] dir, as both see it; default <repo>/sounds
	Dir       string // its conf, log, db and run dirs and console.log; required
	SIPIP     string // the address its SIP profile binds; default 127.0.0.1
	SIPPort   int    // its SIP profile's port, UDP and TCP (ESLAPP_SIP_PORT); default 5080
	ESLPort   int    // its inbound Event Socket's port (FREESWITCH_ESL_PORT); default 8021
	// Its RTP ports (FREESWITCH_RTP_START, FREESWITCH_RTP_END); default
	// 16384-32768. FreeSWITCH does not check that another process holds
	// one: processes on one machine need disjoint ranges.
	RTPStart, RTPEnd int
	// Where its held-socket extensions connect, "HOST:PORT|HOST:PORT"
	// tried in order (ESLAPP_SOCKETS); default 127.0.0.1:8084|127.0.0.1:8085.
	Sockets string
	// Its core database, the call table (FREESWITCH_CORE_DB); default
	// core.db in a directory of its own under /dev/shm (in memory: a disk
	// database slows call-rate runs), else Dir/db/core.db. Never shared.
	CoreDB string
	// Password is its Event Socket's password; default a random one (a
	// restart that must keep its clients gives the old one).
	Password string
	LogLevel string        // the core log level; default info
	Ready    time.Duration // how long it may take to come up; default 60 s
}

// FreeSWITCH is a running FreeSWITCH.
type FreeSWITCH struct {
	SIP        string // its SIP profile "eslapp", host:port
	ESL        string // its inbound Event Socket, host:port
	Password   string // the Event Socket password (random)
	SoundsDir  string
	Sockets    string // where its held-socket extensions connect (ESLAPP_SOCKETS)
	CoreDB     string // its core database
	RTPStart   int    // its RTP ports
	RTPEnd     int
	ConsoleLog string
	Version    string // what freeswitch -version printed
	cmd        *exec.Cmd
	done       chan struct{}
	err        error
	shmDir     string
}

// StartFreeSWITCH starts FreeSWITCH and waits until its Event Socket takes
// a login and its SIP profile runs.
func StartFreeSWITCH(ctx context.Context, o FreeSWITCHOptions) (*FreeSWITCH, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	if o.ConfDir == "" {
		o.ConfDir = filepath.Join(root, "conf", "freeswitch")
	}
	if o.SoundsDir == "" {
		o.SoundsDir = filepath.Join(root, "sounds")
	}
	if o.SIPIP == "" {
		o.SIPIP = "127.0.0.1"
	}
	if o.SIPPort == 0 {
		o.SIPPort = DefaultSIPPort
	}
	if o.ESLPort == 0 {
		o.ESLPort = DefaultESLPort
	}
	if o.RTPStart == 0 {
		o.RTPStart = DefaultRTPStart
	}
	if o.RTPEnd == 0 {
		o.RTPEnd = DefaultRTPEnd
	}
	if o.Sockets == "" {
		o.Sockets = DefaultSockets
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.Ready == 0 {
		o.Ready = 60 * time.Second
	}
	if o.Dir == "" {
		return nil, errors.New("freeswitch: no directory to run in")
	}
	if o.RTPStart < 1024 || o.RTPEnd > 65535 || o.RTPStart >= o.RTPEnd {
		return nil, fmt.Errorf("freeswitch: RTP ports %d-%d: want 1024 <= start < end <= 65535", o.RTPStart, o.RTPEnd)
	}
	if strings.ContainsAny(o.Sockets, " \t\n") {
		return nil, fmt.Errorf("freeswitch: sockets %q: want HOST:PORT|HOST:PORT without spaces", o.Sockets)
	}
	version, err := exec.CommandContext(ctx, o.Binary, "-version").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("freeswitch: %s -version: %w (%s)", o.Binary, err, strings.TrimSpace(string(version)))
	}
	if err := portsFree(o.SIPIP, o.SIPPort, o.ESLPort); err != nil {
		return nil, err
	}
	conf := filepath.Join(o.Dir, "conf")
	if err := os.RemoveAll(conf); err != nil {
		return nil, err
	}
	if err := os.CopyFS(conf, os.DirFS(o.ConfDir)); err != nil {
		return nil, fmt.Errorf("freeswitch: copying %s: %w", o.ConfDir, err)
	}
	for _, d := range []string{"log", "db", "run"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	f := &FreeSWITCH{
		SIP:        net.JoinHostPort(o.SIPIP, fmt.Sprint(o.SIPPort)),
		ESL:        net.JoinHostPort("127.0.0.1", fmt.Sprint(o.ESLPort)),
		Password:   cmp.Or(o.Password, randomHex(16)),
		SoundsDir:  o.SoundsDir,
		Sockets:    o.Sockets,
		RTPStart:   o.RTPStart,
		RTPEnd:     o.RTPEnd,
		ConsoleLog: filepath.Join(o.Dir, "freeswitch-console.log"),
		Version:    strings.TrimSpace(string(version)),
		done:       make(chan struct{}),
	}
	f.CoreDB = o.CoreDB
	if f.CoreDB == "" {
		f.CoreDB = filepath.Join(o.Dir, "db", "core.db")
		if shm, err := os.MkdirTemp("/dev/shm", "eslapp-freeswitch-"); err == nil {
			f.shmDir, f.CoreDB = shm, filepath.Join(shm, "core.db")
		}
	}
	console, err := os.Create(f.ConsoleLog)
	if err != nil {
		return nil, err
	}
	f.cmd = exec.Command(o.Binary, "-nf", "-nonat",
		"-conf", conf, "-log", filepath.Join(o.Dir, "log"), "-db", filepath.Join(o.Dir, "db"), "-run", filepath.Join(o.Dir, "run"))
	f.cmd.Dir = o.Dir
	// In the foreground (-nf) FreeSWITCH logs to its console: stdout here.
	// Its console reads commands from stdin, which is /dev/null.
	f.cmd.Stdout, f.cmd.Stderr = console, console
	f.cmd.SysProcAttr = childAttr()
	// Every setting vars.xml reads is given, so nothing comes from this
	// process's own environment (the last value of a name wins).
	f.cmd.Env = append(os.Environ(),
		"FREESWITCH_ESL_PASSWORD="+f.Password,
		"FREESWITCH_ESL_LISTEN_IP=127.0.0.1",
		fmt.Sprintf("FREESWITCH_ESL_PORT=%d", o.ESLPort),
		fmt.Sprintf("FREESWITCH_RTP_START=%d", o.RTPStart),
		fmt.Sprintf("FREESWITCH_RTP_END=%d", o.RTPEnd),
		"FREESWITCH_LOGLEVEL="+o.LogLevel,
		"FREESWITCH_CORE_DB="+f.CoreDB,
		"ESLAPP_SIP_IP="+o.SIPIP,
		fmt.Sprintf("ESLAPP_SIP_PORT=%d", o.SIPPort),
		"ESLAPP_SOCKETS="+o.Sockets,
		"ESLAPP_SOUNDS_DIR="+o.SoundsDir,
		"ESLAPP_TEST_NET=127.0.0.1/32",
	)
	if err := f.cmd.Start(); err != nil {
		console.Close()
		f.removeShm()
		return nil, fmt.Errorf("freeswitch: %w", err)
	}
	go func() { f.err = f.cmd.Wait(); console.Close(); close(f.done) }()
	if err := f.waitReady(ctx, o.Ready); err != nil {
		f.Stop()
		return nil, err
	}
	return f, nil
}

// waitReady polls until the Event Socket takes the password and the SIP
// profile "eslapp" is running.
func (f *FreeSWITCH) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last error
	for {
		if last = f.ready(ctx); last == nil {
			return nil
		}
		select {
		case <-f.done:
			return fmt.Errorf("freeswitch exited while starting (%v); its console, last lines:\n%s", f.err, f.ConsoleTail(30))
		case <-ctx.Done():
			return fmt.Errorf("freeswitch did not become ready in %v (%v); its console, last lines:\n%s", limit, last, f.ConsoleTail(30))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (f *FreeSWITCH) ready(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := DialInbound(dctx, f.ESL, f.Password)
	if err != nil {
		return err
	}
	defer c.Close()
	out, err := c.API("sofia status profile eslapp")
	if err != nil {
		return err
	}
	if !strings.Contains(out, "RUNNING") && !strings.Contains(out, "BIND-URL") {
		return fmt.Errorf("the SIP profile eslapp is not running yet: %.200q", out)
	}
	return nil
}

// PID is FreeSWITCH's process id.
func (f *FreeSWITCH) PID() int { return f.cmd.Process.Pid }

// Done is closed when FreeSWITCH has exited.
func (f *FreeSWITCH) Done() <-chan struct{} { return f.done }

// Stop shuts FreeSWITCH down (SIGTERM, then SIGKILL to its process group
// after 20 s) and removes its call table from /dev/shm. It is safe to call
// more than once.
func (f *FreeSWITCH) Stop() {
	defer f.removeShm()
	select {
	case <-f.done:
		return
	default:
	}
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
		<-f.done
	}
}

func (f *FreeSWITCH) removeShm() {
	if f.shmDir != "" {
		os.RemoveAll(f.shmDir)
	}
}

// ConsoleTail is the last n lines FreeSWITCH printed.
func (f *FreeSWITCH) ConsoleTail(n int) string { return fileTail(f.ConsoleLog, n) }

// portsFree checks that nothing holds the ports FreeSWITCH's configuration
// binds: its SIP profile (UDP and TCP) and its inbound Event Socket.
func portsFree(sipIP string, sipPort, eslPort int) error {
	if sipPort == eslPort {
		return fmt.Errorf("freeswitch: the SIP profile and the Event Socket both on port %d", sipPort)
	}
	sip := net.JoinHostPort(sipIP, fmt.Sprint(sipPort))
	esl := net.JoinHostPort("127.0.0.1", fmt.Sprint(eslPort))
	for _, p := range []struct{ network, addr, what string }{
		{"udp", sip, "its SIP profile"}, {"tcp", sip, "its SIP profile"}, {"tcp", esl, "its inbound Event Socket"},
	} {
		var err error
		if p.network == "udp" {
			var c net.PacketConn
			if c, err = net.ListenPacket(p.network, p.addr); err == nil {
				c.Close()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen(p.network, p.addr); err == nil {
				l.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("freeswitch: %s %s (%s) is taken, is another FreeSWITCH running? %w", p.network, p.addr, p.what, err)
		}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
