package esl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCommandTimeout bounds each command when the configuration gives no
// other value. FreeSWITCH answers a command on the loopback in well under a
// millisecond; only a stuck or dead peer takes seconds.
const DefaultCommandTimeout = 5 * time.Second

// Session is one call on FreeSWITCH's outbound Event Socket: the connection
// FreeSWITCH opened when the dialplan ran "socket ... async full".
//
// One goroutine, the read loop, reads the connection: it matches each reply
// to the oldest command still waiting for one (FreeSWITCH answers commands
// in the order it reads them), parses each event once, and applies it to the
// call's state in the order FreeSWITCH wrote it. The call's owner, the
// goroutine that runs its flow, sends commands and selects on Context().Done(),
// Events().Ready() and the Done channels of the applications it started.
// A Session is safe for use by several goroutines.
type Session struct {
	nc         net.Conn
	fr         *FrameReader // the read loop's alone
	connected  bool         // the read loop's alone: the connect reply has been read
	log        atomic.Pointer[slog.Logger]
	cmdTimeout time.Duration
	maxFrame   int
	varFilter  VarFilter
	wire       *wireCounters
	appIDs     func() string
	remote     net.Addr

	// Set by the read loop from the connect reply, before the reply is
	// handed to the command that waits for it; read-only afterwards.
	data      *ChannelData
	expandOff bool // app_disable_expand_variables is true on the channel
	uuid      string

	// callCtx ends when the call is over for eslapp: hangup, lost
	// connection, or shutdown. connDone is closed when the read loop has
	// ended: no reply or event comes any more.
	callCtx    context.Context
	endCall    context.CancelCauseFunc
	connDone   chan struct{}
	eventQueue atomic.Pointer[Events] // nil until a test asks for events

	cmds commands

	mu         sync.Mutex
	apps       map[string]*App // started, not yet complete, by Application-UUID
	current    *App            // the application FreeSWITCH is running
	hungUp     bool
	exitSent   bool
	subscribed bool
	lingering  bool // FreeSWITCH keeps the socket after a hangup until exit
	resumed    bool // resume was accepted: closing the socket continues the dialplan

	closeOnce sync.Once
}

// sessionConfig is what the server gives each session.
type sessionConfig struct {
	commandTimeout time.Duration
	logger         *slog.Logger
	// maxConnect bounds the connect reply (the channel data); maxFrame
	// every frame after it. Zero means the defaults.
	maxConnect, maxFrame int
	// varFilter chooses the channel variables a call keeps; nil keeps all.
	varFilter VarFilter
	// wire counts the traffic (the server's counters); nil counts nothing.
	wire *wireCounters
	// appIDs names application runs; nil means shortAppIDs. Tests use it
	// to replay FreeSWITCH transcripts, whose Application-UUIDs are fixed.
	appIDs func() string
}

// shortAppIDs names a call's application runs 1, 2, 3, ... in base 36.
// FreeSWITCH echoes any Event-UUID as the Application-UUID of the app's
// events, and the call's own events are the only ones its socket gets: the
// name need only be unique within the call. A UUID would cost FreeSWITCH
// 34 header bytes more per application, read one byte at a time.
func shortAppIDs() func() string {
	var n atomic.Uint64
	return func() string { return strconv.FormatUint(n.Add(1), 36) }
}

// DefaultMaxConnect bounds the connect reply when the server is given no
// other bound: FreeSWITCH's own headers and a dialplan's variables take a
// few kilobytes.
const DefaultMaxConnect = 256 << 10

// defaultMaxFrame bounds a frame after connect: channel events carry every
// channel variable, results of 64 KiB among them, URL-encoded.
const defaultMaxFrame = 8 << 20

