package esltest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LingerPosition chooses where the linger disconnect notice falls among the
// hangup events. FreeSWITCH sends it from the socket thread when it notices
// the channel is down, so its position races with the event queue; the
// transcripts show three positions.
type LingerPosition int

const (
	// LingerAfterHangupComplete sends it after CHANNEL_HANGUP_COMPLETE
	// (s1, s4, s5, s6, s9). The default.
	LingerAfterHangupComplete LingerPosition = iota
	// LingerBeforeHangup sends it before CHANNEL_HANGUP (s4b).
	LingerBeforeHangup
	// LingerAfterStateHangup sends it between CHANNEL_STATE CS_HANGUP and
	// CS_REPORTING (s2).
	LingerAfterStateHangup
)

// CallOptions configure one call.
type CallOptions struct {
	// UUID is the channel's Unique-ID; default a random v4 UUID.
	UUID string
	// Vars are channel variables set by the dialplan before the socket app:
	// they appear as variable_NAME in the connect reply and every channel
	// event (sorted by name, after variable_export_vars, as in s7).
	Vars map[string]string
	// Caller ID, destination and dialplan context of the call. Defaults:
	// "sipp", "sipp", "7000", "public" (the transcripts).
	CallerIDName, CallerIDNumber, DestinationNumber, Context string
	// ANI is the caller profile's ANI (Caller-ANI), which a trunk may send
	// apart from the caller ID number; default CallerIDNumber.
	ANI string
	// NotFull models "socket ADDR async" without "full" (s8): Control:
	// single-channel, and api, bgapi, sendevent, event, nixevent, noevents,
	// linger, nolinger, log and nolog get "-ERR command not found".
	NotFull bool
	// Media returns the play length of a file or URL, after the sound
	// prefix was applied to a relative path; false means FILE NOT FOUND
	// (s5). Default: 1 s for every file; silence_stream://N is N ms;
	// tone_stream:// and local_stream:// play for an hour.
	Media func(path string) (time.Duration, bool)
	// SayDuration is how long "say ARG" talks (default 200 ms);
	// SpeakDuration how long TTS text takes, for speak, tts:// and say:
	// (default 200 ms).
	SayDuration, SpeakDuration func(arg string) time.Duration
	// AppStartDelay is the gap between FreeSWITCH taking a queued message
	// off the channel's queue and the app's CHANNEL_EXECUTE (about 20 ms on
	// real FreeSWITCH). A uuid_break that lands in it is lost.
	AppStartDelay time.Duration
	// LingerNotice chooses where the linger notice falls in a hangup.
	LingerNotice LingerPosition
	// Withhold names events the double never writes although the channel
	// goes through them: a broken peer that acknowledges commands and then
	// stays quiet (CHANNEL_EXECUTE_COMPLETE, say).
	Withhold []string
	// AfterTransfer is how long the extension a transfer leads to runs
	// before it hangs up with "hangup NORMAL_CLEARING" (events as in s2's
	// tail). Default 100 ms; negative: the call stays up in the new
	// extension until Hangup or the application's exit.
	AfterTransfer time.Duration
}

// OutcomeKind says how the application's control of a call ended.
type OutcomeKind int

const (
	// Active: the socket is still open.
	Active OutcomeKind = iota
	// Exited: the application sent exit (or closed) without resume while
	// the call was up; the dialplan continues after the socket app once the
	// queued apps have ended.
	Exited
	// Resumed: the application sent resume, then exit or closed the
	// socket; the dialplan continues with the next action (s7).
	Resumed
	// Transferred: a transfer (execute transfer or api uuid_transfer) took
	// the call out of the socket app; Outcome.TransferDest says where.
	Transferred
	// HungUp: the channel hung up while the socket app controlled it.
	HungUp
	// Cut: the test dropped the connection with CutTCP.
	Cut
	// AppClosed: the application closed the connection without exit and
	// without resume.
	AppClosed
	// ConnectTimeout: no command arrived within Options.ConnectTimeout.
	ConnectTimeout
)

