package esl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultStartSubclass is the CUSTOM event subclass a socket-less dialplan
// fires to hand a call to eslapp.
const DefaultStartSubclass = "eslapp::call"

// InboundConfig configures the socket-less mode: one long-lived inbound
// Event Socket connection to FreeSWITCH per eslapp process, over which
// eslapp hears calls being handed to it (a CUSTOM event the dialplan
// fires before it parks the call) and runs them.
type InboundConfig struct {
	// Address is FreeSWITCH's inbound Event Socket, host:port.
	Address string
	// Password is event_socket.conf's password.
	Password string
	// Subclass is the CUSTOM event the dialplan fires; default
	// DefaultStartSubclass. Several eslapps share it: a call announced
	// with a pick-up net (PickVar) runs in the one that claims it; one
	// announced without (an older dialplan) runs in every eslapp that
	// hears it.
	Subclass string
	// WaitMusic is the Application-Data of the application the dialplan
	// holds an announced call in until it is claimed (the shipped
	// dialplan's "playback local_stream://eslapp_hold", DefaultWaitMusic).
	// FreeSWITCH is asked, by a negative filter, not to send the event of
	// its end: eslapp follows its own applications and the park, never
	// the music, and that event carries every channel variable (a quarter
	// of what a call's events weigh). "" asks for nothing. A value must
	// pass IsWaitMusic.
	WaitMusic string
	// CommandTimeout bounds each command; default DefaultCommandTimeout.
	// A command without a reply in time closes the connection: a late
	// reply would be taken as the next command's.
	CommandTimeout time.Duration
	// ProbeEvery is how often the connection is checked with a command
	// (api echo); default 5 s. A connection that breaks without a word
	// (a host gone, a firewall dropping it) is found by the probe or by
	// the deadline of any command.
	ProbeEvery time.Duration
	// MinBackoff and MaxBackoff bound the wait between connection
	// attempts, which doubles from the first to the second, with jitter.
	// Defaults 200 ms and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// Logger gets the connection's log; calls log with their UUID.
	Logger *slog.Logger
}

// InboundState is the state of the shared connection.
type InboundState int

const (
	// InboundDisconnected: no connection, and no attempt under way.
	InboundDisconnected InboundState = iota
	// InboundConnecting: an attempt is under way.
	InboundConnecting
	// InboundConnected: authenticated and subscribed; calls are heard.
	InboundConnected
)

var inboundStateNames = [...]string{"disconnected", "connecting", "connected"}

func (s InboundState) String() string {
	if int(s) < len(inboundStateNames) {
		return inboundStateNames[s]
	}
	return fmt.Sprintf("InboundState(%d)", int(s))
}

// InboundStats is the connection's state and counters, for metrics.
type InboundStats struct {
	State InboundState
	// Since is when the state was entered.
	Since time.Time
	// LastError is why the last attempt or connection failed ("" if none).
	LastError string
	// Connects counts successful connections, Failures failed attempts
	// and lost connections.
	Connects, Failures uint64
	// Calls is the number of this connection's calls running; Started
	// counts the calls taken, Refused those handed back unrun.
	Calls            int
	Started, Refused uint64
	// Contended calls (announced with a pick-up net): claims won and lost
	// to another eslapp or to the pick-up net, calls not claimed because
	// this eslapp was draining or at max_calls, nets found fired.
	ClaimsWon, ClaimsLost, Declined, NetsFired uint64
	// Lagging counts the Declined calls that were not claimed because
	// FreeSWITCH answered this connection's commands late (ErrLagging).
	Lagging uint64
	// PeerClaimed is when another eslapp last took a call of this
	// FreeSWITCH from under this one (a claim lost within PeerEvidence of
	// the announcement); zero if never. Within PeerWindow of it, claims
	// wait their turn by load (RunnerConfig.ClaimStagger); alone, they
	// do not.
	PeerClaimed time.Time
	Wire        WireStats
}

