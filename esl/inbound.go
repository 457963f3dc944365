package esl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime/debug"
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
	// DefaultStartSubclass. Two eslapp processes on one FreeSWITCH need
	// two subclasses: each takes every call its subclass announces.
	Subclass string
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
	// MaxCalls refuses calls beyond this many at once (0: no limit).
	MaxCalls int
	// VarFilter chooses the channel variables a call keeps; nil keeps all.
	VarFilter VarFilter
	// Logger gets the connection's log; calls log with their UUID.
	Logger *slog.Logger
	// Handler runs one call; it must hand the call on (InboundCall.HandBack,
	// Transfer or Hangup) before it returns, else the dialplan's safety
	// net routes it.
	Handler func(ctx context.Context, c *InboundCall)
	// Refuse hands back a call eslapp will not run (MaxCalls, draining);
	// nil hands it back with HandBack("OnError") and no outputs.
	Refuse func(ctx context.Context, c *InboundCall, why error)
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
	// Calls is the number of calls running; Started counts the calls
	// taken, Refused those handed back unrun.
	Calls            int
	Started, Refused uint64
	Wire             WireStats
}

// Inbound is eslapp's shared inbound connection. NewInbound, then Serve
// until Shutdown or Close.
//
// It runs on eslapp's own framing, like a call's socket: one read loop that
// matches replies to commands in order and applies events in the order
// FreeSWITCH wrote them. (eslgo v1.4.1's client was the first choice; its
// Conn.close deletes from the map of response channels that its auth and
// disconnect goroutines read without a lock, so every connection that ends
// is a data race, and it hands each event to a goroutine of its own.)
type Inbound struct {
	cfg InboundConfig
	log *slog.Logger

	callCtx    context.Context
	cancelCall context.CancelCauseFunc
	stop       chan struct{} // closed by Shutdown/Close: no more connections
	stopOnce   sync.Once
	served     chan struct{} // closed when Serve has returned
	handlers   sync.WaitGroup
	wire       wireCounters

	mu       sync.Mutex
	conn     *inboundConn  // nil while disconnected
	up       chan struct{} // closed while connected; replaced when lost
	bye      chan struct{} // closed by Close: the connection's end is not a failure
	state    InboundState
	since    time.Time
	lastErr  string
	calls    map[string]*InboundCall
	draining bool
	idle     chan struct{} // closed when draining and no call is left
	maxCalls int           // cfg.MaxCalls, then SetMaxCalls

	connects, failures, started, refused atomic.Uint64
}

