package esl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/percipia/eslgo"
	"github.com/percipia/eslgo/command"
)

// DefaultCommandTimeout bounds each command when the configuration gives no
// other value. FreeSWITCH answers a command on the loopback in well under a
// millisecond; only a stuck or dead peer takes seconds.
const DefaultCommandTimeout = 5 * time.Second

// Session is one call on FreeSWITCH's outbound Event Socket: the connection
// FreeSWITCH opened when the dialplan ran "socket ... async full".
//
// A Session is safe for use by several goroutines, but a call is meant to be
// owned by one: the one that runs its flow, selecting on Context().Done(),
// Events().Ready() and the Done channel of the applications it started.
type Session struct {
	conn       *eslgo.Conn
	wire       *wireConn
	log        *slog.Logger
	cmdTimeout time.Duration
	appIDs     func() string
	data       *ChannelData
	expandOff  bool // app_disable_expand_variables is true on the channel
	uuid       string
	remote     net.Addr

	// callCtx ends when the call is over for eslapp: hangup, lost
	// connection, or shutdown. connCtx ends when the connection is closed;
	// commands in flight are abandoned then.
	callCtx    context.Context
	endCall    context.CancelCauseFunc
	connCtx    context.Context
	closeConn  context.CancelCauseFunc
	connectErr error
	events     atomic.Pointer[Events] // nil until the owner asks for events
	seq        sequencer
	closeOnce  sync.Once

	mu         sync.Mutex
	apps       map[string]*App // started, not yet complete, by Application-UUID
	current    *App            // the application FreeSWITCH is running
	hungUp     bool
	exitSent   bool
	subscribed bool
	lingering  bool // FreeSWITCH keeps the socket after a hangup until exit
}

// sessionConfig is what the server gives each session.
type sessionConfig struct {
	commandTimeout time.Duration
	logger         *slog.Logger
	// appIDs names application runs; nil means random UUIDs. Tests use it
	// to replay FreeSWITCH transcripts, whose Application-UUIDs are fixed.
	appIDs func() string
}

// newSession wraps an accepted connection, sends "connect" and decodes the
// channel data. parent is the server's context for calls: cancelling it ends
// the call (shutdown).
func newSession(parent context.Context, nc net.Conn, cfg sessionConfig) (*Session, error) {
	if cfg.commandTimeout <= 0 {
		cfg.commandTimeout = DefaultCommandTimeout
	}
	if cfg.appIDs == nil {
		cfg.appIDs = uuid.NewString
	}
	s := &Session{
		appIDs:     cfg.appIDs,
		cmdTimeout: cfg.commandTimeout,
		log:        cfg.logger.With("remote", nc.RemoteAddr().String()),
		remote:     nc.RemoteAddr(),
		apps:       make(map[string]*App),
	}
	s.callCtx, s.endCall = context.WithCancelCause(parent)
	s.connCtx, s.closeConn = context.WithCancelCause(context.Background())
	s.wire = newWireConn(nc, s)
	s.seq.handed = &s.wire.eventsHanded
	s.seq.release = s.dispatch
	s.conn = eslgoNewConn(s.wire, true, eslgo.Options{
		Context: context.Background(),
		Logger:  eslgoLogger{s},
	})
	s.conn.RegisterEventListener(eslgo.EventListenAll, s.onEvent)

	if _, err := s.send(context.Background(), "connect", rawCommand("connect")); err != nil {
		s.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	// wireConn saw the reply's header block before eslgo did, and
	// connectBlock decoded it on eslgo's reader goroutine; the reply reaching
	// SendCommand orders that before this point.
	if s.data == nil {
		s.Close()
		return nil, fmt.Errorf("connect reply: %w", s.connectErr)
	}
	return s, nil
}

// UUID is the channel's Unique-ID.
func (s *Session) UUID() string { return s.uuid }

// Data is the channel data FreeSWITCH sent on connect.
func (s *Session) Data() *ChannelData { return s.data }

// Logger logs with the call's UUID.
func (s *Session) Logger() *slog.Logger { return s.log }

// RemoteAddr is the FreeSWITCH host's address.
func (s *Session) RemoteAddr() net.Addr { return s.remote }

// Full reports whether the socket runs in "async full" mode (Control: full),
// which api, event, linger and sendevent need.
func (s *Session) Full() bool { return s.data.Header("Control") == "full" }

// Context ends when the call is over for eslapp: the caller hung up, the
// connection was lost, or eslapp is shutting down. context.Cause tells which
// (ErrHangup, ErrDisconnected, ErrShutdown).
func (s *Session) Context() context.Context { return s.callCtx }

// Events is the call's event stream, in Event-Sequence order, from the
// first call of Events on: a call's owner that does not read events does not
// keep them.
func (s *Session) Events() *Events {
	if q := s.events.Load(); q != nil {
		return q
	}
	s.events.CompareAndSwap(nil, newEvents())
	return s.events.Load()
}

// HungUp reports whether the caller's channel is gone.
func (s *Session) HungUp() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hungUp
}

