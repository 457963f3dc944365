package esl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Handler runs one call. ctx is the call's context (Call.Context): it ends
// on hangup, when the call leaves eslapp's hands, on a lost connection and
// at the end of a shutdown's drain. The handler hands the call on
// (Call.HandBack, Transfer or Hangup) before it returns; then its way in
// releases it (a socket is closed, a filter deleted).
type Handler func(ctx context.Context, c *Call)

// RefuseFunc hands a call back to the dialplan without running it,
// because eslapp is at max_calls, is draining, or the handler panicked.
// why says which. It must return promptly.
type RefuseFunc func(ctx context.Context, c *Call, why error)

// Reasons a call is refused, passed to RefuseFunc.
var (
	ErrAtCapacity = errors.New("eslapp at max_calls")
	ErrDraining   = errors.New("eslapp is shutting down")
	ErrPanic      = errors.New("eslapp failed on this call")
	// ErrLagging: the FreeSWITCH that announced a contended call answers
	// eslapp's commands late (over 2 s): the call is left to
	// another eslapp or to the dialplan's pick-up net, so that the calls
	// running there finish.
	ErrLagging = errors.New("FreeSWITCH answers eslapp's commands late")
)

// Binding is what runs one call, fixed when the call arrives — before its
// channel data are read — and kept to its end, so that a configuration
// reload never changes a call midway.
type Binding struct {
	Handler Handler
	// Refuse hands a refused call back; nil means HandBack("OnError")
	// with no outputs.
	Refuse RefuseFunc
	// VarFilter chooses the channel variables the call keeps; nil keeps
	// all.
	VarFilter VarFilter
	// Release, when not nil, runs once the call is over for eslapp (or
	// never started: no valid connect reply or start event).
	Release func()
	// Bound, when not nil, bounds the call's first step: the net a
	// contended call's claim arms covers it (default DefaultFirstBound).
	Bound func(c *Call) time.Duration
	// ClaimDelay, when not nil, delays the claim of a contended call on
	// top of the load-based delay: a call this eslapp would serve badly
	// (its workflow's circuit breaker open) goes to a healthier peer.
	ClaimDelay func(c *Call) time.Duration
}

// RunnerConfig is what a Runner needs; cmd/eslapp fills it from [server].
type RunnerConfig struct {
	// Handler, Refuse and VarFilter run every call (see Binding)...
	Handler   Handler
	Refuse    RefuseFunc
	VarFilter VarFilter
	// ... unless Bind is set: it gives each call its own Binding when the
	// call arrives (the configuration current then).
	Bind func() Binding
	// MaxCalls is how many calls run at once, every way in together; the
	// ones over it are handed back at once. 0 means no limit.
	MaxCalls int
	// CommandTimeout bounds each command of a refusal, which has a
	// deadline of its own (twice this): a call refused during a shutdown
	// must still be handed back. Default DefaultCommandTimeout.
	CommandTimeout time.Duration
	// ShutdownGrace is how long handlers get to hand their calls back
	// after the calls were ended at the drain deadline, before the
	// connections are closed under them. Default 2 s.
	ShutdownGrace time.Duration
	// ClaimStagger delays the claim of a contended call by this much per
	// call running now, up to MaxClaimDelay, once another eslapp has won
	// a claim on the call's FreeSWITCH within PeerWindow: of several
	// eslapps that hear a call, the least loaded claims first, so that
	// they share the load (whichever hears first would win every call
	// otherwise). Alone, the claim waits a random part of one
	// ClaimStagger only. Defaults DefaultClaimStagger and
	// DefaultMaxClaimDelay; negative: none.
	ClaimStagger  time.Duration
	MaxClaimDelay time.Duration
	Logger        *slog.Logger
}