// Inbound is eslapp's shared inbound connection to one FreeSWITCH: it
// hears the calls that FreeSWITCH announces and hands each to its Runner,
// then carries the calls' commands and events. NewInbound, then Serve
// until the runner's Shutdown or Close (or Close).
//
// It runs on eslapp's own framing, like a call's socket: one read loop that
// matches replies to commands in order and applies events in the order
// FreeSWITCH wrote them. (eslgo v1.4.1's client was the first choice; its
// Conn.close deletes from the map of response channels that its auth and
// disconnect goroutines read without a lock, so every connection that ends
// is a data race, and it hands each event to a goroutine of its own.)
type Inbound struct {
	cfg    InboundConfig
	log    *slog.Logger
	runner *Runner

	stop       chan struct{} // closed by close: no more connections
	stopOnce   sync.Once
	handlers   sync.WaitGroup
	wire       wireCounters
	counts     callCounts
	legacyWarn rateLimited
	lagWarn    rateLimited

	mu      sync.Mutex
	conn    *conn         // nil while disconnected
	up      chan struct{} // closed while connected; replaced when lost
	state   InboundState
	since   time.Time
	lastErr string
	calls   map[string]*Call

	connects, failures atomic.Uint64
	peerClaimedAt      atomic.Int64 // unix ns of PeerClaimed; 0: never
}

const (
	// PeerEvidence: a claim lost this soon after the announcement was
	// heard was won by another eslapp — the pick-up net (+3, and +2 in
	// older dialplans, armed before the announcement) cannot fire in
	// under a second.
	PeerEvidence = 500 * time.Millisecond
	// PeerWindow is how long a peer's claim keeps this eslapp waiting its
	// turn: peers that share the load lose claims to each other all the
	// time, so one that has not been seen for this long is gone (or has
	// stopped claiming).
	PeerWindow = 30 * time.Second
)

// lagging reports whether FreeSWITCH answers the shared connection's
// commands late (commands.lagging), and warns, at most every 10 s, that
// new calls are left alone meanwhile.
func (in *Inbound) lagging(now time.Time) bool {
	in.mu.Lock()
	conn := in.conn
	in.mu.Unlock()
	if conn == nil || !conn.cmds.lagging(now) {
		return false
	}
	in.lagWarn.log(in.log, "FreeSWITCH answers eslapp's commands late (over 2 s, or half command_timeout): its calls announced now are left to other eslapps or the dialplan's pick-up net until it catches up")
	return true
}