// Subscribe asks for the call's own events (myevents) and, in addition, for
// the named events (event plain NAMES), which myevents does not include:
// PLAYBACK_START and PLAYBACK_STOP for instance. After myevents FreeSWITCH
// sends only events about this channel, whatever their name.
func (s *Session) Subscribe(ctx context.Context, extra ...string) error {
	if _, err := s.send(ctx, "myevents", rawCommand("myevents")); err != nil {
		return err
	}
	s.mu.Lock()
	s.subscribed = true
	s.mu.Unlock()
	if len(extra) == 0 {
		return nil
	}
	for _, name := range extra {
		if !isEventName(name) {
			return &UnsafeValueError{Sink: "event name", Reason: fmt.Sprintf("%q is not an event name", name)}
		}
	}
	_, err := s.send(ctx, "event", rawCommand("event plain "+strings.Join(extra, " ")))
	return err
}

// Unsubscribe stops the named events (nixevent), for instance channel
// events that myevents subscribes but the call's owner does not use: every
// event costs FreeSWITCH a serialisation of all channel variables.
func (s *Session) Unsubscribe(ctx context.Context, names ...string) error {
	for _, name := range names {
		if !isEventName(name) {
			return &UnsafeValueError{Sink: "event name", Reason: fmt.Sprintf("%q is not an event name", name)}
		}
	}
	_, err := s.send(ctx, "nixevent", rawCommand("nixevent "+strings.Join(names, " ")))
	return err
}

// Linger asks FreeSWITCH to keep the socket open after the caller hangs up,
// until eslapp sends exit. Without it FreeSWITCH closes the socket right
// after its disconnect notice.
func (s *Session) Linger(ctx context.Context) error {
	_, err := s.send(ctx, "linger", rawCommand("linger"))
	if err == nil {
		s.mu.Lock()
		s.lingering = true
		s.mu.Unlock()
	}
	return err
}

// Resume makes FreeSWITCH continue the dialplan after the socket application
// once the socket closes, cutting short whatever plays (BRIEF §6, s7).
func (s *Session) Resume(ctx context.Context) error {
	_, err := s.send(ctx, "resume", rawCommand("resume"))
	return err
}

// API runs a FreeSWITCH API command ("api NAME ARGS") and returns its output.
// An output that starts with "-ERR" is returned as a *ReplyError.
func (s *Session) API(ctx context.Context, name string, args APIArgs) (string, error) {
	if !isAPIName(name) {
		return "", &UnsafeValueError{Sink: "api command name", Reason: fmt.Sprintf("%q is not a command name", name)}
	}
	line := "api " + name
	if args.s != "" {
		line += " " + args.s
	}
	reply, err := s.send(ctx, "api "+name, rawCommand(line))
	if err != nil {
		return "", err
	}
	return string(reply.Body), nil
}

// Break stops what the call is playing (api uuid_break). With all, apps
// queued behind it are dropped as well, without events (BRIEF §6).
func (s *Session) Break(ctx context.Context, all bool) error {
	args := APIArg(s.uuid)
	if all {
		args = APIArgsOf(s.uuid, "all")
	}
	_, err := s.API(ctx, "uuid_break", args)
	return err
}

// Hangup ends the call with a hangup cause such as NORMAL_CLEARING. It is
// sent as a hangup call-command, which FreeSWITCH acts on at once rather
// than after the applications queued before it.
func (s *Session) Hangup(ctx context.Context, cause string) error {
	if cause == "" {
		cause = "NORMAL_CLEARING"
	}
	if !isHangupCause(cause) {
		return &UnsafeValueError{Sink: "hangup cause", Reason: fmt.Sprintf("%q is not a hangup cause", cause)}
	}
	msg := "sendmsg\r\ncall-command: hangup\r\nhangup-cause: " + cause
	_, err := s.send(ctx, "sendmsg hangup", rawCommand(msg))
	return err
}

