package esl_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/esl/esltest"
	"github.com/eslapp/eslapp/internal/testlog"
)

// bothWays runs one runner with both ways in: an outbound socket server
// on a loopback port and an inbound connection to a double.
type bothWays struct {
	runner *esl.Runner
	addr   string // the server's
	in     *inboundFixture
	served chan struct{}
}

func startBothWays(t *testing.T, rcfg esl.RunnerConfig, scfg esl.ServerConfig) *bothWays {
	t.Helper()
	rcfg.Logger = testlog.Logger(t)
	rcfg.CommandTimeout = 2 * time.Second
	r, err := esl.NewRunner(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	scfg.Logger = rcfg.Logger
	srv, err := esl.NewServer(r, scfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &bothWays{runner: r, addr: ln.Addr().String(), served: make(chan struct{})}
	go func() {
		defer close(b.served)
		_ = srv.Serve(ln)
	}()
	fs := esltest.New(esltest.Options{Logf: t.Logf})
	iaddr, err := fs.ListenInbound("ClueCon")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fs.StopInbound)
	in, err := esl.NewInbound(r, esl.InboundConfig{Address: iaddr, Password: "ClueCon", Logger: rcfg.Logger,
		CommandTimeout: 2 * time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go in.Serve()
	waitState(t, in, esl.InboundConnected)
	b.in = &inboundFixture{fs: fs, addr: iaddr, in: in}
	return b
}

// max_calls counts every way in together: a held-socket call fills it, and
// a socket-less call is then handed back at once (OnError, the net
// cancelled) — and the other way round.
func TestRunnerMaxCallsSpansBothWaysIn(t *testing.T) {
	release := make(chan struct{})
	b := startBothWays(t, esl.RunnerConfig{MaxCalls: 1, Handler: func(ctx context.Context, c *esl.Call) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		_ = c.HandBack(ctx, "OnSuccess")
	}}, esl.ServerConfig{})

	held := dial(t, newFS(t), b.addr, esltest.CallOptions{})
	waitFor(t, func() bool { return b.runner.Stats().Active == 1 })
	parked := b.in.call(t, 5*time.Second)
	if out := waitDone(t, parked, 3*time.Second); out.TransferDest != "OnError XML crm_branches" || out.NetFired {
		t.Errorf("socket-less call while a held call fills max_calls: %+v", out)
	}
	close(release)
	if out := waitCall(t, held); out.Kind != esltest.Resumed {
		t.Errorf("held call: %v", out.Kind)
	}
	if st := b.runner.Stats(); st.Taken != 1 || st.Refused != 1 {
		t.Errorf("runner stats %+v", st)
	}
}

// Each call gets its binding when it arrives and keeps it to its end; the
// binding's Release runs exactly once per call, also for a connection that
// never completes connect and for a start event heard twice.
func TestRunnerBindsEachCallOnce(t *testing.T) {
	var mu sync.Mutex
	bound, released := 0, 0
	var generation atomic.Int32
	generation.Store(1)
	seen := make(chan int32, 4)
	b := startBothWays(t, esl.RunnerConfig{Bind: func() esl.Binding {
		g := generation.Load()
		mu.Lock()
		bound++
		mu.Unlock()
		return esl.Binding{
			Handler: func(ctx context.Context, c *esl.Call) {
				generation.Store(g + 1) // a "reload" while the call runs
				seen <- g
				_ = c.HandBack(ctx, "OnSuccess")
			},
			Release: func() {
				mu.Lock()
				released++
				mu.Unlock()
			},
		}
	}}, esl.ServerConfig{})

	waitCall(t, dial(t, newFS(t), b.addr, esltest.CallOptions{}))
	waitDone(t, b.in.call(t, 5*time.Second), 3*time.Second)
	// A peer that connects and says nothing useful.
	nc, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = nc.Write([]byte("Content-Type: text/rude\n\n"))
	_ = nc.Close()

	if g1, g2 := <-seen, <-seen; g1 != 1 || g2 != 2 {
		t.Errorf("calls ran on generations %d and %d, want 1 then 2", g1, g2)
	}
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return bound == 3 && released == 3
	})
}

