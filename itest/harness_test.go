package itest

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"
)

// Helpers shared by the tests with and without the integration tag.

// dtmfPcap is the RFC 2833 key "1" that uac_dtmf.xml replays.
const dtmfPcap = DTMFPcap

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error

	// atExit runs after every test, even when one failed: what the tests
	// started for the whole run (FreeSWITCH) stops there.
	atExitMu sync.Mutex
	atExit   []func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	atExitMu.Lock()
	for i := len(atExit) - 1; i >= 0; i-- {
		atExit[i]()
	}
	atExitMu.Unlock()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// repoRoot is the repository's top directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := RepoRoot()
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
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "eslapp-itest-bin-"); binErr != nil {
			return
		}
		binPath, binErr = BuildEslapp(context.Background(), binDir)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// sippPath is SIPp's path, or "" with the reason when it is missing.
func sippPath() (string, string) { return SIPpPath() }

// freeUDPPort finds a port where SIPp can bind ip:port .. ip:port+3.
func freeUDPPort(t testing.TB, ip string) int {
	t.Helper()
	port, err := FreeUDPPorts(ip, 4)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// sippRun is one SIPp process of a test.
type sippRun struct {
	scenario string   // file name in itest/sipp
	remote   string   // host:port; "" for a server scenario
	localIP  string   // -i
	port     int      // -p; 0 lets SIPp choose
	args     []string // more options (-s, -key, -d, -m, ...)
	timeout  time.Duration
}

// start runs SIPp in dir, keeping every SIP message for failures; wait
// returns its result.
func (s sippRun) start(ctx context.Context, t testing.TB, sipp, dir string) (wait func() SIPpResult) {
	t.Helper()
	return SIPp{Path: sipp, Scenario: s.scenario, Remote: s.remote, LocalIP: s.localIP, Port: s.port,
		Args: s.args, Timeout: s.timeout, Dir: dir, Messages: true}.Start(ctx)
}