var outcomeNames = [...]string{"Active", "Exited", "Resumed", "Transferred", "HungUp", "Cut", "AppClosed", "ConnectTimeout"}

func (k OutcomeKind) String() string {
	if int(k) < len(outcomeNames) {
		return outcomeNames[k]
	}
	return "OutcomeKind(" + strconv.Itoa(int(k)) + ")"
}

// Outcome records how a call ended.
type Outcome struct {
	Kind OutcomeKind
	// HangupCause is set once the channel hung up (also after a transfer).
	HangupCause string
	// TransferDest is "EXT DIALPLAN CONTEXT" of the first transfer.
	TransferDest string
	// NetFired is set when a socket-less call's safety net transferred it
	// (a scheduled uuid_transfer); NetGroup is the scheduler group of the
	// task that fired ("eslapp-pick-UUID", "eslapp-net-UUID", or the
	// call's UUID for a dialplan's sched_transfer).
	NetFired bool
	NetGroup string
	// Transfers lists every transfer, "EXT DIALPLAN CONTEXT", in order:
	// a call moved twice shows it here.
	Transfers []string
	// ResumeReceived and ExitReceived record those commands.
	ResumeReceived, ExitReceived      bool
	HungUpAt, TransferredAt, ClosedAt time.Time
}

// Played is one media application the channel ran, with its argument as
// FreeSWITCH used it (after variable expansion): what the caller heard.
type Played struct {
	At   time.Time
	App  string // playback, say, speak
	Arg  string // argument after expansion
	UUID string // Application-UUID
	// Files are the files of a playback: the file_string:// parts after
	// switch_separate_string, or the one path, as given (no sound prefix).
	Files []string
	// Texts are the TTS texts: tts://engine|voice|TEXT and say:TEXT files,
	// or speak's text.
	Texts []string
	// Status is the Application-Response (FILE PLAYED, FILE NOT FOUND,
	// PLAYBACK ERROR, _none_), empty while playing.
	Status string
	// Broken is set when uuid_break or a playback terminator stopped it.
	Broken bool
}

// SentFrame is one frame the double sent to the application.
type SentFrame struct {
	At time.Time
	// Kind is connect, reply, api, event, linger or disconnect.
	Kind string
	// Text is the Reply-Text of a reply, or the body of an api/response.
	Text string
	// For events: name and the headers tests match on.
	Event, Application, ApplicationUUID, Response, PlaybackStatus string
	Size                                                          int
}

// Call is one outbound-socket connection: one FreeSWITCH channel controlled
// by the application. One goroutine owns its state (run); a second reads
// commands (readLoop).
type Call struct {
	fs         *FreeSWITCH
	opts       CallOptions
	conn       net.Conn
	uuid       string
	socketData string
	socketUUID string
	// parkApp is the application that holds the call for the controller:
	// "socket", or "park" on the socket-less path.
	parkApp string
	// controlled is CF_CONTROLLED: the channel sits in parkApp (sendmsg
	// UUID over an inbound connection is refused otherwise).
	controlled atomic.Bool
	noRecord   bool // an inbound connection's stand-in: frames are not kept
	exp        Expander

	cmdCh chan *Command
	ctrl  chan func()
	done  chan struct{}

	// Owned by run. Fields that other goroutines read are written under mu.
	ch         channel
	sub        subscription
	running    bool // LFLAG_RUNNING
	logOn      bool // LFLAG_LOG
	gotFirst   bool
	connectBy  time.Time
	linger     bool
	lingerSecs int
	lingerEnd  time.Time
	noticeSent bool
	resume     bool
	hungUp     bool
	socketDone bool // the socket app has completed (hangup or transfer)
	closed     bool
	stall      bool
	held       []*Command
	queue      []*Command
	stack      []*appRun
	xferAt     time.Time
	timer      *time.Timer
	armed      time.Time

	mu       sync.Mutex
	commands []Command
	notify   chan struct{}
	sent     []SentFrame
	played   []Played
	apiExecs []string
	outcome  Outcome
	cutting  bool
}