// newSession starts the read loop on an accepted connection, sends
// "connect" and decodes the channel data. parent is the server's context
// for calls: cancelling it ends the call (shutdown).
func newSession(parent context.Context, nc net.Conn, cfg sessionConfig) (*Session, error) {
	if cfg.commandTimeout <= 0 {
		cfg.commandTimeout = DefaultCommandTimeout
	}
	if cfg.appIDs == nil {
		cfg.appIDs = shortAppIDs()
	}
	if cfg.maxConnect <= 0 {
		cfg.maxConnect = DefaultMaxConnect
	}
	if cfg.maxFrame <= 0 {
		cfg.maxFrame = defaultMaxFrame
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.wire == nil {
		cfg.wire = &wireCounters{}
	}
	s := &Session{
		nc:         nc,
		fr:         NewFrameReader(nc),
		appIDs:     cfg.appIDs,
		cmdTimeout: cfg.commandTimeout,
		maxFrame:   cfg.maxFrame,
		varFilter:  cfg.varFilter,
		wire:       cfg.wire,
		remote:     nc.RemoteAddr(),
		apps:       make(map[string]*App),
		connDone:   make(chan struct{}),
	}
	s.cmds = commands{nc: nc, timeout: cfg.commandTimeout, wire: cfg.wire, log: s.Logger, fail: s.Close}
	s.log.Store(cfg.logger.With("remote", nc.RemoteAddr().String()))
	// Until connect completes the peer may send one thing: the connect
	// reply, a header block and no body.
	s.fr.SetLimits(cfg.maxConnect, 0)
	s.callCtx, s.endCall = context.WithCancelCause(parent)
	go s.readLoop()

	if _, err := s.send(context.Background(), "connect", "connect"); err != nil {
		s.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	return s, nil
}

// UUID is the channel's Unique-ID.
func (s *Session) UUID() string { return s.uuid }

// Data is the channel data FreeSWITCH sent on connect.
func (s *Session) Data() *ChannelData { return s.data }

// Logger logs with the call's UUID.
func (s *Session) Logger() *slog.Logger { return s.log.Load() }

// RemoteAddr is the FreeSWITCH host's address.
func (s *Session) RemoteAddr() net.Addr { return s.remote }

// Full reports whether the socket runs in "async full" mode (Control: full),
// which api, event, linger and sendevent need.
func (s *Session) Full() bool { return s.data.Header("Control") == "full" }

// Context ends when the call is over for eslapp: the caller hung up, the
// connection was lost, or eslapp is shutting down. context.Cause tells which
// (ErrHangup, ErrDisconnected, ErrShutdown).
func (s *Session) Context() context.Context { return s.callCtx }

// events is the call's event stream, in the order FreeSWITCH wrote it, from
// its first call on. The call's owner does not need it (its applications
// report their start and end, its context the hangup); tests read it to
// see what the session saw.
func (s *Session) events() *Events {
	if q := s.eventQueue.Load(); q != nil {
		return q
	}
	s.eventQueue.CompareAndSwap(nil, newEvents())
	return s.eventQueue.Load()
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
	for _, name := range extra {
		if !isEventName(name) {
			return &UnsafeValueError{Sink: "event name", Reason: fmt.Sprintf("%q is not an event name", name)}
		}
	}
	if _, err := s.send(ctx, "myevents", "myevents"); err != nil {
		return err
	}
	s.mu.Lock()
	s.subscribed = true
	s.mu.Unlock()
	if len(extra) == 0 {
		return nil
	}
	_, err := s.send(ctx, "event", "event plain "+strings.Join(extra, " "))
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
	_, err := s.send(ctx, "nixevent", "nixevent "+strings.Join(names, " "))
	return err
}

// Linger asks FreeSWITCH to keep the socket open after the caller hangs up,
// until eslapp sends exit. Without it FreeSWITCH closes the socket right
// after its disconnect notice.
func (s *Session) Linger(ctx context.Context) error {
	_, err := s.send(ctx, "linger", "linger")
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
	_, err := s.send(ctx, "resume", "resume")
	if err == nil {
		s.mu.Lock()
		s.resumed = true
		s.mu.Unlock()
	}
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
	return s.send(ctx, "api "+name, line)
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
	_, err := s.send(ctx, "sendmsg hangup", "sendmsg\ncall-command: hangup\nhangup-cause: "+cause)
	return err
}

// Exit tells FreeSWITCH that eslapp is done with the call: it answers
// "+OK bye", sends its final notice and closes the socket. The dialplan then
// continues with the action after "socket" (right away after Resume,
// otherwise once queued applications have run). After Resume, Exit just
// closes the connection: FreeSWITCH ends the socket application the same
// way on end of stream (its listener stops on a failed read; the park ends,
// queued messages run, the resume flag sends the channel on), and the exit
// command, its reply and the final notice cost it a command for nothing.
// After a hangup Exit is the only command eslapp sends, and only with
// linger: without it FreeSWITCH closes the socket itself, and Exit just
// waits for that.
func (s *Session) Exit(ctx context.Context) error {
	s.mu.Lock()
	if s.resumed && !s.hungUp {
		s.exitSent = true
		s.mu.Unlock()
		s.Close()
		return nil
	}
	// After a hangup without linger FreeSWITCH closes the socket by
	// itself: exit would only race with that.
	send := !s.hungUp || s.lingering
	s.exitSent = true
	s.mu.Unlock()
	if send {
		_, err := s.send(context.WithoutCancel(ctx), "exit", "exit")
		if err != nil && !errors.Is(err, ErrDisconnected) {
			return err
		}
	}
	// FreeSWITCH closes the socket after its final notice; wait for that
	// briefly so that no half-closed connection is left behind.
	t := time.NewTimer(s.cmdTimeout)
	defer t.Stop()
	select {
	case <-s.connDone:
	case <-t.C:
	}
	s.Close()
	return nil
}

// Close closes the connection without a word to FreeSWITCH. Commands in
// flight fail with ErrDisconnected.
func (s *Session) Close() {
	s.closeOnce.Do(func() { _ = s.nc.Close() })
	s.endCall(ErrDisconnected)
	s.failApps(ErrDisconnected)
}

// send runs one command on the call's socket (see commands.send). A
// "command not found" on a socket without "full" is ErrNotFull.
func (s *Session) send(ctx context.Context, what, cmd string) (string, error) {
	text, err := s.cmds.send(ctx, what, cmd)
	var re *ReplyError
	if errors.As(err, &re) && re.Text == "command not found" && s.data != nil && !s.Full() {
		return "", fmt.Errorf("%s: %w", what, ErrNotFull)
	}
	return text, err
}

// readLoop is the session's one reader: it runs until the stream ends or
// breaks, and then ends the call. A panic in it ends this call alone.
func (s *Session) readLoop() {
	var err error
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("esl: panic reading from FreeSWITCH: %v", p)
			s.Logger().Error("panic in the read loop; closing the call", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
		s.ended(err)
	}()
	for {
		f, rerr := s.fr.Next()
		if rerr != nil {
			err = rerr
			return
		}
		if err = s.handleFrame(&f); err != nil {
			return
		}
	}
}

// errProtocol marks a peer that broke the Event Socket protocol.
var errProtocol = errors.New("esl: protocol violation")

// handleFrame acts on one frame, in the order FreeSWITCH wrote them.
func (s *Session) handleFrame(f *Frame) error {
	if !s.connected {
		return s.connectReply(f)
	}
	switch f.ContentType {
	case contentReply:
		return s.cmds.deliver(reply{text: f.Get("Reply-Text")})
	case contentAPI:
		return s.cmds.deliver(reply{text: string(f.Body)})
	case contentEventPlain:
		s.wire.events.Add(1)
		s.wire.eventBytes.Add(uint64(len(f.Header) + len(f.Body)))
		ev, err := parseEvent(f.Body, time.Now())
		if err != nil {
			return err
		}
		s.dispatch(ev)
	case contentDisconnect:
		s.handleNotice(f.Disposition)
	default:
		// log/data, text/event-json, ...: nothing eslapp asks for.
	}
	return nil
}

// connectReply takes the first frame, which must be the reply to connect:
// the channel data. Anything else before it is a protocol violation.
func (s *Session) connectReply(f *Frame) error {
	if f.ContentType != contentReply || f.ContentLength != 0 {
		return fmt.Errorf("%w: %q before the connect reply", errProtocol, f.ContentType)
	}
	data, err := parseChannelData(f.Header, s.varFilter, false, contentReply)
	if err != nil {
		return err
	}
	if !isChannelID(data.UUID()) {
		// eslapp puts the Unique-ID into every api command it sends: it
		// must be one plain word, as FreeSWITCH's own UUIDs are.
		return fmt.Errorf("%w: connect reply with a Unique-ID that is not one plain word: %.60q", errProtocol, data.UUID())
	}
	s.data = data
	s.uuid = data.UUID()
	v, _ := data.Var("app_disable_expand_variables")
	s.expandOff = IsTrue(v)
	s.log.Store(s.Logger().With("call", s.uuid))
	s.fr.SetLimits(s.maxFrame, s.maxFrame)
	s.connected = true
	return s.cmds.deliver(reply{text: "+OK"})
}

// ended runs once, when the read loop stops: commands waiting for a reply
// fail, and the call ends with the events read before the end applied.
func (s *Session) ended(err error) {
	s.cmds.shut()
	close(s.connDone)
	if err != nil {
		s.Logger().Debug("connection ended", "err", err)
	}
	s.Close()
}

// handleNotice acts on a disconnect notice. One FreeSWITCH sends after exit
// is expected; any other means the caller hung up.
func (s *Session) handleNotice(disposition string) {
	s.mu.Lock()
	expected := s.exitSent
	s.hungUp = s.hungUp || !expected
	s.mu.Unlock()
	if expected {
		s.Logger().Debug("disconnect notice after exit", "disposition", disposition)
		return
	}
	s.Logger().Debug("disconnect notice", "disposition", disposition)
	s.endCall(fmt.Errorf("%w (disconnect notice, %s)", ErrHangup, disposition))
	s.failApps(ErrHangup)
}

// dispatch applies an event to the call's state and queues it for the
// owner. It runs on the read loop and never blocks.
func (s *Session) dispatch(ev Event) {
	if ev.UniqueID != "" && ev.UniqueID != s.uuid {
		// Another channel's event: only possible before myevents.
		return
	}
	hangup := false
	var done *App
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
			done = a
		}
	case "CHANNEL_HANGUP":
		hangup = !s.hungUp
		s.hungUp = true
	}
	hungUp := s.hungUp
	s.mu.Unlock()
	if done != nil {
		var err error
		if hungUp {
			err = ErrHangup
		}
		done.complete(ev.AppResponse, ev.Received, err)
	}
	if hangup {
		s.endCall(fmt.Errorf("%w (%s)", ErrHangup, ev.HangupCause))
		s.failQueuedApps(ErrHangup)
	}
	if q := s.eventQueue.Load(); q != nil {
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
	text, err := s.send(ctx, "sendevent", msg)
	if err != nil {
		return "", err
	}
	id, _ := strings.CutPrefix(text, "+OK")
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
	last, err := s.StartSetVars(ctx, vars, DefaultWithin)
	if err != nil || last == nil {
		return err
	}
	_, err = last.Wait(ctx)
	return err
}

// StartSetVars queues what SetVars does and returns the last application
// queued (nil when vars is empty): applications run in order, so its end
// means all have run. Each must end within the given bound.
func (s *Session) StartSetVars(ctx context.Context, vars []Var, within time.Duration) (*App, error) {
	arg, rest, err := MultisetArg(vars)
	if err != nil {
		return nil, err
	}
	var last *App
	if arg.s != "" {
		if last, err = s.Start(ctx, "multiset", arg, ExecOptions{Within: within}); err != nil {
			return nil, err
		}
	}
	for _, v := range rest {
		a, err := SetArg(v.Name, v.Value)
		if err != nil {
			return nil, err
		}
		if last, err = s.Start(ctx, "set", a, ExecOptions{Within: within}); err != nil {
			return nil, err
		}
	}
	return last, nil
}
