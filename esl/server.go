package esl

import (
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

// ServerConfig is what a Server needs; cmd/eslapp fills it from [server].
type ServerConfig struct {
	// Allow lists the networks FreeSWITCH may connect from. Connections from
	// elsewhere are closed before a byte is read. Empty means loopback only.
	Allow []netip.Prefix
	// CommandTimeout bounds each ESL command.
	CommandTimeout time.Duration
	// StopListeningOnDrain closes the listener as soon as a drain starts,
	// so that FreeSWITCH's "socket A|B" moves on to the next eslapp at
	// once. Without it the listener stays open until the drain is over
	// and new calls are handed back to the dialplan (OnError).
	StopListeningOnDrain bool
	// MaxConnectBytes bounds what a peer may send before connect
	// completes: the connect reply, which carries every channel variable
	// URL-encoded. Default DefaultMaxConnect.
	MaxConnectBytes int
	// MaxConnecting bounds the connections that have not completed
	// connect: beyond it a new connection is closed at once (FreeSWITCH's
	// socket application then returns and the dialplan goes on). Default
	// DefaultMaxConnecting.
	MaxConnecting int
	Logger        *slog.Logger
}

// DefaultListen is where the server listens when the configuration names
// no address: the loopback, for a FreeSWITCH on the same host.
const DefaultListen = "127.0.0.1:8084"

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
	Calls             uint64 // calls run by the handler
	CallsRefused      uint64 // calls handed back unrun
	CallsNetFired     uint64 // calls left alone: their pick-up net fired before eslapp took them up
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

// Server accepts FreeSWITCH's outbound socket connections, one call each,
// and hands each call to its Runner.
type Server struct {
	cfg    ServerConfig
	log    *slog.Logger
	runner *Runner

	// allow starts as cfg's and changes with SetAllow (a configuration
	// reload); it applies to connections accepted after.
	allow      atomic.Pointer[[]netip.Prefix]
	connecting atomic.Int64
	handlers   sync.WaitGroup // goroutines of accepted connections

	wire              wireCounters
	counts            callCounts
	refusedSource     atomic.Uint64
	refusedConnecting atomic.Uint64
	connectFailed     atomic.Uint64
	sourceWarn        rateLimited
	connectingWarn    rateLimited
	connectWarn       rateLimited

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*Session]struct{}
	closed    bool // close has run: a listener served from now on closes at once
}

// NewServer checks cfg and returns a server of r's calls, ready to Serve.
func NewServer(r *Runner, cfg ServerConfig) (*Server, error) {
	if r == nil {
		return nil, errors.New("esl: server without a runner")
	}
	cfg.Logger = loggerOrDiscard(cfg.Logger)
	positiveOr(&cfg.CommandTimeout, DefaultCommandTimeout)
	positiveOr(&cfg.MaxConnectBytes, DefaultMaxConnect)
	positiveOr(&cfg.MaxConnecting, DefaultMaxConnecting)
	srv := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		runner:    r,
		listeners: make(map[net.Listener]struct{}),
		sessions:  make(map[*Session]struct{}),
	}
	srv.SetAllow(cfg.Allow)
	r.add(srv)
	return srv, nil
}

// SetAllow replaces the allowed source networks (none: loopback) for the
// connections accepted from now on.
func (srv *Server) SetAllow(allow []netip.Prefix) {
	if len(allow) == 0 {
		allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")} // loopback
	}
	allow = slices.Clone(allow)
	srv.allow.Store(&allow)
}

// Stats reports what the server refused so far and what its calls
// exchanged with FreeSWITCH.
func (srv *Server) Stats() ServerStats {
	return ServerStats{
		RefusedSource:     srv.refusedSource.Load(),
		RefusedConnecting: srv.refusedConnecting.Load(),
		ConnectFailed:     srv.connectFailed.Load(),
		Connecting:        srv.connecting.Load(),
		Calls:             srv.counts.taken.Load(),
		CallsRefused:      srv.counts.refused.Load(),
		CallsNetFired:     srv.counts.lost.Load(),
		Wire:              srv.wire.stats(),
	}
}

// Serve accepts connections on ln until ln is closed (by the runner's
// Shutdown or Close, or by Close). It returns nil then.
func (srv *Server) Serve(ln net.Listener) error {
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		_ = ln.Close()
		return nil
	}
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

// handle runs one connection: connect, then the call through the runner.
func (srv *Server) handle(nc net.Conn) {
	defer srv.handlers.Done()
	b := srv.runner.bind()
	sess, err := srv.connect(nc, b.VarFilter)
	if err != nil {
		b.Release()
		srv.connectFailed.Add(1)
		srv.connectWarn.log(srv.log, "call not started: no connect reply", "remote", nc.RemoteAddr().String(), "err", err)
		_ = nc.Close()
		return
	}
	if !srv.track(sess, true) {
		sess.Close() // the server closed meanwhile
		b.Release()
		return
	}
	defer srv.track(sess, false)
	sess.Call.inbound = srv.runner.inboundFor(sess.RemoteAddr())
	srv.runner.run(sess.Call, b, &srv.counts)
}

// connect starts the session: connect and its reply. It counts as
// connecting until then, and a panic in it closes this connection alone.
func (srv *Server) connect(nc net.Conn, filter VarFilter) (sess *Session, err error) {
	defer srv.connecting.Add(-1)
	defer func() {
		if p := recover(); p != nil {
			srv.log.Error("panic starting a call", "remote", nc.RemoteAddr().String(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			sess, err = nil, fmt.Errorf("%w: panic: %v", ErrPanic, p)
		}
	}()
	return newSession(srv.runner.ctx, nc, sessionConfig{
		commandTimeout: srv.cfg.CommandTimeout,
		logger:         srv.log,
		maxConnect:     srv.cfg.MaxConnectBytes,
		varFilter:      keepPickVar(filter),
		wire:           &srv.wire,
	})
}

func (srv *Server) track(sess *Session, add bool) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if !add {
		delete(srv.sessions, sess)
		return true
	}
	if srv.closed {
		return false
	}
	srv.sessions[sess] = struct{}{}
	return true
}

// drainStarted closes the listeners at once when the configuration asks
// for it; otherwise they stay open so that FreeSWITCH is never refused a
// connection while eslapp can still hand the call back.
func (srv *Server) drainStarted() {
	if srv.cfg.StopListeningOnDrain {
		srv.log.Info("draining: no longer listening; FreeSWITCH's socket goes to the next address")
		srv.closeListeners()
	}
}

// close stops: the listeners close, the calls' sockets close under their
// handlers, and the connections' goroutines are awaited.
func (srv *Server) close() {
	srv.mu.Lock()
	srv.closed = true
	srv.mu.Unlock()
	srv.closeListeners()
	srv.closeSessions()
	srv.handlers.Wait()
}

// Close stops this server at once: its calls are ended and connections
// closed. (Runner.Shutdown drains every way in.)
func (srv *Server) Close() {
	srv.close()
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