// Exit tells FreeSWITCH that eslapp is done with the call: it answers
// "+OK bye", sends its final notice and closes the socket. The dialplan then
// continues with the action after "socket" (right away after Resume,
// otherwise once queued applications have run). After a hangup Exit is the
// only command eslapp sends, and only with linger: without it FreeSWITCH
// closes the socket itself, and Exit just waits for that.
func (s *Session) Exit(ctx context.Context) error {
	s.mu.Lock()
	// After a hangup without linger FreeSWITCH closes the socket by
	// itself: exit would only race with that.
	send := !s.hungUp || s.lingering
	s.exitSent = true
	s.mu.Unlock()
	if send {
		ctx = context.WithoutCancel(ctx)
		_, err := s.send(ctx, "exit", rawCommand("exit"))
		if err != nil && !errors.Is(err, ErrDisconnected) {
			return err
		}
	}
	// FreeSWITCH closes the socket after its final notice; wait for that
	// briefly so that no half-closed connection is left behind.
	t := time.NewTimer(s.cmdTimeout)
	defer t.Stop()
	select {
	case <-s.connCtx.Done():
		// The stream has ended (FreeSWITCH closed it, or eslapp did):
		// let the events read before the end reach Events.
		s.seq.drain()
	case <-t.C:
	}
	s.Close()
	return nil
}

// Close closes the connection without a word to FreeSWITCH. Commands in
// flight fail with ErrDisconnected.
func (s *Session) Close() {
	s.closeTransport()
	s.endCall(ErrDisconnected)
	s.failApps(ErrDisconnected)
}

// closeTransport closes the connection and eslgo's side of it. The events
// read before still reach Events.
func (s *Session) closeTransport() {
	s.closeOnce.Do(func() {
		s.closeConn(ErrDisconnected)
		s.conn.Close()
		s.seq.stop()
	})
}

// send writes one command and waits for its reply, within the command
// timeout. A reply starting with -ERR is returned as a *ReplyError.
//
// When no reply comes in time the connection is closed: eslgo matches
// replies to commands by order alone, so the late reply would be taken as
// the answer to the next command.
func (s *Session) send(ctx context.Context, what string, cmd command.Command) (*eslgo.RawResponse, error) {
	if err := context.Cause(s.connCtx); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	cctx, cancel := context.WithTimeoutCause(ctx, s.cmdTimeout, ErrCommandTimeout)
	defer cancel()
	stop := context.AfterFunc(s.connCtx, cancel)
	defer stop()

	reply, err := s.conn.SendCommand(cctx, cmd)
	if err != nil {
		if connErr := context.Cause(s.connCtx); connErr != nil {
			return nil, fmt.Errorf("%s: %w", what, connErr)
		}
		cause := context.Cause(cctx)
		if cause == nil {
			// A write error or eslgo's "connection closed".
			s.log.Debug("command failed", "command", what, "err", err)
			s.Close()
			return nil, fmt.Errorf("%s: %w: %v", what, ErrDisconnected, err)
		}
		s.log.Warn("command got no reply, closing the connection", "command", what, "cause", cause)
		s.Close()
		if errors.Is(cause, ErrCommandTimeout) {
			return nil, fmt.Errorf("%s: %w after %s", what, ErrCommandTimeout, s.cmdTimeout)
		}
		return nil, fmt.Errorf("%s: %w", what, cause)
	}
	if text, ok := strings.CutPrefix(reply.GetReply(), "-ERR"); ok {
		text = strings.TrimSpace(text)
		if text == "command not found" && !s.Full() {
			return nil, fmt.Errorf("%s: %w", what, ErrNotFull)
		}
		return nil, &ReplyError{Command: what, Text: text}
	}
	return reply, nil
}

// rawCommand is a command line, or a command with headers, exactly as eslapp
// builds it. eslgo appends the blank line that ends it.
type rawCommand string

func (c rawCommand) BuildMessage() string { return string(c) }

// onEvent receives events from eslgo, each on a goroutine of its own: a
// panic there would end the process, so it ends this call alone.
func (s *Session) onEvent(ev *eslgo.Event) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic handling an event; closing the call", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			s.Close()
		}
	}()
	s.seq.add(ev)
}

// The wireObserver side of the session.

// connectBlock decodes the channel data. It runs on eslgo's reader
// goroutine, before any event: everything that reads s.data, s.uuid and
// s.log afterwards is ordered after it.
func (s *Session) connectBlock(block []byte) {
	data, err := ParseChannelData(block)
	if err != nil {
		s.connectErr = err
		return
	}
	s.data = data
	s.uuid = data.UUID()
	v, _ := data.Var("app_disable_expand_variables")
	s.expandOff = IsTrue(v)
	s.log = s.log.With("call", s.uuid)
}