// NewInbound checks the configuration; Serve connects.
func NewInbound(cfg InboundConfig) (*Inbound, error) {
	if cfg.Address == "" {
		return nil, errors.New("esl: inbound connection without an address")
	}
	if cfg.Handler == nil {
		return nil, errors.New("esl: inbound connection without a handler")
	}
	if cfg.Subclass == "" {
		cfg.Subclass = DefaultStartSubclass
	}
	if !IsEventSubclass(cfg.Subclass) {
		return nil, fmt.Errorf("esl: %q is not an event subclass", cfg.Subclass)
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	if cfg.ProbeEvery <= 0 {
		cfg.ProbeEvery = 5 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 200 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(10*time.Second, cfg.MinBackoff)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	in := &Inbound{
		cfg:      cfg,
		log:      cfg.Logger.With("freeswitch", cfg.Address),
		stop:     make(chan struct{}),
		served:   make(chan struct{}),
		up:       make(chan struct{}),
		bye:      make(chan struct{}),
		calls:    make(map[string]*InboundCall),
		since:    time.Now(),
		maxCalls: cfg.MaxCalls,
	}
	in.callCtx, in.cancelCall = context.WithCancelCause(context.Background())
	return in, nil
}

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

// SetMaxCalls replaces max_calls (0: no limit) for the calls announced
// from now on.
func (in *Inbound) SetMaxCalls(n int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.maxCalls = max(n, 0)
}

// Stats reports the connection's state and counters.
func (in *Inbound) Stats() InboundStats {
	in.mu.Lock()
	defer in.mu.Unlock()
	return InboundStats{
		State: in.state, Since: in.since, LastError: in.lastErr,
		Connects: in.connects.Load(), Failures: in.failures.Load(),
		Calls: len(in.calls), Started: in.started.Load(), Refused: in.refused.Load(),
		Wire: in.wire.stats(),
	}
}

// Serve keeps the connection up until Shutdown or Close: it connects,
// subscribes, and reconnects with backoff whenever the connection fails or
// is lost. Calls running when it is lost go on: their commands wait for the
// next connection, within their timeout.
func (in *Inbound) Serve() {
	defer close(in.served)
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
func (in *Inbound) connect() (*inboundConn, error) {
	conn, err := dialInbound(in, in.cfg.Address, in.cfg.Password)
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
		"event plain CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP CUSTOM " + in.cfg.Subclass,
	}
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
func (in *Inbound) hold(conn *inboundConn) string {
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
func (in *Inbound) drop(conn *inboundConn, why string) {
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
	ctx, cancel := context.WithTimeout(ctx, in.cfg.CommandTimeout)
	defer cancel()
	in.mu.Lock()
	conn, up := in.conn, in.up
	in.mu.Unlock()
	if conn == nil {
		select {
		case <-up:
		case <-ctx.Done():
			return "", fmt.Errorf("%s: %w (no connection to FreeSWITCH)", what, ErrDisconnected)
		}
		in.mu.Lock()
		conn = in.conn
		in.mu.Unlock()
		if conn == nil {
			return "", fmt.Errorf("%s: %w", what, ErrDisconnected)
		}
	}
	return conn.cmds.send(ctx, what, cmd)
}

// onEvent applies one event, on the connection's read loop: a start event
// starts a call; any other goes to the call its Unique-ID names.
func (in *Inbound) onEvent(ev Event, body []byte) {
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

// start takes a call the dialplan handed over.
func (in *Inbound) start(body []byte) {
	data, err := channelDataFromEvent(body, in.cfg.VarFilter)
	if err != nil {
		in.log.Warn("start event not taken: the dialplan's safety net will route the call", "err", err)
		return
	}
	id := data.UUID()
	c := newInboundCall(in, data)
	in.mu.Lock()
	if _, dup := in.calls[id]; dup {
		in.mu.Unlock()
		return
	}
	var why error
	switch {
	case in.draining:
		why = fmt.Errorf("eslapp is shutting down: %w", ErrShutdown)
	case in.maxCalls > 0 && len(in.calls) >= in.maxCalls:
		why = errors.New("eslapp at max_calls")
	}
	in.calls[id] = c
	in.handlers.Add(1)
	in.mu.Unlock()
	go in.run(c, why)
}

// run is a call's goroutine: subscribe to its events, run it (or refuse
// it), then stop its events.
func (in *Inbound) run(c *InboundCall, why error) {
	defer in.handlers.Done()
	defer in.forget(c)
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("panic running the call; the dialplan's safety net will route it", "panic", fmt.Sprint(p))
		}
	}()
	// A refused call is handed back even when eslapp is shutting down
	// (its calls' context is cancelled then): with a deadline of its own.
	ctx := c.ctx
	if why != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(c.ctx), 2*in.cfg.CommandTimeout)
		defer cancel()
	}
	// Subscribe before anything is executed: the call's events pass the
	// connection's filters from here on.
	if _, err := in.send(ctx, "filter", "filter Unique-ID "+c.uuid); err != nil {
		c.log.Warn("call not taken: subscribing to its events failed; the dialplan's safety net will route it", "err", err)
		return
	}
	c.filtered = true
	if why != nil {
		in.refused.Add(1)
		c.log.Info("call handed back to the dialplan", "why", why.Error())
		if in.cfg.Refuse != nil {
			in.cfg.Refuse(ctx, c, why)
		} else {
			_ = c.HandBack(ctx, "OnError")
		}
		return
	}
	in.started.Add(1)
	in.cfg.Handler(c.ctx, c)
}

// forget stops a call's events and drops it.
func (in *Inbound) forget(c *InboundCall) {
	if c.filtered {
		// Best effort: a filter left behind costs FreeSWITCH a comparison
		// per event until the connection ends, nothing more.
		ctx, cancel := context.WithTimeout(context.Background(), in.cfg.CommandTimeout)
		_, err := in.send(ctx, "filter delete", "filter delete Unique-ID "+c.uuid)
		cancel()
		if err != nil {
			c.log.Debug("filter not deleted", "err", err)
		}
	}
	c.end(fmt.Errorf("%w: the call left eslapp", ErrHangup))
	in.mu.Lock()
	delete(in.calls, c.uuid)
	if in.draining && len(in.calls) == 0 && in.idle != nil {
		close(in.idle)
		in.idle = nil
	}
	in.mu.Unlock()
}

// Shutdown stops taking calls (new ones are handed back), waits for the
// running ones until ctx ends, then ends them, and closes the connection.
// It returns the number of calls ended by the deadline.
func (in *Inbound) Shutdown(ctx context.Context) (ended int) {
	in.mu.Lock()
	in.draining = true
	idle := make(chan struct{})
	if len(in.calls) == 0 {
		close(idle)
	} else {
		in.idle = idle
	}
	in.mu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
		in.mu.Lock()
		ended = len(in.calls)
		in.mu.Unlock()
		in.cancelCall(ErrShutdown)
	}
	in.handlers.Wait()
	in.stopOnce.Do(func() { close(in.stop) })
	<-in.served
	return ended
}