func newCall(fs *FreeSWITCH, conn net.Conn, addr string, o CallOptions) *Call {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.UUID, NewUUID())
	def(&o.CallerIDName, "sipp")
	def(&o.CallerIDNumber, "sipp")
	def(&o.DestinationNumber, "7000")
	def(&o.Context, "public")
	if o.AfterTransfer == 0 {
		o.AfterTransfer = 100 * time.Millisecond
	}
	mode := "async full"
	if o.NotFull {
		mode = "async"
	}
	c := &Call{
		fs:         fs,
		opts:       o,
		conn:       conn,
		uuid:       o.UUID,
		socketData: addr + " " + mode,
		socketUUID: NewUUID(),
		parkApp:    "socket",
		cmdCh:      make(chan *Command),
		ctrl:       make(chan func(), 16),
		done:       make(chan struct{}),
		running:    true,
		notify:     make(chan struct{}),
	}
	c.exp = Expander{Lookup: c.lookup, API: c.recordAPI}
	c.initChannel(addr)
	c.controlled.Store(true)
	return c
}

// ErrCallEnded is returned by WaitFor when the call ended first.
var ErrCallEnded = errors.New("esltest: call ended without a matching command")

// UUID returns the channel's Unique-ID.
func (c *Call) UUID() string { return c.uuid }

// Done is closed when the connection is closed and the call's goroutines
// have ended.
func (c *Call) Done() <-chan struct{} { return c.done }

// Outcome returns how the call ended (Kind Active while it runs).
func (c *Call) Outcome() Outcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.outcome
}

// Commands returns every command received so far, in order (also those
// held by StallReplies).
func (c *Call) Commands() []Command {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Command(nil), c.commands...)
}

// WaitFor waits until a received command matches; it checks the commands
// already received first.
func (c *Call) WaitFor(ctx context.Context, match func(Command) bool) (Command, error) {
	for {
		c.mu.Lock()
		for _, cmd := range c.commands {
			if match(cmd) {
				c.mu.Unlock()
				return cmd, nil
			}
		}
		notify := c.notify
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return Command{}, ctx.Err()
		case <-notify:
		case <-c.done:
			// The reader has stopped: one last look, then give up.
			for _, cmd := range c.Commands() {
				if match(cmd) {
					return cmd, nil
				}
			}
			return Command{}, ErrCallEnded
		}
	}
}

// Var returns a channel variable as FreeSWITCH stores it now.
func (c *Call) Var(name string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ch.vars.get(name)
}

// Sent returns the frames sent to the application (empty with
// Options.NoRecordFrames).
func (c *Call) Sent() []SentFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]SentFrame(nil), c.sent...)
}

// Played returns the media apps run so far.
func (c *Call) Played() []Played {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Played(nil), c.played...)
}

// APIExecutions returns the ${api(args)} expansions FreeSWITCH would have
// executed, as "api(args)". Values from outside that reach FreeSWITCH
// unescaped show up here; tests assert it stays empty.
func (c *Call) APIExecutions() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.apiExecs...)
}

// Hangup makes the caller hang up (a BYE) with this cause (default
// NORMAL_CLEARING): the hangup sequence of s3 (no linger) or s4/s4b
// (linger).
func (c *Call) Hangup(cause string) {
	if cause == "" {
		cause = "NORMAL_CLEARING"
	}
	c.do(func() { c.hangupChannel(cause, "recv_bye") })
}

// PressDTMF sends a DTMF event for the digit; a running playback, say or
// speak stops when the digit is in playback_terminators (default "*").
func (c *Call) PressDTMF(digit rune) {
	c.do(func() { c.dtmf(digit) })
}

// StallReplies(true) makes FreeSWITCH stop answering: commands are still
// read and recorded but held unprocessed (events keep flowing). With false
// the held commands are processed, in order, and their replies sent late.
func (c *Call) StallReplies(on bool) {
	// Wait until the call's goroutine has it (ctrl is buffered): a command
	// sent after StallReplies(true) returns must be held.
	applied := make(chan struct{})
	defer func() {
		select {
		case <-applied:
		case <-c.done:
		}
	}()
	c.do(func() {
		defer close(applied)
		c.stall = on
		if !on {
			held := c.held
			c.held = nil
			for _, cmd := range held {
				if c.closed {
					return
				}
				c.process(cmd)
			}
		}
	})
}

