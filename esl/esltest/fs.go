package esltest

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure one fake FreeSWITCH host.
type Options struct {
	// Logf, when set, receives a line per notable thing the double does
	// (unknown apps, dropped commands, socket errors). Tests pass t.Logf.
	Logf func(format string, args ...any)
	// Hostname is FreeSWITCH-Hostname and FreeSWITCH-Switchname, and the
	// global variable "hostname". Default "vm", as in the transcripts.
	Hostname string
	// IPv4 and IPv6 are FreeSWITCH-IPv4/-IPv6 (defaults from the transcripts).
	IPv4, IPv6 string
	// CoreUUID is the Core-UUID of every event (default: random).
	CoreUUID string
	// GlobalVars are FreeSWITCH's global variables, read by $${name} and by
	// ${name} when the channel has no such variable. hostname, local_ip_v4
	// and sound_prefix are set by default; entries here override them.
	GlobalVars map[string]string
	// ConnectTimeout is how long the socket app waits for the first command
	// (read_packet's 25 s). Default 25 s.
	ConnectTimeout time.Duration
	// NoRecordFrames stops Call.Sent from recording frames, to keep memory
	// flat in load tests with thousands of calls.
	NoRecordFrames bool
	// Second is how long the scheduler's second lasts (sched_api +N fires
	// after N of them). Default time.Second; tests shorten it.
	Second time.Duration
}

// FreeSWITCH is one fake FreeSWITCH host. It dials the application's
// outbound-socket listener once per call, as the dialplan's
// "socket ADDR async full" does, and shares a Core-UUID, a global
// Event-Sequence counter and global variables among its calls. API
// commands (uuid_break, uuid_getvar, ...) reach any call of the same host.
// It is safe for concurrent use.
type FreeSWITCH struct {
	opts     Options
	coreUUID string
	seq      atomic.Uint64
	globals  map[string]string

	sched scheduler
	// sys runs api commands for no call and no connection: the
	// scheduler's (sch_api_callback runs them without a session).
	sys *Call

	mu        sync.Mutex
	calls     map[string]*Call
	fired     []FiredEvent
	inbound   map[*inboundConn]struct{}
	inboundLn []net.Listener
	// inboundCmds are the command lines every inbound connection sent,
	// in order (not with Options.NoRecordFrames).
	inboundCmds []string
	// inboundLag delays every inbound command (SetInboundLag).
	inboundLag atomic.Int64
}

// SetInboundLag makes every inbound connection take d over each command
// before running it, one command after another: a FreeSWITCH whose
// listener threads have fallen behind (each reads its connection's
// commands a byte at a time, and a loaded machine starves it). 0 ends it.
func (fs *FreeSWITCH) SetInboundLag(d time.Duration) { fs.inboundLag.Store(int64(d)) }

// InboundCommands returns the command lines (each command's first line)
// received on every inbound connection so far, in order.
func (fs *FreeSWITCH) InboundCommands() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]string(nil), fs.inboundCmds...)
}

// FiredEvent is an event a call fired with sendevent (and FreeSWITCH
// delivered to inbound subscribers), or queued to a channel because it
// carried a Unique-ID header.
type FiredEvent struct {
	At       time.Time
	From     string // UUID of the call whose socket sent it
	Name     string // event name (CUSTOM, ...)
	Subclass string // Event-Subclass
	// QueuedTo is the Unique-ID of the channel the event was queued to
	// instead of being fired (switch_core_session_queue_event); empty when
	// it was fired.
	QueuedTo string
	Headers  []Header // as sent, raw
	Body     []byte
}

// New returns a fake FreeSWITCH host.
func New(opts Options) *FreeSWITCH {
	if opts.Hostname == "" {
		opts.Hostname = "vm"
	}
	if opts.IPv4 == "" {
		opts.IPv4 = "192.0.2.2"
	}
	if opts.IPv6 == "" {
		opts.IPv6 = "fd00::2"
	}
	if opts.CoreUUID == "" {
		opts.CoreUUID = NewUUID()
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 25 * time.Second
	}
	if opts.Second <= 0 {
		opts.Second = time.Second
	}
	fs := &FreeSWITCH{opts: opts, coreUUID: opts.CoreUUID, calls: make(map[string]*Call), inbound: make(map[*inboundConn]struct{})}
	fs.globals = map[string]string{
		"hostname":     opts.Hostname,
		"switchname":   opts.Hostname,
		"local_ip_v4":  opts.IPv4,
		"domain":       opts.IPv4,
		"sound_prefix": "/usr/share/freeswitch/sounds/en/us/callie",
		"base_dir":     "/usr",
	}
	for k, v := range opts.GlobalVars {
		fs.globals[k] = v
	}
	fs.seq.Store(900)
	fs.sched.fs = fs
	fs.sys = &Call{fs: fs, noRecord: true, ctrl: make(chan func()), done: make(chan struct{}), notify: make(chan struct{})}
	return fs
}

func (fs *FreeSWITCH) logf(format string, args ...any) {
	if fs.opts.Logf != nil {
		fs.opts.Logf(format, args...)
	}
}

func (fs *FreeSWITCH) global(name string) (string, bool) {
	for k, v := range fs.globals {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// Dial connects one call to the application listening on addr, the way the
// socket app does, and starts serving it: the call waits for "connect".
// The context bounds the TCP connect only.
func (fs *FreeSWITCH) Dial(ctx context.Context, addr string, opts CallOptions) (*Call, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("esltest: dial %s: %w", addr, err)
	}
	return fs.Serve(conn, addr, opts)
}

// Serve runs a call over an established connection (for tests that use
// net.Pipe or their own dialer). addr is what the dialplan's socket
// application argument names, e.g. "127.0.0.1:8084".
func (fs *FreeSWITCH) Serve(conn net.Conn, addr string, opts CallOptions) (*Call, error) {
	c := newCall(fs, conn, addr, opts)
	fs.mu.Lock()
	if _, dup := fs.calls[c.uuid]; dup {
		fs.mu.Unlock()
		conn.Close()
		return nil, fmt.Errorf("esltest: a call with UUID %s already exists", c.uuid)
	}
	fs.calls[c.uuid] = c
	fs.mu.Unlock()
	go c.readLoop(bufio.NewReaderSize(conn, 4096))
	go c.run()
	return c, nil
}

// Call returns the live call with this UUID.
func (fs *FreeSWITCH) Call(uuid string) (*Call, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	c, ok := fs.calls[uuid]
	return c, ok
}

// Calls returns the number of calls whose connection is still open.
func (fs *FreeSWITCH) Calls() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.calls)
}

// FiredEvents returns the events calls fired or queued with sendevent.
func (fs *FreeSWITCH) FiredEvents() []FiredEvent {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]FiredEvent(nil), fs.fired...)
}

func (fs *FreeSWITCH) addFired(e FiredEvent) {
	fs.mu.Lock()
	fs.fired = append(fs.fired, e)
	fs.mu.Unlock()
}

func (fs *FreeSWITCH) remove(c *Call) {
	fs.mu.Lock()
	if fs.calls[c.uuid] == c {
		delete(fs.calls, c.uuid)
	}
	fs.mu.Unlock()
}

// locate is switch_core_session_locate: a call of this host whose channel
// is still up.
func (fs *FreeSWITCH) locate(uuid string) *Call {
	fs.mu.Lock()
	c := fs.calls[uuid]
	fs.mu.Unlock()
	if c == nil || c.isHungUp() {
		return nil
	}
	return c
}

// NewUUID returns a random version 4 UUID, as FreeSWITCH formats them.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