// A draining runner with StopListeningOnDrain closes the listener at once:
// FreeSWITCH's "socket A|B" gets a refused connection and tries the next
// address. The call in flight still finishes.
func TestRunnerDrainStopsListening(t *testing.T) {
	release := make(chan struct{})
	b := startBothWays(t, esl.RunnerConfig{Handler: func(ctx context.Context, c *esl.Call) {
		<-release
		_ = c.HandBack(ctx, "OnSuccess")
	}}, esl.ServerConfig{StopListeningOnDrain: true})
	inFlight := dial(t, newFS(t), b.addr, esltest.CallOptions{})
	waitFor(t, func() bool { return b.runner.Stats().Active == 1 })

	shutdown := make(chan int, 1)
	go func() { shutdown <- b.runner.Shutdown(context.Background()) }()
	select {
	case <-b.served:
	case <-time.After(5 * time.Second):
		t.Fatal("the listener is still open while draining")
	}
	if nc, err := net.DialTimeout("tcp", b.addr, time.Second); err == nil {
		nc.Close()
		t.Fatal("a connection during the drain was accepted")
	}
	close(release)
	if out := waitCall(t, inFlight); out.Kind != esltest.Resumed {
		t.Errorf("call in flight: %v", out.Kind)
	}
	if ended := <-shutdown; ended != 0 {
		t.Errorf("Shutdown ended %d calls", ended)
	}
}

// A panic in a socket-less call's handler hands that call back (OnError,
// the net cancelled) instead of leaving it parked until the net; a panic
// after the call was handed on sends nothing more.
func TestRunnerPanicHandsBackOnce(t *testing.T) {
	f := newInboundFixture(t, func(ctx context.Context, c *esl.Call) {
		if v, _ := c.Data().Var("after_leaving"); v == "yes" {
			if err := c.HandBack(ctx, "OnSuccess"); err != nil {
				t.Error(err)
			}
		}
		panic("boom")
	}, nil)
	out := waitDone(t, f.call(t, 5*time.Second), 3*time.Second)
	if out.TransferDest != "OnError XML crm_branches" || out.NetFired {
		t.Errorf("panicking call: %+v", out)
	}

	c, err := f.fs.Socketless(context.Background(), esltest.SocketlessOptions{
		CallOptions: esltest.CallOptions{Vars: map[string]string{esl.ContextVar: "crm_branches", "after_leaving": "yes"}},
		Net:         5 * time.Second, NetDest: netDest,
	})
	if err != nil {
		t.Fatal(err)
	}
	out = waitDone(t, c, 3*time.Second)
	if out.TransferDest != "OnSuccess XML crm_branches" {
		t.Errorf("call handed on before the panic: %+v", out)
	}
	transfers := 0
	for _, cmd := range c.Commands() {
		if cmd.Name == "api" && len(cmd.Arg()) > 12 && cmd.Arg()[:12] == "uuid_transfe" {
			transfers++
		}
	}
	if transfers != 1 {
		t.Errorf("%d transfers, want 1: %v", transfers, commandNames(c))
	}
}

// A handler without a runner, or a way in without a runner, is refused.
func TestRunnerNeedsAHandler(t *testing.T) {
	if _, err := esl.NewRunner(esl.RunnerConfig{}); err == nil {
		t.Error("a runner without a handler was made")
	}
	if _, err := esl.NewServer(nil, esl.ServerConfig{}); err == nil {
		t.Error("a server without a runner was made")
	}
	if _, err := esl.NewInbound(nil, esl.InboundConfig{Address: "127.0.0.1:1"}); err == nil {
		t.Error("an inbound connection without a runner was made")
	}
}