// CutTCP drops the connection without any notice, as when FreeSWITCH or
// the network fails.
func (c *Call) CutTCP() {
	c.mu.Lock()
	c.cutting = true
	c.mu.Unlock()
	c.conn.Close()
}

// do runs f on the call's goroutine; it is dropped once the call ended.
func (c *Call) do(f func()) {
	select {
	case c.ctrl <- f:
	case <-c.done:
	}
}

func (c *Call) isHungUp() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hungUp
}

func (c *Call) logf(format string, args ...any) {
	c.fs.logf("esltest %s: "+format, append([]any{c.uuid}, args...)...)
}

// readLoop reads commands and hands them to run; it records each one as
// soon as it is read.
func (c *Call) readLoop(r *bufio.Reader) {
	defer close(c.cmdCh)
	for {
		cmd, err := ReadCommand(r)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
				c.logf("read: %v", err)
			}
			return
		}
		cmd.At = time.Now()
		c.mu.Lock()
		c.commands = append(c.commands, *cmd)
		close(c.notify)
		c.notify = make(chan struct{})
		c.mu.Unlock()
		select {
		case c.cmdCh <- cmd:
		case <-c.done:
			return
		}
	}
}

// run is the goroutine that owns the call.
func (c *Call) run() {
	c.timer = time.NewTimer(time.Hour)
	c.timer.Stop()
	c.connectBy = time.Now().Add(c.fs.opts.ConnectTimeout)
	defer c.finish()
	for !c.closed {
		c.rearm()
		select {
		case cmd, ok := <-c.cmdCh:
			if !ok {
				c.peerClosed()
				continue
			}
			if c.stall {
				c.held = append(c.held, cmd)
				continue
			}
			c.process(cmd)
		case f := <-c.ctrl:
			f()
		case <-c.timer.C:
			c.armed = time.Time{}
			c.onTimer()
		}
	}
}

func (c *Call) finish() {
	c.timer.Stop()
	c.conn.Close()
	c.fs.remove(c)
	c.mu.Lock()
	if c.outcome.ClosedAt.IsZero() {
		c.outcome.ClosedAt = time.Now()
	}
	c.mu.Unlock()
	// Wait for readLoop: it returns once the closed conn fails the read.
	for range c.cmdCh {
	}
	close(c.done)
}

// rearm points the timer at the earliest deadline.
func (c *Call) rearm() {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if !c.gotFirst {
		consider(c.connectBy)
	}
	consider(c.lingerEnd)
	consider(c.xferAt)
	if a := c.top(); a != nil {
		if a.state == appPending {
			consider(a.startAt)
		} else if a.media {
			consider(a.endAt)
		}
	}
	if next.Equal(c.armed) {
		return
	}
	c.timer.Stop()
	c.armed = next
	if !next.IsZero() {
		c.timer.Reset(time.Until(next))
	}
}

func (c *Call) onTimer() {
	now := time.Now()
	switch {
	case !c.gotFirst && !c.connectBy.IsZero() && !now.Before(c.connectBy):
		c.logf("no command within %v: closing as the socket app does", c.fs.opts.ConnectTimeout)
		c.setKind(ConnectTimeout)
		c.sendFinalNotice()
		c.closeConn()
		return
	case !c.lingerEnd.IsZero() && !now.Before(c.lingerEnd):
		c.lingerEnd = time.Time{}
		c.sendFinalNotice()
		c.closeConn()
		return
	case !c.xferAt.IsZero() && !now.Before(c.xferAt):
		c.xferAt = time.Time{}
		c.queue = append(c.queue, dialplanHangup())
		c.pump()
		return
	}
	if a := c.top(); a != nil {
		if a.state == appPending && !now.Before(a.startAt) {
			c.startApp(a)
		} else if a.state == appRunning && a.media && !a.endAt.IsZero() && !now.Before(a.endAt) {
			c.completeApp(a, statusDone)
		}
	}
}