// Close ends calls and the connection at once.
func (in *Inbound) Close() {
	in.mu.Lock()
	in.draining = true
	in.mu.Unlock()
	in.cancelCall(ErrShutdown)
	in.stopOnce.Do(func() { close(in.stop) })
	in.handlers.Wait()
}

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

// inboundConn is one inbound Event Socket connection: the command queue
// and the read loop, which ends the connection on its first error.
type inboundConn struct {
	in   *Inbound
	nc   net.Conn
	fr   *FrameReader
	cmds commands

	done      chan struct{} // the read loop has ended
	closeOnce sync.Once
	mu        sync.Mutex
	err       error
}

// dialInbound connects and authenticates: FreeSWITCH greets with
// auth/request, eslapp answers "auth PASSWORD", FreeSWITCH accepts with
// "+OK accepted" (else "-ERR invalid" and it closes).
func dialInbound(in *Inbound, addr, password string) (*inboundConn, error) {
	d := net.Dialer{Timeout: in.cfg.CommandTimeout, KeepAlive: -1}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &inboundConn{in: in, nc: nc, fr: NewFrameReader(nc), done: make(chan struct{})}
	c.fr.SetLimits(defaultMaxFrame, defaultMaxFrame)
	c.cmds = commands{nc: nc, timeout: in.cfg.CommandTimeout, wire: &in.wire, log: func() *slog.Logger { return in.log }, fail: c.close}
	_ = nc.SetReadDeadline(time.Now().Add(in.cfg.CommandTimeout))
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
	go c.readLoop()
	if strings.ContainsAny(password, "\r\n") {
		c.close()
		return nil, errors.New("the password holds a line break")
	}
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

func (c *inboundConn) readLoop() {
	var err error
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("esl: panic reading from FreeSWITCH: %v", p)
			c.in.log.Error("panic in the inbound read loop; reconnecting", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		c.cmds.shut()
		close(c.done)
		c.close()
	}()
	for {
		f, rerr := c.fr.Next()
		if rerr != nil {
			err = rerr
			return
		}
		switch f.ContentType {
		case contentReply:
			err = c.cmds.deliver(reply{text: f.Get("Reply-Text")})
		case contentAPI:
			err = c.cmds.deliver(reply{text: string(f.Body)})
		case contentEventPlain:
			c.in.wire.events.Add(1)
			c.in.wire.eventBytes.Add(uint64(len(f.Header) + len(f.Body)))
			var ev Event
			if ev, err = parseEvent(f.Body, time.Now()); err == nil {
				c.in.onEvent(ev, f.Body)
			}
		case contentDisconnect:
			err = fmt.Errorf("disconnect notice: %s", strings.TrimSpace(string(f.Body)))
		}
		if err != nil {
			return
		}
	}
}

// why is what ended the read loop.
func (c *inboundConn) why() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		return "connection closed"
	}
	return c.err.Error()
}

func (c *inboundConn) close() { c.closeOnce.Do(func() { _ = c.nc.Close() }) }

// CheckInbound connects to FreeSWITCH's inbound Event Socket, logs in and
// leaves: what `eslapp check` reports about the socket-less connection.
func CheckInbound(addr, password string, timeout time.Duration) error {
	in := &Inbound{cfg: InboundConfig{CommandTimeout: timeout}, log: slog.New(slog.DiscardHandler)}
	c, err := dialInbound(in, addr, password)
	if err != nil {
		return err
	}
	_, _ = c.cmds.send(context.Background(), "exit", "exit")
	c.close()
	return nil
}
