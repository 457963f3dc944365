package esl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Handler runs one call. ctx is the call's context (Session.Context): it ends
// on hangup, on a lost connection and at the end of a shutdown's drain. When
// Handler returns, the server sends exit (unless the call hung up and the
// socket is already gone) and closes the connection.
type Handler func(ctx context.Context, s *Session)

// RefuseFunc hands a call back to the dialplan without running it, because
// eslapp is at max_calls, is draining, or the handler panicked. why says
// which. It must return promptly; the server sends exit afterwards.
type RefuseFunc func(ctx context.Context, s *Session, why error)

// Reasons a call is refused, passed to RefuseFunc.
var (
	ErrAtCapacity = errors.New("eslapp at max_calls")
	ErrDraining   = errors.New("eslapp is shutting down")
	ErrPanic      = errors.New("eslapp failed on this call")
)

// ServerConfig is what a Server needs; cmd/eslapp fills it from [server].
type ServerConfig struct {
	// Allow lists the networks FreeSWITCH may connect from. Connections from
	// elsewhere are closed before a byte is read. Empty means loopback only.
	Allow []netip.Prefix
	// MaxCalls is how many calls run at once; the ones over it are handed
	// back to the dialplan at once. 0 means no limit.
	MaxCalls int
	// CommandTimeout bounds each ESL command.
	CommandTimeout time.Duration
	// ShutdownGrace is how long handlers get to return after their calls
	// were ended at the drain deadline, before connections are closed
	// under them. Default 2s.
	ShutdownGrace time.Duration
	// MaxConnectBytes bounds what a peer may send before connect
	// completes: the connect reply, which carries every channel variable
	// URL-encoded. Default DefaultMaxConnect.
	MaxConnectBytes int
	// MaxConnecting bounds the connections that have not completed
	// connect: beyond it a new connection is closed at once (FreeSWITCH's
	// socket application then returns and the dialplan goes on). Default
	// DefaultMaxConnecting.
	MaxConnecting int
	// VarFilter chooses the channel variables each call keeps (nil: all).
	VarFilter VarFilter
	Logger    *slog.Logger
	Handler   Handler
	// Refuse hands a refused call back; nil means Resume then exit.
	Refuse RefuseFunc
}

// DefaultMaxConnecting is the default bound on connections that have not
// completed connect. FreeSWITCH completes one in about a millisecond: only
// a storm of probes or a stuck peer fills it.
const DefaultMaxConnecting = 256

// ServerStats counts what the server refused before a call could start,
// and what its calls exchanged with FreeSWITCH: what each call costs
// FreeSWITCH is mostly the events it serialises and the command bytes it
// reads (one recv per header byte).
type ServerStats struct {
	RefusedSource     uint64 // closed: source not in Allow
	RefusedConnecting uint64 // closed: MaxConnecting connections were already connecting
	ConnectFailed     uint64 // closed: no valid connect reply in time (probes, broken peers)
	Connecting        int64  // connections connecting now
	Wire              WireStats
}

// WireStats counts the traffic of every call's connection.
type WireStats struct {
	Commands     uint64 // commands written
	CommandBytes uint64 // their bytes, headers and bodies
	Events       uint64 // events read
	EventBytes   uint64 // their frames' bytes
	Replies      uint64 // command/reply and api/response frames read
}

// wireCounters are WireStats, shared by the server's sessions.
type wireCounters struct {
	commands, commandBytes, events, eventBytes, replies atomic.Uint64
}

func (w *wireCounters) stats() WireStats {
	if w == nil {
		return WireStats{}
	}
	return WireStats{Commands: w.commands.Load(), CommandBytes: w.commandBytes.Load(),
		Events: w.events.Load(), EventBytes: w.eventBytes.Load(), Replies: w.replies.Load()}
}

// Server accepts FreeSWITCH's outbound socket connections, one call each.
type Server struct {
	cfg ServerConfig
	log *slog.Logger

	// callsCtx is the parent of every call's context; cancelling it with
	// ErrShutdown ends the calls still running at the drain deadline.
	callsCtx    context.Context
	cancelCalls context.CancelCauseFunc

	draining atomic.Bool
	active   atomic.Int64
	// allow and maxCalls start as cfg's and change with SetLimits (a
	// configuration reload); they apply to connections accepted after.
	allow      atomic.Pointer[[]netip.Prefix]
	maxCalls   atomic.Int64
	connecting atomic.Int64
	handlers   sync.WaitGroup // goroutines of accepted connections

	wire              wireCounters
	refusedSource     atomic.Uint64
	refusedConnecting atomic.Uint64
	connectFailed     atomic.Uint64
	sourceWarn        rateLimited
	connectingWarn    rateLimited
	connectWarn       rateLimited

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*Session]struct{}
	idle      chan struct{} // closed when active drops to 0 while draining
}