// peerClosed handles the application closing the connection (or a read
// error after CutTCP).
func (c *Call) peerClosed() {
	c.mu.Lock()
	cut := c.cutting
	c.mu.Unlock()
	switch {
	case cut:
		c.setKind(Cut)
	case c.resume:
		c.setKind(Resumed)
	default:
		c.setKind(AppClosed)
	}
	c.closeConn()
}

func (c *Call) setKind(k OutcomeKind) {
	c.mu.Lock()
	if c.outcome.Kind == Active {
		c.outcome.Kind = k
	}
	c.mu.Unlock()
}

func (c *Call) closeConn() {
	if c.closed {
		return
	}
	c.closed = true
	c.conn.Close()
}

// write sends one frame; a failed write closes the call.
func (c *Call) write(b []byte, f SentFrame) {
	if c.closed {
		return
	}
	if _, err := c.conn.Write(b); err != nil {
		c.logf("write: %v", err)
		c.mu.Lock()
		cut := c.cutting
		c.mu.Unlock()
		if cut {
			c.setKind(Cut)
		} else {
			c.setKind(AppClosed)
		}
		c.closeConn()
		return
	}
	if c.fs.opts.NoRecordFrames || c.noRecord {
		return
	}
	f.At = time.Now()
	f.Size = len(b)
	c.mu.Lock()
	c.sent = append(c.sent, f)
	c.mu.Unlock()
}

// sendReply sends a command/reply. A reply starting with '~' is raw
// headers (parse_command's convention for bgapi).
func (c *Call) sendReply(text string) {
	bp := getBuf()
	defer putBuf(bp)
	b := append(*bp, "Content-Type: command/reply\n"...)
	if strings.HasPrefix(text, "~") {
		b = append(b, text[1:]...)
	} else {
		b = append(b, "Reply-Text: "...)
		b = append(b, text...)
		b = append(b, "\n\n"...)
	}
	*bp = b
	c.write(b, SentFrame{Kind: "reply", Text: strings.TrimPrefix(stripCR(strings.TrimPrefix(text, "~Reply-Text: ")), "~")})
}

// sendAPIResponse sends an api/response (api_exec).
func (c *Call) sendAPIResponse(body string) {
	if body == "" {
		body = "-ERR no reply\n"
	}
	bp := getBuf()
	defer putBuf(bp)
	b := append(*bp, "Content-Type: api/response\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\n\n"...)
	b = append(b, body...)
	*bp = b
	c.write(b, SentFrame{Kind: "api", Text: body})
}

const goodbye = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"

// sendFinalNotice is send_disconnect with listener_run's goodbye message.
func (c *Call) sendFinalNotice() {
	b := []byte("Content-Type: text/disconnect-notice\nControlled-Session-UUID: " + c.uuid +
		"\nContent-Disposition: disconnect\nContent-Length: " + strconv.Itoa(len(goodbye)) + "\n\n" + goodbye)
	c.write(b, SentFrame{Kind: "disconnect", Text: goodbye})
}

// sendLingerNotice is read_packet's linger notice.
func (c *Call) sendLingerNotice() {
	if c.noticeSent || !c.linger {
		return
	}
	c.noticeSent = true
	b := []byte("Content-Type: text/disconnect-notice\nControlled-Session-UUID: " + c.uuid +
		"\nContent-Disposition: linger\nChannel-Name: " + c.ch.name +
		"\nLinger-Time: " + strconv.Itoa(c.lingerSecs) + "\nContent-Length: 0\n\n")
	c.write(b, SentFrame{Kind: "linger"})
}

// exitClose ends the session after exit: final notice, close.
func (c *Call) exitClose() {
	c.mu.Lock()
	c.outcome.ExitReceived = true
	c.mu.Unlock()
	if c.resume {
		c.setKind(Resumed)
	} else {
		c.setKind(Exited)
	}
	c.sendFinalNotice()
	c.closeConn()
}
