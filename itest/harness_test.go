package itest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helpers shared by the tests with and without the integration tag.

// dtmfPcap is the RFC 2833 key "1" that uac_dtmf.xml replays, as Debian's
// sip-tester package installs it.
const dtmfPcap = "/usr/share/sip-tester/dtmf_2833_1.pcap"

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// repoRoot is the repository's top directory (tests run in itest/).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// eslappBinary is eslapp built from this checkout once per test run, or
// ESLAPP_BIN when set.
func eslappBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("ESLAPP_BIN"); bin != "" {
		return bin
	}
	root := repoRoot(t)
	binOnce.Do(func() {
		goCmd, err := exec.LookPath("go")
		if err != nil {
			binErr = fmt.Errorf("the go command is not on PATH (or set ESLAPP_BIN to an eslapp binary): %w", err)
			return
		}
		if binDir, binErr = os.MkdirTemp("", "eslapp-itest-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "eslapp")
		cmd := exec.Command(goCmd, "build", "-buildvcs=false", "-o", binPath, "./cmd/eslapp")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/eslapp: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// sippPath is SIPp's path, or "" with the reason when it is missing.
func sippPath() (string, string) {
	if p := os.Getenv("ESLAPP_SIPP"); p != "" {
		return p, ""
	}
	p, err := exec.LookPath("sipp")
	if err != nil {
		return "", "SIPp is not installed (bash .ci/install-sipp installs Debian's sip-tester)"
	}
	return p, ""
}

// freeUDPPort finds a port where SIPp can bind ip:port .. ip:port+3 (SIPp
// takes the media port and the next ones for RTCP and video), above the
// RTP ports of conf/freeswitch (16384-32768): in the compose harness SIPp
// shares FreeSWITCH's addresses.
func freeUDPPort(t testing.TB, ip string) int {
	t.Helper()
	for range 200 {
		port := 40000 + 4*rand.IntN(5000)
		var conns []net.PacketConn
		ok := true
		for p := port; p < port+4; p++ {
			c, err := net.ListenPacket("udp", net.JoinHostPort(ip, fmt.Sprint(p)))
			if err != nil {
				ok = false
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatalf("no free UDP ports on %s", ip)
	return 0
}

// localIPFor is the local address this host uses to reach addr (no packet
// is sent).
func localIPFor(addr string) (string, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// sippRun is one SIPp process: a scenario of itest/sipp and its options.
type sippRun struct {
	scenario string   // file name in itest/sipp
	remote   string   // host:port; "" for a server scenario
	localIP  string   // -i
	port     int      // -p; 0 lets SIPp choose
	args     []string // more options (-s, -key, -d, -m, ...)
	timeout  time.Duration
}

// sippResult is how a SIPp process ended, with its logs for failures.
type sippResult struct {
	err      error
	output   string // the statistics screen
	messages string // -trace_msg
	errors   string // -trace_err
}

func (r sippResult) String() string {
	return fmt.Sprintf("sipp: %v\n--- errors\n%s\n--- messages (last 4000 bytes)\n%s", r.err, r.errors, tail(r.messages, 4000))
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// start runs SIPp in dir; wait returns its result. SIPp exits 0 only when
// every call of the run succeeded.
func (s sippRun) start(ctx context.Context, t testing.TB, sipp, dir string) (wait func() sippResult) {
	t.Helper()
	name := strings.TrimSuffix(s.scenario, ".xml") + fmt.Sprintf("-%d", rand.IntN(1e6))
	msgFile := filepath.Join(dir, name+"-messages.log")
	errFile := filepath.Join(dir, name+"-errors.log")
	args := []string{}
	if s.remote != "" {
		args = append(args, s.remote)
	}
	timeout := s.timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	args = append(args,
		"-sf", filepath.Join(repoRoot(t), "itest", "sipp", s.scenario),
		"-i", s.localIP,
		"-mp", fmt.Sprint(freeUDPPort(t, s.localIP)),
		"-nostdin",
		"-timeout", fmt.Sprint(int(timeout.Seconds())), "-timeout_error",
		"-trace_msg", "-message_file", msgFile,
		"-trace_err", "-error_file", errFile,
	)
	if s.port != 0 {
		args = append(args, "-p", fmt.Sprint(s.port))
	}
	args = append(args, s.args...)
	cmd := exec.CommandContext(ctx, sipp, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return func() sippResult { return sippResult{err: err} }
	}
	return func() sippResult {
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%s exited %d (0: every call succeeded; 1: a call failed; 97/99: stopped early; 255: fatal)", s.scenario, ee.ExitCode())
		}
		msgs, _ := os.ReadFile(msgFile)
		errs, _ := os.ReadFile(errFile)
		return sippResult{err: err, output: out.String(), messages: string(msgs), errors: string(errs)}
	}
}