func (s *Session) notice(disposition string) {
	s.seq.at(func() { s.handleNotice(disposition) })
}

// handleNotice runs in stream order (see sequencer.at): a notice that
// follows the hangup events is handled after them, so the application that
// was running gets its own completion first.
func (s *Session) handleNotice(disposition string) {
	s.mu.Lock()
	expected := s.exitSent
	s.hungUp = s.hungUp || !expected
	s.mu.Unlock()
	if expected {
		s.log.Debug("disconnect notice after exit", "disposition", disposition)
		return
	}
	s.log.Debug("disconnect notice", "disposition", disposition)
	s.endCall(fmt.Errorf("%w (disconnect notice, %s)", ErrHangup, disposition))
	s.failApps(ErrHangup)
}

func (s *Session) closed(err error) {
	s.log.Debug("connection ended", "err", err)
	// Commands in flight cannot get a reply any more: fail them now.
	s.closeConn(ErrDisconnected)
	// eslgo still delivers the events it read before the end; the call ends
	// after them, and only then is eslgo's side closed (it does not notice
	// a read error by itself).
	s.seq.at(func() {
		s.endCall(ErrDisconnected)
		s.failApps(ErrDisconnected)
		go s.closeTransport()
	})
}

// dispatch handles events in order; the sequencer calls it with its lock
// held, so it must not block.
func (s *Session) dispatch(raw *eslgo.Event) {
	ev := newEvent(raw, time.Now())
	if ev.UniqueID != "" && s.uuid != "" && ev.UniqueID != s.uuid {
		// Another channel's event: only possible before myevents.
		return
	}
	hangup := false
	s.mu.Lock()
	switch ev.Name {
	case "CHANNEL_EXECUTE":
		if a := s.apps[ev.AppUUID]; a != nil {
			s.current = a
			a.markStarted(ev.Received)
		}
	case "PLAYBACK_START":
		if s.current != nil {
			s.current.setPlayback(ev.Received, "")
		}
	case "PLAYBACK_STOP":
		if s.current != nil {
			s.current.setPlayback(ev.Received, ev.PlaybackStatus)
		}
	case "CHANNEL_EXECUTE_COMPLETE":
		if a := s.apps[ev.AppUUID]; a != nil {
			delete(s.apps, ev.AppUUID)
			if s.current == a {
				s.current = nil
			}
			var err error
			if s.hungUp {
				err = ErrHangup
			}
			a.complete(ev.AppResponse, ev.Received, err)
		}
	case "CHANNEL_HANGUP":
		hangup = !s.hungUp
		s.hungUp = true
	}
	s.mu.Unlock()
	if hangup {
		s.endCall(fmt.Errorf("%w (%s)", ErrHangup, ev.HangupCause))
		s.failQueuedApps(ErrHangup)
	}
	if q := s.events.Load(); q != nil {
		q.push(ev)
	}
}

// failApps ends every application still waited for.
func (s *Session) failApps(err error) {
	s.mu.Lock()
	apps := s.apps
	s.apps = make(map[string]*App)
	s.current = nil
	s.mu.Unlock()
	now := time.Now()
	for _, a := range apps {
		a.complete("", now, err)
	}
}

// failQueuedApps ends the applications that had not started when the call
// hung up: FreeSWITCH drops them without an event. The running one still
// gets its CHANNEL_EXECUTE_COMPLETE.
func (s *Session) failQueuedApps(err error) {
	s.mu.Lock()
	var queued []*App
	for id, a := range s.apps {
		if a != s.current {
			queued = append(queued, a)
			delete(s.apps, id)
		}
	}
	s.mu.Unlock()
	now := time.Now()
	for _, a := range queued {
		a.complete("", now, err)
	}
}

// eslgoLogger sends eslgo's own messages to the call's log at debug level:
// they are about conditions the session already reports.
type eslgoLogger struct{ s *Session }

func (l eslgoLogger) Debug(format string, args ...any) { l.logf(format, args...) }
func (l eslgoLogger) Info(format string, args ...any)  { l.logf(format, args...) }
func (l eslgoLogger) Warn(format string, args ...any) {
	if strings.HasPrefix(format, "Error parsing event") {
		// eslgo dropped an event it read: the sequencer must not wait for it.
		l.s.seq.lost()
		l.s.log.Warn("eslgo could not parse an event from FreeSWITCH", "err", strings.TrimSpace(fmt.Sprint(args...)))
		return
	}
	l.logf(format, args...)
}
func (l eslgoLogger) Error(format string, args ...any) { l.logf(format, args...) }

