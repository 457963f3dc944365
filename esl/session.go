package esl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
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

// Session is one call's own outbound Event Socket connection: the one
// FreeSWITCH opened when the dialplan ran "socket ... async full". It is
// that call's leg (how its commands reach FreeSWITCH and how it leaves:
// resume, then the socket closes), and it embeds the Call, which does the
// rest.
//
// Its read loop (conn.readLoop) reads the connect reply first — the
// channel data, from which the Call is made — then replies, the call's
// events and disconnect notices. A Session is safe for use by several
// goroutines.
type Session struct {
	*Call // set by the read loop from the connect reply, before connect returns

	conn       *conn
	log        atomic.Pointer[slog.Logger]
	cmdTimeout time.Duration
	maxFrame   int
	varFilter  VarFilter
	appIDs     func() string
	remote     net.Addr
	parent     context.Context

	mu        sync.Mutex
	exitSent  bool
	lingering bool // FreeSWITCH keeps the socket after a hangup until exit
	resumed   bool // resume was accepted: closing the socket continues the dialplan
}

var _ leg = (*Session)(nil)

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
// events, and the call's own events are the only ones its socket gets (or,
// socket-less, the only ones its filter lets through): the name need only
// be unique within the call. A UUID would cost FreeSWITCH 34 header bytes
// more per application, read one byte at a time.
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
// "connect" and decodes the channel data. parent is the runner's context
// for calls: cancelling it ends the call (shutdown).
func newSession(parent context.Context, nc net.Conn, cfg sessionConfig) (*Session, error) {
	positiveOr(&cfg.commandTimeout, DefaultCommandTimeout)
	positiveOr(&cfg.maxConnect, DefaultMaxConnect)
	positiveOr(&cfg.maxFrame, defaultMaxFrame)
	cfg.logger = loggerOrDiscard(cfg.logger)
	s := &Session{
		appIDs:     cfg.appIDs,
		cmdTimeout: cfg.commandTimeout,
		maxFrame:   cfg.maxFrame,
		varFilter:  cfg.varFilter,
		remote:     nc.RemoteAddr(),
		parent:     parent,
	}
	s.log.Store(cfg.logger.With("remote", nc.RemoteAddr().String()))
	s.conn = newConn(nc, cfg.commandTimeout, cfg.wire, s.Logger)
	// Until connect completes the peer may send one thing: the connect
	// reply, a header block and no body.
	s.conn.fr.SetLimits(cfg.maxConnect, 0)
	go s.conn.readLoop(s.connectReply, s, s.readEnded)

	if _, err := s.conn.cmds.send(context.Background(), "connect", "connect"); err != nil {
		// The read loop, which may be making the Call right now, ends
		// it once the connection is closed.
		s.conn.close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	return s, nil
}

// Logger logs with the call's UUID once connected.
func (s *Session) Logger() *slog.Logger { return s.log.Load() }

// RemoteAddr is the FreeSWITCH host's address.
func (s *Session) RemoteAddr() net.Addr { return s.remote }

// connectReply takes the first frame, which must be the reply to connect:
// the channel data. Anything else before it is a protocol violation.
func (s *Session) connectReply() error {
	f, err := s.conn.fr.Next()
	if err != nil {
		return err
	}
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
	s.Call = newCall(callConfig{leg: s, data: data, log: s.Logger(), parent: s.parent, appIDs: s.appIDs})
	s.log.Store(s.Call.log)
	s.conn.fr.SetLimits(s.maxFrame, s.maxFrame)
	return s.conn.cmds.deliver(reply{text: "+OK"})
}

// event applies one of the call's events (frameHandler).
func (s *Session) event(ev Event, _ []byte) {
	if ev.UniqueID != "" && ev.UniqueID != s.uuid {
		// Another channel's event: only possible before myevents.
		return
	}
	s.dispatch(ev)
}

// notice acts on a disconnect notice (frameHandler). One FreeSWITCH sends
// after exit is expected; any other means the caller hung up.
func (s *Session) notice(f *Frame) error {
	s.mu.Lock()
	expected := s.exitSent
	s.mu.Unlock()
	if expected {
		s.Logger().Debug("disconnect notice after exit", "disposition", f.Disposition)
		return nil
	}
	s.Logger().Debug("disconnect notice", "disposition", f.Disposition)
	s.hungUpBy(fmt.Errorf("%w (disconnect notice, %s)", ErrHangup, f.Disposition))
	return nil
}

// readEnded runs once, when the read loop stops: the call ends with the
// events read before the end applied.
func (s *Session) readEnded(err error) {
	if err != nil {
		s.Logger().Debug("connection ended", "err", err)
	}
	s.Close()
}

// Close closes the connection without a word to FreeSWITCH. Commands in
// flight fail with ErrDisconnected.
func (s *Session) Close() {
	s.conn.close()
	if s.Call != nil {
		s.end(ErrDisconnected, ErrDisconnected)
	}
}

// send runs one command on the call's socket (see commands.send). A
// "command not found" on a socket without "full" is ErrNotFull.
func (s *Session) send(ctx context.Context, _ *Call, what, cmd string) (string, error) {
	text, err := s.conn.cmds.send(ctx, what, cmd)
	var re *ReplyError
	if errors.As(err, &re) && re.Text == "command not found" && s.Call != nil && !s.full() {
		return "", fmt.Errorf("%s: %w", what, ErrNotFull)
	}
	return text, err
}

// sendmsg: on the call's own socket sendmsg names no channel.
func (s *Session) sendmsg(ctx context.Context, _ *Call, what string, msg func(string) string) error {
	_, err := s.send(ctx, s.Call, what, msg(""))
	return err
}

// full reports whether the socket runs in "async full" mode (Control:
// full), which api, event, linger and sendevent need.
func (s *Session) full() bool { return s.data.Header("Control") == "full" }

// claim makes the call eslapp's and asks for its own events (myevents).
// FreeSWITCH connected to this eslapp alone, so no other eslapp contends
// for it; but an eslapp that stands still (SIGSTOP, a frozen VM) still has
// its connections accepted by the kernel, and FreeSWITCH's socket
// application waits on it in silence: so the shipped dialplan arms the
// same pick-up net before "socket" as before a socket-less announcement
// (PickVar, PickGroup), which moves the call to OnError 2 to 3.5 s later.
// eslapp's first command deletes that net: "+OK Deleted: 1" makes the call
// its; "Deleted: 0" means the net fired — the call is in OnError already,
// and an eslapp that goes on after a stall must send it nothing
// (ErrClaimLost). A dialplan without the net (PickVar unset), or a socket
// without "full" (no api), is served as before.
func (s *Session) claim(ctx context.Context, c *Call) error {
	if s.data.Header("variable_"+PickVar) != "" {
		if !s.full() {
			s.Logger().Warn("the dialplan armed a pick-up net, but the socket is not \"async full\": eslapp cannot delete it, and it will move the call to OnError", "group", PickGroup(s.uuid))
		} else {
			text, err := s.send(ctx, c, "api sched_del", "api sched_del "+PickGroup(s.uuid))
			won, err := deletedAny(result{text: text, err: err})
			if err != nil {
				return fmt.Errorf("claim: %w", err)
			}
			if !won {
				return ErrClaimLost
			}
		}
	}
	return s.Subscribe(ctx)
}

// isContended: no other eslapp hears of a socket's call.
func (s *Session) isContended() bool { return false }

// peersClaiming: no other eslapp hears of a socket's call.
func (s *Session) peersClaiming() bool { return false }

// lagging: a socket's call is never contended, so never left.
func (s *Session) lagging() bool { return false }

// arm: a socket is its own net (if eslapp dies, the socket closes and the
// dialplan goes on after "socket").
func (s *Session) arm(context.Context, *Call, time.Duration) error { return nil }

// Subscribe asks for the call's own events (myevents), unless the call is
// claimed already, and, in addition, for the named events (event plain
// NAMES), which myevents does not include: PLAYBACK_START and
// PLAYBACK_STOP for instance. After myevents FreeSWITCH sends only events
// about this channel, whatever their name.
func (s *Session) Subscribe(ctx context.Context, extra ...string) error {
	for _, name := range extra {
		if !isEventName(name) {
			return &UnsafeValueError{Sink: "event name", Reason: fmt.Sprintf("%q is not an event name", name)}
		}
	}
	s.Call.mu.Lock()
	subscribed := s.subscribed
	s.Call.mu.Unlock()
	if !subscribed {
		if _, err := s.send(ctx, s.Call, "myevents", "myevents"); err != nil {
			return err
		}
		s.Call.mu.Lock()
		s.subscribed = true
		s.Call.mu.Unlock()
	}
	if len(extra) == 0 {
		return nil
	}
	_, err := s.send(ctx, s.Call, "event", "event plain "+strings.Join(extra, " "))
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
	_, err := s.send(ctx, s.Call, "nixevent", "nixevent "+strings.Join(names, " "))
	return err
}

// Linger asks FreeSWITCH to keep the socket open after the caller hangs up,
// until eslapp sends exit. Without it FreeSWITCH closes the socket right
// after its disconnect notice.
func (s *Session) Linger(ctx context.Context) error {
	_, err := s.send(ctx, s.Call, "linger", "linger")
	if err == nil {
		s.mu.Lock()
		s.lingering = true
		s.mu.Unlock()
	}
	return err
}

// Resume makes FreeSWITCH continue the dialplan after the socket application
// once the socket closes, cutting short whatever plays (transcript s7).
func (s *Session) Resume(ctx context.Context) error {
	_, err := s.send(ctx, s.Call, "resume", "resume")
	if err == nil {
		s.mu.Lock()
		s.resumed = true
		s.mu.Unlock()
	}
	return err
}

// handBack: resume; the dialplan goes on after "socket" once the socket
// closes (release).
func (s *Session) handBack(ctx context.Context, c *Call, _ string) error {
	c.markLeft()
	return s.Resume(ctx)
}

// transfer runs the transfer application and waits until FreeSWITCH has
// run it. The socket stays attached to the call in its new extension
// (transcript s2) until eslapp sends exit.
func (s *Session) transfer(ctx context.Context, c *Call, arg AppArg) error {
	c.markLeft()
	_, err := c.Execute(ctx, "transfer", arg)
	return err
}

// hangup is a hangup call-command, which FreeSWITCH acts on at once rather
// than after the applications queued before it.
func (s *Session) hangup(ctx context.Context, _ *Call, cause string) error {
	_, err := s.send(ctx, s.Call, "sendmsg hangup", "sendmsg\ncall-command: hangup\nhangup-cause: "+cause)
	return err
}

// release ends the conversation: exit if the socket is still up, then
// close.
func (s *Session) release(*Call) {
	if err := s.Exit(context.Background()); err != nil {
		s.Logger().Debug("exit", "err", err)
	}
	s.Close()
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
	hungUp := s.HungUp()
	s.mu.Lock()
	if s.resumed && !hungUp {
		s.exitSent = true
		s.mu.Unlock()
		s.Close()
		return nil
	}
	// After a hangup without linger FreeSWITCH closes the socket by
	// itself: exit would only race with that.
	send := !hungUp || s.lingering
	s.exitSent = true
	s.mu.Unlock()
	if send {
		_, err := s.send(context.WithoutCancel(ctx), s.Call, "exit", "exit")
		if err != nil && !errors.Is(err, ErrDisconnected) {
			return err
		}
	}
	// FreeSWITCH closes the socket after its final notice; wait for that
	// briefly so that no half-closed connection is left behind.
	t := time.NewTimer(s.cmdTimeout)
	defer t.Stop()
	select {
	case <-s.conn.done:
	case <-t.C:
	}
	s.Close()
	return nil
}
