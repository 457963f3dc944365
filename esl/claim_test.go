package esl_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/esl/esltest"
	"github.com/eslapp/eslapp/internal/testlog"
)

// pool is one fake FreeSWITCH with the shipped socket-less dialplan (a
// pick-up net, hold music) and any number of eslapps connected to it.
type pool struct {
	fs   *esltest.FreeSWITCH
	addr string
}

func newPool(t *testing.T, second time.Duration) *pool {
	t.Helper()
	fs := esltest.New(esltest.Options{Logf: t.Logf, Second: second})
	addr, err := fs.ListenInbound("ClueCon")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fs.StopInbound)
	return &pool{fs: fs, addr: addr}
}

// eslapp connects one more eslapp: its own runner and inbound connection.
func (p *pool) eslapp(t *testing.T, rcfg esl.RunnerConfig) (*esl.Runner, *esl.Inbound) {
	t.Helper()
	rcfg.Logger = testlog.Logger(t)
	rcfg.CommandTimeout = 2 * time.Second
	r, err := esl.NewRunner(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	in, err := esl.NewInbound(r, esl.InboundConfig{Address: p.addr, Password: "ClueCon", Logger: rcfg.Logger,
		CommandTimeout: 2 * time.Second, ProbeEvery: time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go in.Serve()
	t.Cleanup(r.Close)
	waitState(t, in, esl.InboundConnected)
	return r, in
}

// call announces a call as the shipped dialplan does.
func (p *pool) call(t *testing.T, pick time.Duration, vars map[string]string) *esltest.Call {
	t.Helper()
	v := map[string]string{esl.ContextVar: "crm_branches"}
	for k, val := range vars {
		v[k] = val
	}
	c, err := p.fs.Socketless(context.Background(), esltest.SocketlessOptions{
		CallOptions: esltest.CallOptions{Vars: v, Media: func(string) (time.Duration, bool) { return 10 * time.Second, true }},
		Pick:        pick, PickDest: netDest, Music: "local_stream://eslapp_hold",
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// announce announces n calls as call does, every apart.
func (p *pool) announce(t *testing.T, n int, pick, every time.Duration) []*esltest.Call {
	t.Helper()
	calls := make([]*esltest.Call, 0, n)
	for range n {
		calls = append(calls, p.call(t, pick, nil))
		time.Sleep(every)
	}
	return calls
}

// handBack is a handler that plays a prompt, waits, and hands the call
// back OnSuccess; it records which eslapp ran each call.
func handBack(name string, ran *sync.Map, hold time.Duration) esl.Handler {
	return func(ctx context.Context, c *esl.Call) {
		if prev, dup := ran.LoadOrStore(c.UUID(), name); dup {
			ran.Store(c.UUID(), prev.(string)+"+"+name)
		}
		if _, err := c.Start(ctx, "playback", esl.Fixed("/s/hold.wav"), esl.ExecOptions{EventLock: true}); err != nil {
			return
		}
		select {
		case <-time.After(hold):
		case <-ctx.Done():
			return
		}
		_ = c.Break(ctx, true)
		_ = c.HandBack(ctx, "OnSuccess")
	}
}

func sendmsgs(c *esltest.Call) int {
	n := 0
	for _, cmd := range c.Commands() {
		if cmd.Name == "sendmsg" {
			n++
		}
	}
	return n
}

// Two eslapps hear every call; each call runs in exactly one, is
// transferred once, and leaves no scheduled task behind. The loser of a
// claim sends the call nothing.
func TestClaimExactlyOnce(t *testing.T) {
	p := newPool(t, 0)
	var ran sync.Map
	_, inA := p.eslapp(t, esl.RunnerConfig{Handler: handBack("A", &ran, 50*time.Millisecond)})
	_, inB := p.eslapp(t, esl.RunnerConfig{Handler: handBack("B", &ran, 50*time.Millisecond)})
	calls := p.announce(t, 20, 2*time.Second, 10*time.Millisecond)
	for _, c := range calls {
		out := waitDone(t, c, 5*time.Second)
		if len(out.Transfers) != 1 || out.TransferDest != "OnSuccess XML crm_branches" || out.NetFired {
			t.Errorf("call %s: %+v", c.UUID(), out)
		}
		who, _ := ran.Load(c.UUID())
		if who != "A" && who != "B" {
			t.Errorf("call %s ran in %v", c.UUID(), who)
		}
		if n := sendmsgs(c); n != 1 {
			t.Errorf("call %s got %d sendmsg (one prompt expected: the loser must send nothing)", c.UUID(), n)
		}
		for _, g := range []string{esl.PickGroup(c.UUID()), esl.NetGroup(c.UUID())} {
			if n := p.fs.ScheduledTasks(g); n != 0 {
				t.Errorf("call %s: %d tasks left in %s", c.UUID(), n, g)
			}
		}
	}
	a, b := inA.Stats(), inB.Stats()
	if a.ClaimsWon+b.ClaimsWon != 20 || a.ClaimsLost+b.ClaimsLost != 20 {
		t.Errorf("claims: A %+v, B %+v", a, b)
	}
}

// With no eslapp to claim it, the pick-up net moves the call to OnError.
func TestUnclaimedCallPickNetRoutes(t *testing.T) {
	p := newPool(t, 0)
	start := time.Now()
	c := p.call(t, 200*time.Millisecond, nil)
	out := waitDone(t, c, 3*time.Second)
	if !out.NetFired || out.NetGroup != esl.PickGroup(c.UUID()) || out.TransferDest != netDest {
		t.Errorf("outcome %+v", out)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("routed after %v", d)
	}
}

// An eslapp at max_calls does not claim: the idle peer takes the call.
func TestBusyEslappLeavesTheCallToItsPeer(t *testing.T) {
	p := newPool(t, 0)
	var ran sync.Map
	release := make(chan struct{})
	busy := func(ctx context.Context, c *esl.Call) {
		ran.Store(c.UUID(), "A")
		select {
		case <-release:
		case <-ctx.Done():
		}
		_ = c.HandBack(ctx, "OnSuccess")
	}
	_, inA := p.eslapp(t, esl.RunnerConfig{Handler: busy, MaxCalls: 1})
	first := p.call(t, 2*time.Second, nil)
	waitFor(t, func() bool { return inA.Stats().Calls == 1 })
	_, inB := p.eslapp(t, esl.RunnerConfig{Handler: handBack("B", &ran, 10*time.Millisecond)})
	second := p.call(t, 2*time.Second, nil)
	out := waitDone(t, second, 3*time.Second)
	if who, _ := ran.Load(second.UUID()); who != "B" || out.TransferDest != "OnSuccess XML crm_branches" {
		t.Errorf("second call ran in %v: %+v", who, out)
	}
	if st := inA.Stats(); st.Declined != 1 || st.ClaimsLost != 0 {
		t.Errorf("A: %+v", st)
	}
	if st := inB.Stats(); st.ClaimsWon != 1 {
		t.Errorf("B: %+v", st)
	}
	close(release)
	waitDone(t, first, 3*time.Second)
}

// An eslapp that dies mid-step leaves its net armed: FreeSWITCH moves the
// call to OnError within the step's bound plus the margin.
func TestNetRoutesWhenEslappDiesMidStep(t *testing.T) {
	p := newPool(t, 50*time.Millisecond) // a scheduler second of 50 ms
	taken := make(chan struct{})
	r, _ := p.eslapp(t, esl.RunnerConfig{Bind: func() esl.Binding {
		return esl.Binding{
			Handler: func(ctx context.Context, c *esl.Call) { close(taken); <-ctx.Done() },
			Bound:   func(*esl.Call) time.Duration { return 3 * time.Second }, // +5: 250 ms here
		}
	}})
	c := p.call(t, 2*time.Second, nil)
	<-taken
	r.Close() // no hand-back: the process is gone
	out := waitDone(t, c, 3*time.Second)
	if !out.NetFired || out.NetGroup != esl.NetGroup(c.UUID()) || out.TransferDest != "OnError XML crm_branches" || len(out.Transfers) != 1 {
		t.Errorf("outcome %+v", out)
	}
}

// A call whose net fired while eslapp stood still gets nothing more from
// eslapp: the command that would have followed finds the net gone and
// stops, and so does the hand-back.
func TestFiredNetStopsEverything(t *testing.T) {
	p := newPool(t, 0)
	results := make(chan error, 2)
	fire := make(chan struct{})
	_, in := p.eslapp(t, esl.RunnerConfig{Handler: func(ctx context.Context, c *esl.Call) {
		if _, err := c.Start(ctx, "playback", esl.Fixed("/s/hold.wav"), esl.ExecOptions{EventLock: true}); err != nil {
			t.Error(err)
		}
		fire <- struct{}{}
		<-fire
		esl.NetDueNow(c) // as after a stall
		results <- c.Break(context.WithoutCancel(ctx), true)
		results <- c.HandBack(context.WithoutCancel(ctx), "OnSuccess")
	}})
	c := p.call(t, 2*time.Second, nil)
	<-fire
	if n := p.fs.RunScheduled(esl.NetGroup(c.UUID())); n != 1 {
		t.Fatalf("%d nets ran", n)
	}
	movedAt := time.Now()
	fire <- struct{}{}
	for range 2 {
		if err := <-results; !errors.Is(err, esl.ErrNetFired) {
			t.Errorf("after the net fired: %v", err)
		}
	}
	out := waitDone(t, c, 3*time.Second)
	if len(out.Transfers) != 1 || out.TransferDest != "OnError XML crm_branches" {
		t.Errorf("outcome %+v", out)
	}
	// Only the scheduler hears from eslapp after that (the fence finds
	// the net gone, and takes back the one it armed on the way).
	for _, cmd := range c.Commands() {
		if cmd.At.After(movedAt) && !strings.HasPrefix(cmd.Arg(), "sched_") {
			t.Errorf("sent after the net fired: %s %s", cmd.Name, cmd.Arg())
		}
	}
	if n := p.fs.ScheduledTasks(esl.NetGroup(c.UUID())); n != 0 {
		t.Errorf("%d nets left armed", n)
	}
	if st := in.Stats(); st.NetsFired != 1 {
		t.Errorf("stats %+v", st)
	}
}

// A net a losing eslapp armed and could not delete (it died) sits in the
// call's net group; the winner deletes the whole group when it leaves, so
// it never fires.
func TestLeavingDeletesOrphanNets(t *testing.T) {
	p := newPool(t, 0)
	var orphan atomic.Uint32
	var ran sync.Map
	hb := handBack("A", &ran, 100*time.Millisecond)
	p.eslapp(t, esl.RunnerConfig{Handler: func(ctx context.Context, c *esl.Call) {
		orphan.Store(p.fs.Schedule(time.Hour, esl.NetGroup(c.UUID()), "uuid_transfer "+c.UUID()+" OnError XML crm_branches"))
		hb(ctx, c)
	}})
	c := p.call(t, 2*time.Second, nil)
	out := waitDone(t, c, 3*time.Second)
	if orphan.Load() == 0 || p.fs.ScheduledTasks(esl.NetGroup(c.UUID())) != 0 || len(out.Transfers) != 1 {
		t.Errorf("orphan %d, tasks left %d, outcome %+v", orphan.Load(), p.fs.ScheduledTasks(esl.NetGroup(c.UUID())), out)
	}
}

// Arm re-arms the net only when the armed one does not cover the step, in
// one write: the new net added, then the old one deleted by its task id
// (never a moment without a net).
func TestArmRearmsWhenNeeded(t *testing.T) {
	p := newPool(t, 0)
	errs := make(chan error, 2)
	p.eslapp(t, esl.RunnerConfig{Handler: func(ctx context.Context, c *esl.Call) {
		errs <- c.Arm(ctx, 5*time.Second) // covered by the first net (10 s)
		errs <- c.Arm(ctx, 30*time.Second)
		_ = c.HandBack(ctx, "OnSuccess")
	}})
	c := p.call(t, 2*time.Second, nil)
	waitDone(t, c, 3*time.Second)
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	var arms []string
	for _, cmd := range p.fs.InboundCommands() {
		if strings.HasPrefix(cmd, "api sched_api +") && strings.Contains(cmd, c.UUID()) {
			arms = append(arms, strings.Fields(cmd)[2])
		}
	}
	if !slices.Equal(arms, []string{"+12", "+32"}) {
		t.Errorf("nets armed: %v, want the claim's +12 then +32", arms)
	}
	cmds := p.fs.InboundCommands()
	for i, cmd := range cmds {
		if !strings.HasPrefix(cmd, "api sched_api +32 ") {
			continue
		}
		if i+1 == len(cmds) || !regexp.MustCompile(`^api sched_del [0-9]+$`).MatchString(cmds[i+1]) {
			t.Errorf("the re-arm's next command is not the old net's deletion by id: %q", cmds[i+1:])
		}
	}
}

// The least loaded eslapp claims first: two eslapps share the calls.
func TestClaimsShareTheLoad(t *testing.T) {
	p := newPool(t, 0)
	var ran sync.Map
	p.eslapp(t, esl.RunnerConfig{Handler: handBack("A", &ran, 400*time.Millisecond), ClaimStagger: time.Millisecond})
	p.eslapp(t, esl.RunnerConfig{Handler: handBack("B", &ran, 400*time.Millisecond), ClaimStagger: time.Millisecond})
	calls := p.announce(t, 40, 2*time.Second, 20*time.Millisecond)
	count := map[string]int{}
	for _, c := range calls {
		waitDone(t, c, 5*time.Second)
		who, _ := ran.Load(c.UUID())
		count[fmt.Sprint(who)]++
	}
	if count["A"] < 12 || count["B"] < 12 || count["A"]+count["B"] != 40 {
		t.Errorf("calls per eslapp: %v (want each 30-70%%)", count)
	}
}

// Equally loaded eslapps share the calls too: with nothing running in
// either, the one that hears each announcement first would win every
// claim (the double writes to the first connection first), but the
// random part of the stagger makes each tie a coin toss.
func TestClaimTiesAreShared(t *testing.T) {
	p := newPool(t, 0)
	var ran sync.Map
	p.eslapp(t, esl.RunnerConfig{Handler: handBack("A", &ran, 0), ClaimStagger: time.Millisecond})
	p.eslapp(t, esl.RunnerConfig{Handler: handBack("B", &ran, 0), ClaimStagger: time.Millisecond})
	count := map[string]int{}
	const n = 80
	for range n {
		c := p.call(t, 2*time.Second, nil)
		waitDone(t, c, 5*time.Second) // the next call finds both idle
		who, _ := ran.Load(c.UUID())
		count[fmt.Sprint(who)]++
	}
	// Each wins Binomial(80, 1/2) ties: fewer than 25 is 3.4 standard
	// deviations off (without the random part: about 60 to 20).
	if count["A"] < 25 || count["B"] < 25 || count["A"]+count["B"] != n {
		t.Errorf("calls per eslapp, one at a time: %v (want each at least 25 of %d)", count, n)
	}
}

// An eslapp that asks for a later claim (its workflow's breaker open)
// leaves the call to a healthy peer.
func TestClaimDelayLetsAHealthyPeerWin(t *testing.T) {
	p := newPool(t, 0)
	var ran sync.Map
	p.eslapp(t, esl.RunnerConfig{Bind: func() esl.Binding {
		return esl.Binding{Handler: handBack("sick", &ran, 10*time.Millisecond),
			ClaimDelay: func(*esl.Call) time.Duration { return 200 * time.Millisecond }}
	}})
	p.eslapp(t, esl.RunnerConfig{Handler: handBack("healthy", &ran, 10*time.Millisecond)})
	for range 5 {
		c := p.call(t, 2*time.Second, nil)
		waitDone(t, c, 3*time.Second)
		if who, _ := ran.Load(c.UUID()); who != "healthy" {
			t.Errorf("call ran in %v", who)
		}
	}
}

// Alone on a FreeSWITCH, an eslapp does not wait its turn by load: with
// calls running, a stagger of 300 ms per call would let a pick-up net of
// 600 ms fire before the claims of the calls that find two running.
func TestClaimAloneDoesNotWaitByLoad(t *testing.T) {
	p := newPool(t, 0)
	var ran sync.Map
	_, in := p.eslapp(t, esl.RunnerConfig{Handler: handBack("A", &ran, 1500*time.Millisecond),
		ClaimStagger: 300 * time.Millisecond, MaxClaimDelay: 10 * time.Second})
	calls := p.announce(t, 6, 600*time.Millisecond, 50*time.Millisecond)
	for _, c := range calls {
		out := waitDone(t, c, 5*time.Second)
		if out.NetFired || out.TransferDest != "OnSuccess XML crm_branches" {
			t.Errorf("call %s: %+v (claimed after its pick-up net?)", c.UUID(), out)
		}
	}
	if st := in.Stats(); st.ClaimsWon != 6 || st.ClaimsLost != 0 || !st.PeerClaimed.IsZero() {
		t.Errorf("stats: %+v", st)
	}
}

// A claim another eslapp wins soon after the announcement marks the
// FreeSWITCH as shared (PeerClaimed): from then on claims wait by load.
// The winner, which lost nothing, still claims at once.
func TestClaimLostToAPeerIsSeen(t *testing.T) {
	p := newPool(t, 0)
	var ran sync.Map
	_, slow := p.eslapp(t, esl.RunnerConfig{Bind: func() esl.Binding {
		return esl.Binding{Handler: handBack("slow", &ran, 10*time.Millisecond),
			ClaimDelay: func(*esl.Call) time.Duration { return 100 * time.Millisecond }}
	}})
	_, fast := p.eslapp(t, esl.RunnerConfig{Handler: handBack("fast", &ran, 10*time.Millisecond)})
	before := time.Now()
	c := p.call(t, 3*time.Second, nil)
	waitDone(t, c, 3*time.Second)
	if who, _ := ran.Load(c.UUID()); who != "fast" {
		t.Fatalf("call ran in %v", who)
	}
	deadline := time.Now().Add(2 * time.Second)
	for slow.Stats().ClaimsLost == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := slow.Stats(); st.ClaimsLost != 1 || st.PeerClaimed.Before(before) {
		t.Errorf("the loser's stats: %+v (want one claim lost, PeerClaimed set)", st)
	}
	if st := fast.Stats(); st.ClaimsWon != 1 || !st.PeerClaimed.IsZero() {
		t.Errorf("the winner's stats: %+v (want one claim won, no peer seen)", st)
	}
}

// While FreeSWITCH answers late (its listener thread behind eslapp's
// commands), new calls are not claimed: they go to a peer or the pick-up
// net, and the calls running there finish. Once it has caught up for
// lagMemory, calls are claimed again.
func TestClaimLeftWhileFreeSWITCHLags(t *testing.T) {
	p := newPool(t, 0)
	var ran sync.Map
	_, in := p.eslapp(t, esl.RunnerConfig{Handler: handBack("A", &ran, 10*time.Millisecond)})
	p.fs.SetInboundLag(700 * time.Millisecond) // the command timeout is 2 s: late after 1 s
	first := p.call(t, 10*time.Second, nil)
	deadline := time.Now().Add(5 * time.Second)
	for in.Stats().ClaimsWon == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// The claim's replies came 0.7 and 1.4 s after it was written: the
	// connection lags. A call announced now is left alone.
	second := p.call(t, 1*time.Second, nil)
	for in.Stats().Lagging == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	p.fs.SetInboundLag(0)
	if out := waitDone(t, second, 5*time.Second); !out.NetFired || out.TransferDest != netDest {
		t.Errorf("the call announced while FreeSWITCH lagged: %+v, want its pick-up net", out)
	}
	if out := waitDone(t, first, 10*time.Second); out.NetFired || out.TransferDest != "OnSuccess XML crm_branches" {
		t.Errorf("the call running meanwhile: %+v", out)
	}
	st := in.Stats()
	if st.ClaimsWon != 1 || st.Lagging != 1 || st.Declined != 1 {
		t.Errorf("stats: %+v (want 1 claim won, 1 call left for the lag)", st)
	}
	time.Sleep(2500 * time.Millisecond) // lagMemory
	third := p.call(t, 5*time.Second, nil)
	if out := waitDone(t, third, 5*time.Second); out.NetFired || out.TransferDest != "OnSuccess XML crm_branches" {
		t.Errorf("the call after FreeSWITCH caught up: %+v", out)
	}
	if who, _ := ran.Load(third.UUID()); who != "A" {
		t.Errorf("the call after FreeSWITCH caught up ran in %v", who)
	}
}