// Defaults of the claim delay. FreeSWITCH writes an idle inbound
// connection's events when its listener thread next wakes, and that
// thread sleeps up to 20 ms in poll when nothing arrives on the socket
// (mod_event_socket's read_packet): one eslapp hears announcements a few
// milliseconds before another, steadily, and 1 ms per call let it take
// two calls in three at low load (5 ms: an even share; measured on the
// pool, BENCHMARKS.md). Calls wait with hold music playing, and the
// pick-up net gives eslapps at least a second to claim.
const (
	DefaultClaimStagger  = 5 * time.Millisecond
	DefaultMaxClaimDelay = 250 * time.Millisecond
)

// Runner runs the calls of every way in — the outbound socket server and
// the inbound connections — with one life cycle: admission (max_calls,
// draining), the claim, the handler or a refusal, panic recovery, the
// release, and a two-stage drain at shutdown. One Runner serves a
// process's ways in together, so that max_calls and the drain count every
// call once, however it came.
type Runner struct {
	cfg RunnerConfig
	log *slog.Logger

	// ctx is the parent of every call's context; cancelling it with
	// ErrShutdown ends the calls still running at the drain deadline.
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	maxCalls int
	active   int
	// contending counts the contended calls admitted and not yet claimed
	// or lost: they are not load yet (most are lost to a peer).
	contending int
	draining   bool
	idle       chan struct{} // closed once draining with no call left
	entries    []entry

	taken, refused atomic.Uint64
}

// entry is a way in, as the Runner drives it.
type entry interface {
	// drainStarted: the runner refuses new calls from now on.
	drainStarted()
	// close stops taking calls, closes the entry's connections and
	// waits for its goroutines.
	close()
}

// NewRunner checks cfg and returns a Runner; ways in are added with
// NewServer and NewInbound.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if cfg.Handler == nil && cfg.Bind == nil {
		return nil, errors.New("esl: runner without a handler")
	}
	cfg.Logger = loggerOrDiscard(cfg.Logger)
	positiveOr(&cfg.CommandTimeout, DefaultCommandTimeout)
	positiveOr(&cfg.ShutdownGrace, 2*time.Second)
	if cfg.ClaimStagger == 0 {
		cfg.ClaimStagger = DefaultClaimStagger
	}
	if cfg.MaxClaimDelay == 0 {
		cfg.MaxClaimDelay = DefaultMaxClaimDelay
	}
	r := &Runner{cfg: cfg, log: cfg.Logger, idle: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancelCause(context.Background())
	r.SetMaxCalls(cfg.MaxCalls)
	return r, nil
}

// SetMaxCalls replaces max_calls (0: no limit) for the calls that come
// from now on.
func (r *Runner) SetMaxCalls(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.maxCalls = max(n, 0)
}

// RunnerStats counts the calls of every way in.
type RunnerStats struct {
	Active  int    // running now (refusals included)
	Taken   uint64 // run by the handler
	Refused uint64 // handed back unrun
}

// Stats reports the calls.
func (r *Runner) Stats() RunnerStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return RunnerStats{Active: r.active, Taken: r.taken.Load(), Refused: r.refused.Load()}
}

// Draining reports whether Shutdown has begun.
func (r *Runner) Draining() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.draining
}

// bind fixes what runs a call that arrives now.
func (r *Runner) bind() Binding {
	b := Binding{Handler: r.cfg.Handler, Refuse: r.cfg.Refuse, VarFilter: r.cfg.VarFilter}
	if r.cfg.Bind != nil {
		b = r.cfg.Bind()
	}
	if b.Refuse == nil {
		b.Refuse = func(ctx context.Context, c *Call, _ error) { _ = c.HandBack(ctx, "OnError") }
	}
	if b.Release == nil {
		b.Release = func() {}
	}
	if b.Bound == nil {
		b.Bound = func(*Call) time.Duration { return DefaultFirstBound }
	}
	return b
}

func (r *Runner) add(e entry) {
	r.mu.Lock()
	r.entries = append(r.entries, e)
	draining := r.draining
	r.mu.Unlock()
	if draining {
		e.drainStarted()
	}
}

