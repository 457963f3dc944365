package esl_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eslapp/eslapp/internal/testlog"

	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/esl/esltest"
)

// startServer runs an esl.Server of a runner on an ephemeral loopback
// port.
func startServer(t testing.TB, rcfg esl.RunnerConfig, cfg esl.ServerConfig) (*esl.Runner, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLog(t)
	}
	if rcfg.Logger == nil {
		rcfg.Logger = cfg.Logger
	}
	if cfg.CommandTimeout == 0 {
		cfg.CommandTimeout = 2 * time.Second
	}
	r, err := esl.NewRunner(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := esl.NewServer(r, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		r.Close()
		<-done
	})
	return r, ln.Addr().String()
}

// onSession is a handler that works on the call's socket.
func onSession(h func(ctx context.Context, s *esl.Session)) esl.Handler {
	return func(ctx context.Context, c *esl.Call) { h(ctx, esl.SessionOf(c)) }
}

// testLog keeps a test's log and prints it only when the test fails.
func testLog(t testing.TB) *slog.Logger { return testlog.Logger(t) }

// sharedFS is the fake FreeSWITCH host of these tests; calls are told
// apart by UUID.
var sharedFS = esltest.New(esltest.Options{Logf: func(string, ...any) {}})

func newFS(testing.TB) *esltest.FreeSWITCH { return sharedFS }

func dial(t *testing.T, fs *esltest.FreeSWITCH, addr string, opts esltest.CallOptions) *esltest.Call {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := fs.Dial(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitCall(t *testing.T, c *esltest.Call) esltest.Outcome {
	t.Helper()
	select {
	case <-c.Done():
		return c.Outcome()
	case <-time.After(10 * time.Second):
		t.Fatalf("call %s still open; commands: %v", c.UUID(), commandNames(c))
		return esltest.Outcome{}
	}
}

func commandNames(c *esltest.Call) []string {
	var names []string
	for _, cmd := range c.Commands() {
		name := cmd.Name
		if cmd.App != "" {
			name += " " + cmd.App
		} else if cmd.Name == "api" {
			name += " " + strings.Fields(cmd.Arg())[0]
		}
		names = append(names, name)
	}
	return names
}

// A connection from outside [server] allow is closed before eslapp reads
// or writes a byte: the handler never runs, no command is sent.
func TestServerRefusesDisallowedSource(t *testing.T) {
	var ran atomic.Bool
	_, addr := startServer(t, esl.RunnerConfig{Handler: func(context.Context, *esl.Call) { ran.Store(true) }},
		esl.ServerConfig{Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	c := dial(t, newFS(t), addr, esltest.CallOptions{})
	waitCall(t, c)
	if ran.Load() || len(c.Commands()) != 0 {
		t.Fatalf("disallowed source was served: handler %v, commands %v", ran.Load(), commandNames(c))
	}
}

// Calls over max_calls go straight back to the dialplan: resume, exit.
func TestServerMaxCallsHandsBack(t *testing.T) {
	release := make(chan struct{})
	r, addr := startServer(t, esl.RunnerConfig{
		MaxCalls: 1,
		Handler: func(ctx context.Context, c *esl.Call) {
			select {
			case <-release:
			case <-ctx.Done():
			}
		},
	}, esl.ServerConfig{})
	fs := newFS(t)
	first := dial(t, fs, addr, esltest.CallOptions{})
	waitFor(t, func() bool { return r.Stats().Active == 1 })
	second := dial(t, fs, addr, esltest.CallOptions{})
	out := waitCall(t, second)
	if out.Kind != esltest.Resumed || strings.Join(commandNames(second), ",") != "connect,myevents,resume" {
		t.Fatalf("second call: %v, commands %v", out.Kind, commandNames(second))
	}
	close(release)
	if out := waitCall(t, first); out.Kind != esltest.Exited {
		t.Fatalf("first call: %v", out.Kind)
	}
}

// SIGTERM's drain: calls in flight finish, new ones go back to the
// dialplan, and the calls left at the drain deadline are ended.
func TestServerDrain(t *testing.T) {
	release := make(chan struct{})
	var endedByShutdown atomic.Int32
	r, addr := startServer(t, esl.RunnerConfig{
		Handler: onSession(func(ctx context.Context, s *esl.Session) {
			if v, _ := s.Data().Var("stubborn"); v == "yes" {
				<-ctx.Done()
				if errors.Is(context.Cause(ctx), esl.ErrShutdown) {
					endedByShutdown.Add(1)
				}
				_ = s.Resume(context.WithoutCancel(ctx))
				return
			}
			if err := s.Subscribe(ctx); err != nil {
				t.Error(err)
			}
			select {
			case <-release:
				_ = s.SetVar(ctx, "finished", "yes")
			case <-ctx.Done():
			}
		}),
	}, esl.ServerConfig{})
	fs := newFS(t)
	polite := dial(t, fs, addr, esltest.CallOptions{})
	stubborn := dial(t, fs, addr, esltest.CallOptions{Vars: map[string]string{"stubborn": "yes"}})
	waitFor(t, func() bool { return r.Stats().Active == 2 })

	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	shutdown := make(chan int, 1)
	go func() {
		shutdown <- r.Shutdown(ctx)
	}()
	waitFor(t, func() bool { return r.Draining() })

	late := dial(t, fs, addr, esltest.CallOptions{})
	if out := waitCall(t, late); out.Kind != esltest.Resumed {
		t.Fatalf("call during drain: %v %v", out.Kind, commandNames(late))
	}
	close(release)
	if out := waitCall(t, polite); out.Kind != esltest.Exited {
		t.Fatalf("call in flight: %v", out.Kind)
	}
	if v, _ := polite.Var("finished"); v != "yes" {
		t.Fatal("call in flight did not finish its work")
	}
	ended := <-shutdown
	if ended != 1 || endedByShutdown.Load() != 1 {
		t.Fatalf("Shutdown ended %d calls (handler saw %d)", ended, endedByShutdown.Load())
	}
	if out := waitCall(t, stubborn); out.Kind != esltest.Resumed {
		t.Fatalf("call ended at the deadline: %v", out.Kind)
	}
}

// A panic in one call's handler ends that call alone: it goes back to the
// dialplan, and a call running beside it completes.
func TestServerPanicIsolated(t *testing.T) {
	_, addr := startServer(t, esl.RunnerConfig{
		Handler: onSession(func(ctx context.Context, s *esl.Session) {
			if v, _ := s.Data().Var("boom"); v == "yes" {
				var m map[string]int
				m["x"]++ // nil map write
			}
			time.Sleep(100 * time.Millisecond)
			if err := s.Subscribe(ctx); err != nil {
				t.Error(err)
			}
			if err := s.SetVar(ctx, "survived", "yes"); err != nil {
				s.Logger().Error("set", "err", err)
			}
		}),
	}, esl.ServerConfig{})
	fs := newFS(t)
	var calm, boom *esltest.Call
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); calm = dial(t, fs, addr, esltest.CallOptions{}) }()
	go func() {
		defer wg.Done()
		boom = dial(t, fs, addr, esltest.CallOptions{Vars: map[string]string{"boom": "yes"}})
	}()
	wg.Wait()
	if out := waitCall(t, boom); out.Kind != esltest.Resumed {
		t.Fatalf("panicking call: %v %v", out.Kind, commandNames(boom))
	}
	if out := waitCall(t, calm); out.Kind != esltest.Exited {
		t.Fatalf("calm call: %v", out.Kind)
	}
	if v, _ := calm.Var("survived"); v != "yes" {
		t.Fatal("the parallel call did not complete")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