func (l eslgoLogger) logf(format string, args ...any) {
	if l.s.log.Enabled(context.Background(), slog.LevelDebug) {
		l.s.log.Debug("eslgo: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
	}
}

// EventHeader is one header of an event eslapp fires.
type EventHeader struct{ Name, Value string }

// SendEvent fires a CUSTOM event with the given subclass (sendevent), for
// inbound Event Socket subscribers such as agent desktops. FreeSWITCH does
// not deliver it back to this socket. It returns the Event-UUID FreeSWITCH
// gave the event.
//
// The call is named by the headers the caller passes, never by Unique-ID:
// FreeSWITCH queues an event that carries one to that channel instead of
// firing it (BRIEF §5).
func (s *Session) SendEvent(ctx context.Context, subclass string, headers []EventHeader, body []byte) (string, error) {
	msg, err := sendEventMessage(subclass, headers, body)
	if err != nil {
		return "", err
	}
	reply, err := s.send(ctx, "sendevent", rawCommand(msg))
	if err != nil {
		return "", err
	}
	id, _ := strings.CutPrefix(reply.GetReply(), "+OK")
	return strings.TrimSpace(id), nil
}

// IsTrue is FreeSWITCH's switch_true, exactly: how it reads a boolean
// variable. Session.Start relies on it to know whether FreeSWITCH expands
// an argument (app_disable_expand_variables); reading a value as true where
// FreeSWITCH does not would send outside data unescaped.
func IsTrue(v string) bool {
	switch strings.ToLower(v) {
	case "yes", "on", "true", "t", "enabled", "active", "allow":
		return true
	}
	// switch_is_number: one optional sign, then digits and dots.
	p := v
	if p != "" && (p[0] == '+' || p[0] == '-') {
		p = p[1:]
	}
	if p == "" {
		return false
	}
	for i := range len(p) {
		if p[i] != '.' && (p[i] < '0' || p[i] > '9') {
			return false
		}
	}
	// atoi: strtol saturates at the range of long, and the cast to int keeps
	// the low 32 bits.
	neg := v[0] == '-'
	var n int64
	for i := len(v) - len(p); i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		d := int64(v[i] - '0')
		switch {
		case neg && n < (math.MinInt64+d)/10:
			n = math.MinInt64
		case !neg && n > (math.MaxInt64-d)/10:
			n = math.MaxInt64
		case neg:
			n = n*10 - d
		default:
			n = n*10 + d
		}
	}
	return int32(n) != 0
}

// SetVar stores a channel variable with any value (quotes, newlines, JSON,
// ${...}), verbatim, and waits until FreeSWITCH has run the set. See SetArg.
func (s *Session) SetVar(ctx context.Context, name, value string) error {
	arg, err := SetArg(name, value)
	if err != nil {
		return err
	}
	_, err = s.Execute(ctx, "set", arg)
	return err
}

// Transfer sends the call to another extension ("transfer EXT DIALPLAN
// CONTEXT") and waits until FreeSWITCH has run the transfer. The socket
// stays attached to the call in its new extension (transcript s2) until
// eslapp sends exit. dialplan "" means XML.
func (s *Session) Transfer(ctx context.Context, extension, dialplan, context string) error {
	arg, err := TransferArg(extension, dialplan, context)
	if err != nil {
		return err
	}
	_, err = s.Execute(ctx, "transfer", arg)
	return err
}

// SetVars stores several channel variables, verbatim, with as few
// applications as possible (one multiset, see MultisetArg), and waits until
// FreeSWITCH has run them all. An empty value unsets the variable.
func (s *Session) SetVars(ctx context.Context, vars []Var) error {
	last, err := s.StartSetVars(ctx, vars)
	if err != nil || last == nil {
		return err
	}
	_, err = last.Wait(ctx)
	return err
}

// StartSetVars queues what SetVars does and returns the last application
// queued (nil when vars is empty): applications run in order, so its end
// means all have run.
func (s *Session) StartSetVars(ctx context.Context, vars []Var) (*App, error) {
	arg, rest, err := MultisetArg(vars)
	if err != nil {
		return nil, err
	}
	var last *App
	if arg.s != "" {
		if last, err = s.Start(ctx, "multiset", arg, ExecOptions{}); err != nil {
			return nil, err
		}
	}
	for _, v := range rest {
		a, err := SetArg(v.Name, v.Value)
		if err != nil {
			return nil, err
		}
		if last, err = s.Start(ctx, "set", a, ExecOptions{}); err != nil {
			return nil, err
		}
	}
	return last, nil
}