// inboundFor is the inbound connection to the FreeSWITCH at addr: the one
// whose address names that IP, or the only one there is.
func (r *Runner) inboundFor(addr net.Addr) *Inbound {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ins []*Inbound
	for _, e := range r.entries {
		if in, ok := e.(*Inbound); ok {
			ins = append(ins, in)
		}
	}
	if tcp, ok := addr.(*net.TCPAddr); ok {
		for _, in := range ins {
			if host, _, err := net.SplitHostPort(in.cfg.Address); err == nil {
				if ip := net.ParseIP(host); ip != nil && ip.Equal(tcp.IP) {
					return in
				}
			}
		}
	}
	if len(ins) == 1 {
		return ins[0]
	}
	return nil
}

// admit counts a call in and says why it must be refused (nil: run it).
// Refused calls count too while they are handed back: the drain waits for
// them.
func (r *Runner) admit() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active++
	switch {
	case r.draining:
		return ErrDraining
	case r.maxCalls > 0 && r.active > r.maxCalls:
		return ErrAtCapacity
	}
	return nil
}

func (r *Runner) callEnded() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active--
	if r.active == 0 && r.draining {
		r.signalIdle()
	}
}

// signalIdle closes idle once; r.mu held.
func (r *Runner) signalIdle() {
	select {
	case <-r.idle:
	default:
		close(r.idle)
	}
}

// callCounts are a way in's own counts of the calls it brought.
type callCounts struct {
	taken, refused atomic.Uint64
	// Contended calls: claims won and lost, calls not claimed at all
	// (draining, max_calls: left to a peer or the pick-up net), and nets
	// found fired.
	won, lost, declined, netsFired atomic.Uint64
	// lagging counts the declined calls whose FreeSWITCH lagged.
	lagging atomic.Uint64
}

// run runs one call to its end, on the caller's goroutine, with the
// binding it got when it arrived: admission, the claim, the handler (or
// the refusal), then the leg's release and the binding's. counts, when
// not nil, are the way in's own.
func (r *Runner) run(c *Call, b Binding, counts *callCounts) {
	defer b.Release()
	defer r.callEnded()
	defer c.leg.release(c)
	why := r.admit()
	settle := func() {}
	if c.leg.isContended() {
		// Other eslapps hear this call too: one that cannot run it does
		// not claim it (a peer does, or the pick-up net routes it), and
		// one that can waits its turn. Nor does one whose FreeSWITCH has
		// fallen behind its commands: another claim would add to the
		// backlog that makes the calls running there late.
		if why == nil && c.leg.lagging() {
			why = ErrLagging
			if counts != nil {
				counts.lagging.Add(1)
			}
		}
		if why == nil {
			settle = r.contend()
			defer settle()
			why = r.waitClaimTurn(c, b)
		}
		if why != nil {
			if counts != nil {
				counts.declined.Add(1)
			}
			c.log.Debug("call not claimed: left to another eslapp or the dialplan's pick-up net", "why", why.Error())
			return
		}
	}
	c.firstBound = b.Bound(c)
	// A refused call is handed back even when eslapp is shutting down
	// (its context may be cancelled then): with a deadline of its own.
	ctx := c.ctx
	if why != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(c.ctx), 2*r.cfg.CommandTimeout)
		defer cancel()
	}
	err := c.claim(ctx)
	settle()
	if err != nil {
		if errors.Is(err, ErrClaimLost) {
			if counts != nil {
				counts.lost.Add(1)
			}
			c.log.Debug("call not taken: claimed by another eslapp, or its pick-up net fired")
			return
		}
		c.log.Warn("call not taken: claiming it failed", "err", err)
		return
	}
	if why != nil {
		r.refused.Add(1)
		if counts != nil {
			counts.refused.Add(1)
		}
		r.refuse(c, b, why)
		return
	}
	r.taken.Add(1)
	if counts != nil {
		counts.taken.Add(1)
	}
	r.handle(c, b)
}

