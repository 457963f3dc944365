package esl_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/esl/esltest"
	"github.com/eslapp/eslapp/internal/testlog"
)

const netDest = "OnError XML crm_branches"

// inboundFixture is a double with an inbound listener and an eslapp
// connection to it.
type inboundFixture struct {
	fs   *esltest.FreeSWITCH
	addr string
	in   *esl.Inbound
}

func newInboundFixture(t *testing.T, handler esl.Handler, mutate func(*esl.RunnerConfig, *esl.InboundConfig)) *inboundFixture {
	t.Helper()
	fs := esltest.New(esltest.Options{Logf: t.Logf})
	addr, err := fs.ListenInbound("ClueCon")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fs.StopInbound)
	f := &inboundFixture{fs: fs, addr: addr}
	f.in = f.start(t, handler, mutate)
	return f
}

func (f *inboundFixture) start(t *testing.T, handler esl.Handler, mutate func(*esl.RunnerConfig, *esl.InboundConfig)) *esl.Inbound {
	t.Helper()
	rcfg := esl.RunnerConfig{Handler: handler, Logger: testlog.Logger(t), CommandTimeout: 2 * time.Second}
	cfg := esl.InboundConfig{
		Address: f.addr, Password: "ClueCon", Logger: testlog.Logger(t),
		CommandTimeout: 2 * time.Second, ProbeEvery: 100 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&rcfg, &cfg)
	}
	r, err := esl.NewRunner(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	in, err := esl.NewInbound(r, cfg)
	if err != nil {
		t.Fatal(err)
	}
	go in.Serve()
	t.Cleanup(r.Close)
	waitState(t, in, esl.InboundConnected)
	return in
}