// NewServer checks cfg and returns a server ready to Serve.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Handler == nil {
		return nil, errors.New("esl: server without a handler")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 2 * time.Second
	}
	if cfg.MaxConnectBytes <= 0 {
		cfg.MaxConnectBytes = DefaultMaxConnect
	}
	if cfg.MaxConnecting <= 0 {
		cfg.MaxConnecting = DefaultMaxConnecting
	}
	if len(cfg.Allow) == 0 {
		cfg.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	if cfg.Refuse == nil {
		cfg.Refuse = func(ctx context.Context, s *Session, _ error) { _ = s.Resume(ctx) }
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	srv := &Server{
		cfg:         cfg,
		log:         cfg.Logger,
		callsCtx:    ctx,
		cancelCalls: cancel,
		listeners:   make(map[net.Listener]struct{}),
		sessions:    make(map[*Session]struct{}),
		idle:        make(chan struct{}),
	}
	srv.SetLimits(cfg.Allow, cfg.MaxCalls)
	return srv, nil
}

// SetLimits replaces the allowed source networks (none: loopback) and
// max_calls (0: no limit) for the connections accepted from now on.
func (srv *Server) SetLimits(allow []netip.Prefix, maxCalls int) {
	if len(allow) == 0 {
		allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	allow = slices.Clone(allow)
	srv.allow.Store(&allow)
	srv.maxCalls.Store(int64(max(maxCalls, 0)))
}

// Draining reports whether Shutdown has begun.
func (srv *Server) Draining() bool { return srv.draining.Load() }

// ActiveCalls is the number of calls being handled now.
func (srv *Server) ActiveCalls() int { return int(srv.active.Load()) }

// Stats reports what the server refused so far.
func (srv *Server) Stats() ServerStats {
	return ServerStats{
		RefusedSource:     srv.refusedSource.Load(),
		RefusedConnecting: srv.refusedConnecting.Load(),
		ConnectFailed:     srv.connectFailed.Load(),
		Connecting:        srv.connecting.Load(),
		Wire:              srv.wire.stats(),
	}
}

// Serve accepts connections on ln until ln is closed (by Close, or by
// Shutdown once the drain is over). It returns nil then.
func (srv *Server) Serve(ln net.Listener) error {
	srv.mu.Lock()
	srv.listeners[ln] = struct{}{}
	srv.mu.Unlock()
	defer func() {
		srv.mu.Lock()
		delete(srv.listeners, ln)
		srv.mu.Unlock()
	}()
	srv.log.Info("listening for FreeSWITCH", "addr", ln.Addr().String())

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporaryAccept(err) {
				// Out of descriptors and the like: wait, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				srv.log.Error("accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if !srv.allowed(nc.RemoteAddr()) {
			srv.refusedSource.Add(1)
			srv.sourceWarn.log(srv.log, "connection refused: source not in [server] allow", "remote", nc.RemoteAddr().String())
			_ = nc.Close()
			continue
		}
		if n := srv.connecting.Add(1); n > int64(srv.cfg.MaxConnecting) {
			srv.connecting.Add(-1)
			srv.refusedConnecting.Add(1)
			srv.connectingWarn.log(srv.log, "connection refused: too many connections still connecting ([server] max_connecting); the dialplan goes on after socket",
				"remote", nc.RemoteAddr().String(), "max_connecting", srv.cfg.MaxConnecting)
			_ = nc.Close()
			continue
		}
		srv.handlers.Add(1)
		go srv.handle(nc)
	}
}

func (srv *Server) allowed(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(tcp.IP)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for _, p := range *srv.allow.Load() {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// handle runs one connection: connect, then the handler or a refusal, then
// exit. A panic anywhere in it ends this call alone.
func (srv *Server) handle(nc net.Conn) {
	defer srv.handlers.Done()
	sess, err := srv.connect(nc)
	if err != nil {
		srv.connectFailed.Add(1)
		srv.connectWarn.log(srv.log, "call not started: no connect reply", "remote", nc.RemoteAddr().String(), "err", err)
		_ = nc.Close()
		return
	}
	srv.track(sess, true)
	defer srv.track(sess, false)
	defer srv.finish(sess)

	n := srv.active.Add(1)
	defer srv.callEnded()
	limit := srv.maxCalls.Load()
	switch {
	case srv.draining.Load():
		srv.refuse(sess, ErrDraining)
	case limit > 0 && n > limit:
		srv.refuse(sess, ErrAtCapacity)
	default:
		srv.run(sess)
	}
}

// connect starts the session: connect and its reply. It counts as
// connecting until then, and a panic in it closes this connection alone.
func (srv *Server) connect(nc net.Conn) (sess *Session, err error) {
	defer srv.connecting.Add(-1)
	defer func() {
		if p := recover(); p != nil {
			srv.log.Error("panic starting a call", "remote", nc.RemoteAddr().String(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			sess, err = nil, fmt.Errorf("%w: panic: %v", ErrPanic, p)
		}
	}()
	return newSession(srv.callsCtx, nc, sessionConfig{
		commandTimeout: srv.cfg.CommandTimeout,
		logger:         srv.log,
		maxConnect:     srv.cfg.MaxConnectBytes,
		varFilter:      srv.cfg.VarFilter,
		wire:           &srv.wire,
	})
}

// run calls the handler, recovering from a panic in it.
func (srv *Server) run(sess *Session) {
	defer func() {
		if p := recover(); p != nil {
			sess.Logger().Error("panic in call handler; handing the call back to the dialplan",
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			srv.refuse(sess, ErrPanic)
		}
	}()
	srv.cfg.Handler(sess.Context(), sess)
}

// refuse hands a call back to the dialplan. It uses its own deadline: the
// call's context may already be over (a panic during shutdown).
func (srv *Server) refuse(sess *Session, why error) {
	defer func() {
		if p := recover(); p != nil {
			sess.Logger().Error("panic while refusing a call", "panic", fmt.Sprint(p))
		}
	}()
	if sess.HungUp() {
		return
	}
	sess.Logger().Info("call handed back to the dialplan", "why", why.Error())
	ctx, cancel := context.WithTimeout(context.WithoutCancel(sess.Context()), 2*srv.cfg.CommandTimeout)
	defer cancel()
	srv.cfg.Refuse(ctx, sess, why)
}

// finish ends the conversation with FreeSWITCH: exit if the socket is still
// up, then close.
func (srv *Server) finish(sess *Session) {
	defer func() {
		if p := recover(); p != nil {
			sess.Logger().Error("panic while ending a call", "panic", fmt.Sprint(p))
			sess.Close()
		}
	}()
	if err := sess.Exit(context.Background()); err != nil {
		sess.Logger().Debug("exit", "err", err)
	}
	sess.Close()
}

func (srv *Server) track(sess *Session, add bool) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if add {
		srv.sessions[sess] = struct{}{}
	} else {
		delete(srv.sessions, sess)
	}
}

func (srv *Server) callEnded() {
	if srv.active.Add(-1) == 0 && srv.draining.Load() {
		srv.signalIdle()
	}
}

func (srv *Server) signalIdle() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	select {
	case <-srv.idle:
	default:
		close(srv.idle)
	}
}

// Shutdown drains the server in two stages. First it stops taking calls:
// new connections are handed back to the dialplan. It waits for active calls
// to end until ctx is done (the drain timeout); then it ends the calls left
// (their context is cancelled with ErrShutdown, and their handlers get
// ShutdownGrace to hand them back) and closes what remains. It closes the
// listeners last, so that FreeSWITCH is never refused a connection while
// eslapp can still hand the call back. It reports how many calls it had to
// end.
func (srv *Server) Shutdown(ctx context.Context) (ended int, err error) {
	srv.draining.Store(true)
	if srv.active.Load() == 0 {
		srv.signalIdle()
	}
	srv.log.Info("draining", "active_calls", srv.active.Load())
	select {
	case <-srv.idle:
	case <-ctx.Done():
		ended = int(srv.active.Load())
		srv.log.Warn("drain timeout: ending the calls left", "calls", ended)
		srv.cancelCalls(ErrShutdown)
		grace := time.NewTimer(srv.cfg.ShutdownGrace)
		select {
		case <-srv.idle:
		case <-grace.C:
			srv.closeSessions()
		}
		grace.Stop()
	}
	srv.closeListeners()
	srv.handlers.Wait()
	return ended, nil
}

// Close stops at once: calls are ended and connections closed.
func (srv *Server) Close() {
	srv.draining.Store(true)
	srv.cancelCalls(ErrShutdown)
	srv.closeListeners()
	srv.closeSessions()
	srv.handlers.Wait()
}

func (srv *Server) closeListeners() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for ln := range srv.listeners {
		_ = ln.Close()
	}
}

func (srv *Server) closeSessions() {
	srv.mu.Lock()
	sessions := make([]*Session, 0, len(srv.sessions))
	for s := range srv.sessions {
		sessions = append(sessions, s)
	}
	srv.mu.Unlock()
	for _, s := range sessions {
		s.Close()
	}
}

// isTemporaryAccept reports accept errors worth retrying (EMFILE, ENFILE,
// ECONNABORTED and friends); net reports them through the deprecated
// Temporary method only.
func isTemporaryAccept(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// rateLimited logs a warning at most once per interval, saying how many
// were left out since: a storm of refused connections must not become a
// storm of log lines.
type rateLimited struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

const warnInterval = 10 * time.Second

func (r *rateLimited) log(log *slog.Logger, msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < warnInterval {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	suppressed := r.suppressed
	r.last, r.suppressed = now, 0
	r.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "more_since_last_warning", suppressed)
	}
	log.Warn(msg, args...)
}