// contend counts a contended call until its claim is settled (won, lost
// or not made): settle, idempotent, ends that.
func (r *Runner) contend() (settle func()) {
	r.mu.Lock()
	r.contending++
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.contending--
			r.mu.Unlock()
		})
	}
}

// waitClaimTurn waits before claiming a contended call: a random part of
// one ClaimStagger, so that eslapps equally loaded do not leave every tie
// to whichever hears the event first; ClaimStagger per call running here
// (the least loaded eslapp claims first) when another eslapp has lately
// won a claim on the call's way in; and what the binding asks. Alone, an
// eslapp does not wait by load: at 50 calls running it would hold every
// caller 250 ms longer in the music for nothing, and the first claim a
// peer wins (the random part lets a newcomer win ties) turns the wait
// back on. A drain or a shutdown that starts meanwhile declines the call
// (the error says why).
func (r *Runner) waitClaimTurn(c *Call, b Binding) error {
	r.mu.Lock()
	running := r.active - r.contending // this call is in both
	r.mu.Unlock()
	var d time.Duration
	if r.cfg.ClaimStagger > 0 {
		d = rand.N(r.cfg.ClaimStagger)
		if c.leg.peersClaiming() {
			d = min(time.Duration(running)*r.cfg.ClaimStagger+d, r.cfg.MaxClaimDelay)
		}
	}
	if b.ClaimDelay != nil {
		d += b.ClaimDelay(c)
	}
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.ctx.Done():
			return context.Cause(c.ctx)
		}
	}
	if r.Draining() {
		return ErrDraining
	}
	return nil
}

// handle calls the handler, recovering from a panic in it: a panic ends
// this call alone, handed back to the dialplan.
func (r *Runner) handle(c *Call, b Binding) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("panic in call handler; handing the call back to the dialplan",
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			r.refuse(c, b, ErrPanic)
		}
	}()
	b.Handler(c.ctx, c)
}

// refuse hands a call back to the dialplan unrun, unless it is gone or
// already handed on. It uses its own deadline: the call's context may
// already be over (a panic during shutdown).
func (r *Runner) refuse(c *Call, b Binding, why error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("panic while refusing a call", "panic", fmt.Sprint(p))
		}
	}()
	if c.HungUp() || c.Left() {
		return
	}
	c.log.Info("call handed back to the dialplan", "why", why.Error())
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), 2*r.cfg.CommandTimeout)
	defer cancel()
	b.Refuse(ctx, c, why)
}

// Shutdown drains in two stages. First it stops taking calls: each way in
// hands new ones back (a Server with StopListeningOnDrain stops listening
// instead, so that FreeSWITCH tries its next host). It waits for the
// running calls to end until ctx is done (the drain timeout); then it ends
// the calls left (their context ends with ErrShutdown, and their handlers
// get ShutdownGrace to hand them back). Last it closes every way in. It
// reports how many calls it had to end.
func (r *Runner) Shutdown(ctx context.Context) (ended int) {
	r.mu.Lock()
	r.draining = true
	if r.active == 0 {
		r.signalIdle()
	}
	active, entries := r.active, r.entries
	r.mu.Unlock()
	for _, e := range entries {
		e.drainStarted()
	}
	r.log.Info("draining", "active_calls", active)
	select {
	case <-r.idle:
	case <-ctx.Done():
		r.mu.Lock()
		ended = r.active
		r.mu.Unlock()
		r.log.Warn("drain timeout: ending the calls left", "calls", ended)
		r.cancel(ErrShutdown)
		grace := time.NewTimer(r.cfg.ShutdownGrace)
		select {
		case <-r.idle:
		case <-grace.C:
		}
		grace.Stop()
	}
	for _, e := range entries {
		e.close()
	}
	return ended
}

// Close stops at once: calls are ended and connections closed.
func (r *Runner) Close() {
	r.mu.Lock()
	r.draining = true
	entries := r.entries
	r.mu.Unlock()
	r.cancel(ErrShutdown)
	for _, e := range entries {
		e.close()
	}
}