func waitState(t *testing.T, in *esl.Inbound, want esl.InboundState) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for in.Stats().State != want {
		if time.Now().After(deadline) {
			t.Fatalf("state %v, want %v (%+v)", in.Stats().State, want, in.Stats())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (f *inboundFixture) call(t *testing.T, net time.Duration) *esltest.Call {
	t.Helper()
	c, err := f.fs.Socketless(context.Background(), esltest.SocketlessOptions{
		CallOptions: esltest.CallOptions{
			Vars:  map[string]string{esl.ContextVar: "crm_branches"},
			Media: func(string) (time.Duration, bool) { return 10 * time.Second, true },
		},
		Net: net, NetDest: netDest,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitDone(t *testing.T, c *esltest.Call, within time.Duration) esltest.Outcome {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(within):
		t.Fatalf("call not over after %s; commands %v", within, commandNames(c))
	}
	return c.Outcome()
}

// The step's shape over the shared connection: prompt, a wait, break,
// outputs, back to the dialplan; the outputs are stored verbatim and the
// safety net is cancelled before the transfer.
func TestInboundRunsACall(t *testing.T) {
	hostile := `{"name":"${system(touch pwned)} $${hostname}","note":"a|b!c \\ 'q'` + "\nline2\"}"
	f := newInboundFixture(t, func(ctx context.Context, c *esl.Call) {
		if _, err := c.Start(ctx, "playback", esl.Fixed("/s/hold.wav"), esl.ExecOptions{EventLock: true}); err != nil {
			t.Error(err)
			return
		}
		time.Sleep(100 * time.Millisecond)
		if err := c.Break(ctx, true); err != nil {
			t.Error(err)
		}
		last, err := c.StartSetVars(ctx, []esl.Var{{Name: "wfe_branch", Value: "OnSuccess"}, {Name: "workflowResultOutput", Value: hostile}}, time.Second)
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := last.Wait(ctx); err != nil {
			t.Error(err)
		}
		if err := c.HandBack(ctx, "OnSuccess"); err != nil {
			t.Error(err)
		}
	}, nil)
	c := f.call(t, 5*time.Second)
	out := waitDone(t, c, 5*time.Second)
	if out.Kind != esltest.Transferred || out.TransferDest != "OnSuccess XML crm_branches" || out.NetFired {
		t.Errorf("outcome %+v", out)
	}
	if v, _ := c.Var("workflowResultOutput"); v != hostile {
		t.Errorf("result stored as %q", v)
	}
	if ex := c.APIExecutions(); len(ex) > 0 {
		t.Errorf("FreeSWITCH ran %v", ex)
	}
	if st := f.in.Stats(); st.Started != 1 || st.Calls != 0 {
		t.Errorf("stats %+v", st)
	}
}

// eslapp not connected when the dialplan fires the event: the safety net
// routes the call at its deadline.
func TestInboundNotConnectedNetRoutes(t *testing.T) {
	fs := esltest.New(esltest.Options{Logf: t.Logf})
	c, err := fs.Socketless(context.Background(), esltest.SocketlessOptions{Net: 200 * time.Millisecond, NetDest: netDest})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out := waitDone(t, c, 3*time.Second)
	if !out.NetFired || out.Kind != esltest.Transferred || out.TransferDest != netDest {
		t.Errorf("outcome %+v", out)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("routed after %s", d)
	}
}

// The connection drops while a call waits: eslapp reconnects, subscribes
// the call's events again, and finishes the call.
func TestInboundReconnectsMidCall(t *testing.T) {
	resume, playing := make(chan struct{}), make(chan struct{})
	f := newInboundFixture(t, func(ctx context.Context, c *esl.Call) {
		if _, err := c.Start(ctx, "playback", esl.Fixed("/s/hold.wav"), esl.ExecOptions{EventLock: true}); err != nil {
			t.Error(err)
			return
		}
		close(playing)
		<-resume
		if err := c.Break(ctx, true); err != nil {
			t.Error("break after reconnecting:", err)
		}
		if err := c.HandBack(ctx, "OnSuccess"); err != nil {
			t.Error("hand back after reconnecting:", err)
		}
	}, nil)
	c := f.call(t, 10*time.Second)
	<-playing
	f.fs.DropInbound()
	waitState(t, f.in, esl.InboundDisconnected)
	if err := f.fs.ListenInboundAt(f.addr, "ClueCon"); err != nil {
		t.Fatal(err)
	}
	waitState(t, f.in, esl.InboundConnected)
	close(resume)
	out := waitDone(t, c, 5*time.Second)
	if out.Kind != esltest.Transferred || out.TransferDest != "OnSuccess XML crm_branches" || out.NetFired {
		t.Errorf("outcome %+v", out)
	}
	if st := f.in.Stats(); st.Connects != 2 || st.Failures < 1 {
		t.Errorf("stats %+v", st)
	}
}

// FreeSWITCH restarts: it says goodbye, is away for a while (eslapp keeps
// retrying, with backoff), comes back; the next call runs.
func TestInboundSurvivesFreeSWITCHRestart(t *testing.T) {
	var ran atomic.Int32
	f := newInboundFixture(t, func(ctx context.Context, c *esl.Call) {
		ran.Add(1)
		_ = c.HandBack(ctx, "OnSuccess")
	}, nil)
	f.fs.StopInbound()
	waitState(t, f.in, esl.InboundDisconnected)
	time.Sleep(300 * time.Millisecond) // a few failed attempts
	if st := f.in.Stats(); st.LastError == "" || st.Failures < 2 {
		t.Errorf("while FreeSWITCH is away: %+v", st)
	}
	if err := f.fs.ListenInboundAt(f.addr, "ClueCon"); err != nil {
		t.Fatal(err)
	}
	waitState(t, f.in, esl.InboundConnected)
	out := waitDone(t, f.call(t, 5*time.Second), 5*time.Second)
	if out.Kind != esltest.Transferred || out.NetFired || ran.Load() != 1 {
		t.Errorf("outcome %+v, ran %d", out, ran.Load())
	}
}

// eslapp dies while it runs a call: the call, still parked, is routed by
// the safety net; a new eslapp takes the next call.
func TestInboundEslappRestartNetRoutesParkedCall(t *testing.T) {
	taken := make(chan struct{})
	f := newInboundFixture(t, func(ctx context.Context, c *esl.Call) {
		close(taken)
		<-ctx.Done() // a CRM that never answers
	}, nil)
	c := f.call(t, 500*time.Millisecond)
	<-taken
	f.in.Close()
	out := waitDone(t, c, 3*time.Second)
	if !out.NetFired || out.TransferDest != netDest {
		t.Errorf("outcome %+v", out)
	}
	f.start(t, func(ctx context.Context, c *esl.Call) { _ = c.HandBack(ctx, "OnSuccess") }, nil)
	out = waitDone(t, f.call(t, 5*time.Second), 3*time.Second)
	if out.NetFired || out.TransferDest != "OnSuccess XML crm_branches" {
		t.Errorf("after restart: %+v", out)
	}
}

// The caller hangs up: the call's context ends with ErrHangup.
func TestInboundHangupEndsCall(t *testing.T) {
	cause := make(chan error, 1)
	f := newInboundFixture(t, func(ctx context.Context, c *esl.Call) {
		if _, err := c.Start(ctx, "playback", esl.Fixed("/s/hold.wav"), esl.ExecOptions{EventLock: true}); err != nil && !errors.Is(err, esl.ErrHangup) {
			t.Error(err)
		}
		<-ctx.Done()
		cause <- context.Cause(ctx)
	}, nil)
	c := f.call(t, 5*time.Second)
	if _, err := c.WaitFor(context.Background(), func(cmd esltest.Command) bool { return cmd.App == "playback" }); err != nil {
		t.Fatal(err)
	}
	c.Hangup("NORMAL_CLEARING")
	select {
	case err := <-cause:
		if !errors.Is(err, esl.ErrHangup) {
			t.Errorf("cause %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("hangup not seen")
	}
}

// A wrong password: eslapp says so, and keeps trying.
func TestInboundWrongPassword(t *testing.T) {
	fs := esltest.New(esltest.Options{Logf: t.Logf})
	addr, err := fs.ListenInbound("right")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fs.StopInbound)
	r, err := esl.NewRunner(esl.RunnerConfig{Handler: func(context.Context, *esl.Call) {}})
	if err != nil {
		t.Fatal(err)
	}
	in, err := esl.NewInbound(r, esl.InboundConfig{Address: addr, Password: "wrong",
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go in.Serve()
	defer in.Close()
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(in.Stats().LastError, "password") {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", in.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Beyond max_calls a call is handed back at once on OnError, and the net
// is cancelled.
func TestInboundMaxCallsHandsBack(t *testing.T) {
	release := make(chan struct{})
	f := newInboundFixture(t, func(ctx context.Context, c *esl.Call) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		_ = c.HandBack(ctx, "OnSuccess")
	}, func(rcfg *esl.RunnerConfig, _ *esl.InboundConfig) { rcfg.MaxCalls = 1 })
	first := f.call(t, 5*time.Second)
	deadline := time.Now().Add(3 * time.Second)
	for f.in.Stats().Calls != 1 {
		if time.Now().After(deadline) {
			t.Fatal("first call not taken")
		}
		time.Sleep(2 * time.Millisecond)
	}
	out := waitDone(t, f.call(t, 5*time.Second), 3*time.Second)
	if out.TransferDest != "OnError XML crm_branches" || out.NetFired {
		t.Errorf("second call: %+v", out)
	}
	close(release)
	if out := waitDone(t, first, 3*time.Second); out.TransferDest != "OnSuccess XML crm_branches" {
		t.Errorf("first call: %+v", out)
	}
	if st := f.in.Stats(); st.Refused != 1 {
		t.Errorf("stats %+v", st)
	}
}

// WaitMusic: FreeSWITCH is asked not to send the end of the music a
// call waits in (a "-" filter on its Application-Data), which eslapp does
// not need; the call runs the same, with one event fewer.
func TestInboundWaitMusicEventNotSent(t *testing.T) {
	run := func(music string) (esltest.Outcome, uint64, []string) {
		// The events read once the outputs' multiset has completed: the
		// music ended before it, on the same connection, and the park's
		// end after the hand-back races the filter's deletion.
		var in atomic.Pointer[esl.Inbound]
		var events atomic.Uint64
		f := newInboundFixture(t, func(ctx context.Context, c *esl.Call) {
			if _, err := c.Start(ctx, "playback", esl.Fixed("/s/hold.wav"), esl.ExecOptions{}); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(50 * time.Millisecond)
			if err := c.Break(ctx, true); err != nil { // the prompt, and the music under it
				t.Error(err)
			}
			last, err := c.StartSetVars(ctx, []esl.Var{{Name: "wfe_branch", Value: "OnSuccess"}}, time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := last.Wait(ctx); err != nil {
				t.Error(err)
			}
			events.Store(in.Load().Stats().Wire.Events)
			if err := c.HandBack(ctx, "OnSuccess"); err != nil {
				t.Error(err)
			}
		}, func(_ *esl.RunnerConfig, cfg *esl.InboundConfig) { cfg.WaitMusic = music })
		in.Store(f.in)
		c, err := f.fs.Socketless(context.Background(), esltest.SocketlessOptions{
			CallOptions: esltest.CallOptions{
				Vars:  map[string]string{esl.ContextVar: "crm_branches"},
				Media: func(string) (time.Duration, bool) { return 10 * time.Second, true },
			},
			Pick: 5 * time.Second, PickDest: netDest, Music: esl.DefaultWaitMusic,
		})
		if err != nil {
			t.Fatal(err)
		}
		out := waitDone(t, c, 5*time.Second)
		waitFor(t, func() bool { return f.in.Stats().Calls == 0 })
		return out, events.Load(), f.fs.InboundCommands()
	}
	outAll, all, _ := run("")
	outFiltered, filtered, cmds := run(esl.DefaultWaitMusic)
	for _, out := range []esltest.Outcome{outAll, outFiltered} {
		if out.Kind != esltest.Transferred || out.TransferDest != "OnSuccess XML crm_branches" || out.NetFired {
			t.Errorf("outcome %+v", out)
		}
	}
	if !slices.Contains(cmds, "filter Application-Data -"+esl.DefaultWaitMusic) {
		t.Errorf("no negative filter for the wait music in %q", cmds)
	}
	if all != filtered+1 {
		t.Errorf("events by the outputs' completion: without the filter %d, with it %d: want exactly the music's end fewer", all, filtered)
	}
}

// A wait music that would change what the filter means is refused.
func TestInboundWaitMusicChecked(t *testing.T) {
	r, err := esl.NewRunner(esl.RunnerConfig{Handler: func(context.Context, *esl.Call) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, bad := range []string{"-x", "+x", "/^x", " x", "a\nfilter delete all", strings.Repeat("a", 513)} {
		if _, err := esl.NewInbound(r, esl.InboundConfig{Address: "127.0.0.1:8021", WaitMusic: bad}); err == nil {
			t.Errorf("wait music %q taken", bad)
		}
	}
	if !esl.IsWaitMusic(esl.DefaultWaitMusic) {
		t.Error("the default wait music is refused")
	}
}