// peerClaimed reports PeerClaimed.
func (in *Inbound) peerClaimed() time.Time {
	if ns := in.peerClaimedAt.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// peersClaiming reports whether another eslapp took one of this
// FreeSWITCH's calls within PeerWindow.
func (in *Inbound) peersClaiming(now time.Time) bool { return peersClaimingAt(in.peerClaimed(), now) }

// PeersClaiming reports whether, at now, claims on this connection wait
// their turn by load: another eslapp took one of its calls within
// PeerWindow.
func (st InboundStats) PeersClaiming(now time.Time) bool { return peersClaimingAt(st.PeerClaimed, now) }

func peersClaimingAt(claimed, now time.Time) bool {
	return !claimed.IsZero() && now.Sub(claimed) < PeerWindow
}

// DefaultWaitMusic is what the shipped socket-less extensions play while
// a call waits to be claimed.
const DefaultWaitMusic = "local_stream://eslapp_hold"

// IsWaitMusic reports whether s can follow "filter Application-Data -" as
// the value FreeSWITCH compares: one line of printable bytes, at most 512,
// not starting with a space, "+", "-" or "/" (which would change what the
// filter means: its sign, or a regular expression).
func IsWaitMusic(s string) bool {
	if s == "" || len(s) > 512 || strings.ContainsAny(s[:1], " +-/") {
		return false
	}
	for i := range len(s) {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// NewInbound checks the configuration and returns a way in for r's calls;
// Serve connects.
func NewInbound(r *Runner, cfg InboundConfig) (*Inbound, error) {
	if r == nil {
		return nil, errors.New("esl: inbound connection without a runner")
	}
	if cfg.Address == "" {
		return nil, errors.New("esl: inbound connection without an address")
	}
	if cfg.Subclass == "" {
		cfg.Subclass = DefaultStartSubclass
	}
	if !IsEventSubclass(cfg.Subclass) {
		return nil, fmt.Errorf("esl: %q is not an event subclass", cfg.Subclass)
	}
	if cfg.WaitMusic != "" && !IsWaitMusic(cfg.WaitMusic) {
		return nil, fmt.Errorf("esl: %.80q cannot be a filter's value (wait music)", cfg.WaitMusic)
	}
	positiveOr(&cfg.CommandTimeout, DefaultCommandTimeout)
	positiveOr(&cfg.ProbeEvery, DefaultProbeEvery)
	positiveOr(&cfg.MinBackoff, DefaultMinBackoff)
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	cfg.Logger = loggerOrDiscard(cfg.Logger)
	in := &Inbound{
		cfg:    cfg,
		log:    cfg.Logger.With("freeswitch", cfg.Address),
		runner: r,
		stop:   make(chan struct{}),
		up:     make(chan struct{}),
		calls:  make(map[string]*Call),
		since:  time.Now(),
	}
	r.add(in)
	return in, nil
}

// Defaults of InboundConfig.
const (
	// DefaultInboundAddress is FreeSWITCH's event socket as
	// event_socket.conf.xml ships it.
	DefaultInboundAddress = "127.0.0.1:8021"
	DefaultProbeEvery     = 5 * time.Second
	DefaultMinBackoff     = 200 * time.Millisecond
	// DefaultMaxBackoff is short because a FreeSWITCH that comes back
	// takes calls at once: until eslapp is connected again its socket-less
	// calls reach OnError through their pick-up nets. An attempt against a
	// FreeSWITCH that is down costs one refused connection.
	DefaultMaxBackoff = 2 * time.Second
)

// SendEvent fires a CUSTOM event over the shared connection, for no call
// in particular (late results to the agent).
func (in *Inbound) SendEvent(ctx context.Context, subclass string, headers []EventHeader, body []byte) error {
	msg, err := sendEventMessage(subclass, headers, body)
	if err != nil {
		return err
	}
	_, err = in.send(ctx, "sendevent", msg)
	return err
}

// SetVar stores value verbatim in a channel variable of any channel
// (api uuid_setvar); ErrHangup when the channel is gone.
func (in *Inbound) SetVar(ctx context.Context, uuid, name, value string) error {
	args, err := UUIDSetVarArgs(uuid, name, value)
	if err != nil {
		return err
	}
	_, err = in.send(ctx, "api uuid_setvar", "api uuid_setvar "+args.s)
	var re *ReplyError
	if errors.As(err, &re) && strings.Contains(re.Text, "No such channel") {
		return fmt.Errorf("uuid_setvar: %w (%s)", ErrHangup, re.Text)
	}
	return err
}

// Address is the FreeSWITCH inbound event socket this connection is to.
func (in *Inbound) Address() string { return in.cfg.Address }

// Stats reports the connection's state and counters.
func (in *Inbound) Stats() InboundStats {
	in.mu.Lock()
	defer in.mu.Unlock()
	return InboundStats{
		State: in.state, Since: in.since, LastError: in.lastErr,
		Connects: in.connects.Load(), Failures: in.failures.Load(),
		Calls: len(in.calls), Started: in.counts.taken.Load(), Refused: in.counts.refused.Load(),
		ClaimsWon: in.counts.won.Load(), ClaimsLost: in.counts.lost.Load(),
		Declined: in.counts.declined.Load(), NetsFired: in.counts.netsFired.Load(),
		Lagging:     in.counts.lagging.Load(),
		PeerClaimed: in.peerClaimed(),
		Wire:        in.wire.stats(),
	}
}

// Serve keeps the connection up until the runner stops or Close: it
// connects, subscribes, and reconnects with backoff whenever the
// connection fails or is lost. Calls running when it is lost go on: their
// commands wait for the next connection, within their timeout.
func (in *Inbound) Serve() {
	backoff := in.cfg.MinBackoff
	for {
		select {
		case <-in.stop:
			return
		default:
		}
		in.setState(InboundConnecting, "")
		conn, err := in.connect()
		if err != nil {
			in.failures.Add(1)
			in.setState(InboundDisconnected, err.Error())
			in.log.Warn("cannot connect to FreeSWITCH's event socket; retrying", "err", err, "in", backoff)
			if !in.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, in.cfg.MaxBackoff)
			continue
		}
		backoff = in.cfg.MinBackoff
		in.connects.Add(1)
		in.log.Info("connected to FreeSWITCH's event socket")
		why := in.hold(conn)
		in.drop(conn, why)
		select {
		case <-in.stop:
			return
		default:
		}
		in.failures.Add(1)
		in.log.Warn("connection to FreeSWITCH's event socket lost; reconnecting", "why", why)
		// A quick first retry: FreeSWITCH restarting takes a few seconds,
		// a dropped connection none.
		if !in.sleep(in.cfg.MinBackoff) {
			return
		}
	}
}

// sleep waits d (with jitter), or returns false when the connection is
// being stopped.
func (in *Inbound) sleep(d time.Duration) bool {
	t := time.NewTimer(jitter(d))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-in.stop:
		return false
	}
}

// jitter spreads reconnections of many eslapp processes: d ± 20%.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}

// connect dials, authenticates and subscribes: the filters first, so that
// no event of another call is ever serialised for eslapp, then the events,
// then the filters of the calls still running.
func (in *Inbound) connect() (*conn, error) {
	conn, err := dialInbound(in.cfg.Address, in.cfg.Password, in.cfg.CommandTimeout, &in.wire, func() *slog.Logger { return in.log }, in)
	if err != nil {
		return nil, err
	}
	in.mu.Lock()
	uuids := make([]string, 0, len(in.calls))
	for id := range in.calls {
		uuids = append(uuids, id)
	}
	in.mu.Unlock()
	sort.Strings(uuids)
	cmds := []string{
		"filter Event-Subclass " + in.cfg.Subclass,
	}
	if in.cfg.WaitMusic != "" {
		// After the filters that let events through, whatever they are:
		// FreeSWITCH drops an event a "-" filter matches.
		cmds = append(cmds, "filter Application-Data -"+in.cfg.WaitMusic)
	}
	cmds = append(cmds,
		"event plain CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP CUSTOM "+in.cfg.Subclass,
	)
	for _, id := range uuids {
		cmds = append(cmds, "filter Unique-ID "+id)
	}
	for _, cmd := range cmds {
		if _, err := conn.cmds.send(context.Background(), firstWord(cmd), cmd); err != nil {
			conn.close()
			return nil, fmt.Errorf("subscribing (%s): %w", firstWord(cmd), err)
		}
	}
	in.mu.Lock()
	in.conn = conn
	close(in.up)
	in.state, in.since, in.lastErr = InboundConnected, time.Now(), ""
	in.mu.Unlock()
	return conn, nil
}

// hold watches a connection until it is lost or stopped, probing it
// meanwhile. It returns why it ended.
func (in *Inbound) hold(conn *conn) string {
	t := time.NewTicker(in.cfg.ProbeEvery)
	defer t.Stop()
	for {
		select {
		case <-conn.done:
			return conn.why()
		case <-in.stop:
			return "stopping"
		case <-t.C:
			if _, err := conn.cmds.send(context.Background(), "probe", "api echo eslapp"); err != nil {
				return "probe: " + err.Error()
			}
		}
	}
}

// drop forgets a lost connection: commands wait for the next one.
func (in *Inbound) drop(conn *conn, why string) {
	in.mu.Lock()
	if in.conn == conn {
		in.conn = nil
		in.up = make(chan struct{})
		in.state, in.since, in.lastErr = InboundDisconnected, time.Now(), why
	}
	in.mu.Unlock()
	conn.close()
}

func (in *Inbound) setState(s InboundState, lastErr string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.state != s {
		in.state, in.since = s, time.Now()
	}
	if lastErr != "" {
		in.lastErr = lastErr
	}
}

// send runs one command on the shared connection, waiting for a
// connection if there is none, all within the command timeout (and ctx).
func (in *Inbound) send(ctx context.Context, what, cmd string) (string, error) {
	res := in.sendAll(ctx, command{what, cmd})
	return res[0].text, res[0].err
}

// sendAll runs commands in one write on the shared connection (see
// commands.sendAll), waiting for a connection if there is none, all within
// the command timeout (and ctx).
func (in *Inbound) sendAll(ctx context.Context, cmds ...command) []result {
	ctx, cancel := context.WithTimeout(ctx, in.cfg.CommandTimeout)
	defer cancel()
	in.mu.Lock()
	conn, up := in.conn, in.up
	in.mu.Unlock()
	fail := func(why string) []result {
		res := make([]result, len(cmds))
		for i, cmd := range cmds {
			res[i].err = fmt.Errorf("%s: %w%s", cmd.what, ErrDisconnected, why)
		}
		return res
	}
	if conn == nil {
		select {
		case <-up:
		case <-ctx.Done():
			return fail(" (no connection to FreeSWITCH)")
		case <-in.stop:
			return fail(" (the connection is closed)")
		}
		in.mu.Lock()
		conn = in.conn
		in.mu.Unlock()
		if conn == nil {
			return fail("")
		}
	}
	return conn.cmds.sendAll(ctx, cmds)
}

// event applies one event, on the connection's read loop (frameHandler): a
// start event starts a call; any other goes to the call its Unique-ID
// names.
func (in *Inbound) event(ev Event, body []byte) {
	if ev.Name == "CUSTOM" {
		if ev.Subclass == in.cfg.Subclass {
			in.start(body)
		}
		return
	}
	in.mu.Lock()
	c := in.calls[ev.UniqueID]
	in.mu.Unlock()
	if c != nil {
		c.dispatch(ev)
	}
}

// notice: a disconnect notice on the shared connection ends it
// (frameHandler); Serve reconnects.
func (in *Inbound) notice(f *Frame) error {
	return fmt.Errorf("disconnect notice: %s", strings.TrimSpace(string(f.Body)))
}

// start takes a call the dialplan handed over.
func (in *Inbound) start(body []byte) {
	b := in.runner.bind()
	data, err := channelDataFromEvent(body, keepPickVar(b.VarFilter))
	if err != nil {
		b.Release()
		in.log.Warn("start event not taken: the dialplan's safety net will route the call", "err", err)
		return
	}
	id := data.UUID()
	in.mu.Lock()
	if _, dup := in.calls[id]; dup {
		in.mu.Unlock()
		b.Release()
		return
	}
	leg := newInboundLeg(in, data)
	if !leg.contended {
		in.legacyWarn.log(in.log, "a call was announced without a pick-up net (the channel variable "+PickVar+"): an older dialplan; only one eslapp may serve it (see conf/freeswitch)", "call", id)
	}
	c := newCall(callConfig{leg: leg, data: data, log: in.log, parent: in.runner.ctx, holder: "park"})
	c.inbound = in
	in.calls[id] = c
	in.handlers.Add(1)
	in.mu.Unlock()
	go in.run(c, b)
}

// run is a call's goroutine: the runner runs it; then it is forgotten.
func (in *Inbound) run(c *Call, b Binding) {
	defer in.handlers.Done()
	defer func() {
		in.mu.Lock()
		delete(in.calls, c.uuid)
		in.mu.Unlock()
	}()
	in.runner.run(c, b, &in.counts)
}

// drainStarted: the runner hands new calls back while it drains.
func (in *Inbound) drainStarted() {}

// close stops the connection: no reconnection, the current connection
// closed under the calls' last commands, their goroutines awaited.
func (in *Inbound) close() {
	in.stopOnce.Do(func() { close(in.stop) })
	in.mu.Lock()
	conn := in.conn
	calls := make([]*Call, 0, len(in.calls))
	for _, c := range in.calls {
		calls = append(calls, c)
	}
	in.mu.Unlock()
	if conn != nil {
		conn.close()
	}
	for _, c := range calls {
		c.end(ErrDisconnected, ErrDisconnected)
	}
	in.handlers.Wait()
}

// Close stops this connection at once: its calls' commands fail and the
// calls end. (Runner.Shutdown drains every way in.)
func (in *Inbound) Close() { in.close() }

// channelDataFromEvent is the channel data a start event carries: the
// event's headers are those of a connect reply (switch_channel_event_set_data).
func channelDataFromEvent(body []byte, filter VarFilter) (*ChannelData, error) {
	data, err := parseChannelData(body, filter, false, "")
	if err != nil {
		return nil, err
	}
	if !isChannelID(data.UUID()) {
		return nil, fmt.Errorf("%w: start event with a Unique-ID that is not one plain word: %.60q", errProtocol, data.UUID())
	}
	return data, nil
}

func firstWord(s string) string {
	w, _, _ := strings.Cut(s, " ")
	return w
}

// dialInbound connects and authenticates: FreeSWITCH greets with
// auth/request, eslapp answers "auth PASSWORD", FreeSWITCH accepts with
// "+OK accepted" (else "-ERR invalid" and it closes). The connection's
// read loop hands its events and notices to h.
func dialInbound(addr, password string, timeout time.Duration, wire *wireCounters, log func() *slog.Logger, h frameHandler) (*conn, error) {
	if strings.ContainsAny(password, "\r\n") {
		return nil, errors.New("the password holds a line break")
	}
	d := net.Dialer{Timeout: timeout, KeepAlive: -1}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := newConn(nc, timeout, wire, log)
	c.fr.SetLimits(defaultMaxFrame, defaultMaxFrame)
	_ = nc.SetReadDeadline(time.Now().Add(timeout))
	f, err := c.fr.Next()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("no greeting: %w", err)
	}
	if f.ContentType != contentAuth {
		nc.Close()
		return nil, fmt.Errorf("%w: greeting %q instead of %s", errProtocol, f.ContentType, contentAuth)
	}
	_ = nc.SetReadDeadline(time.Time{})
	go c.readLoop(nil, h, nil)
	if _, err := c.cmds.send(context.Background(), "auth", "auth "+password); err != nil {
		c.close()
		var re *ReplyError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("authentication refused (-ERR %s): check event_socket.conf's password", re.Text)
		}
		return nil, err
	}
	return c, nil
}

// CheckInbound connects to FreeSWITCH's inbound Event Socket, logs in and
// leaves: what `eslapp check` reports about the socket-less connection.
func CheckInbound(addr, password string, timeout time.Duration) error {
	c, err := dialInbound(addr, password, timeout, nil, func() *slog.Logger { return slog.New(slog.DiscardHandler) }, discardFrames{})
	if err != nil {
		return err
	}
	_, _ = c.cmds.send(context.Background(), "exit", "exit")
	c.close()
	return nil
}

// discardFrames takes a connection's events and notices and does nothing.
type discardFrames struct{}

func (discardFrames) event(Event, []byte) {}
func (discardFrames) notice(*Frame) error { return nil }
