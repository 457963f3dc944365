package esl

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"
)

// conn is one Event Socket connection — a call's own outbound socket or a
// shared inbound connection — with its command queue and its one read
// loop. The read loop matches each reply to the oldest command still
// waiting (FreeSWITCH answers in the order it reads), parses each event
// once and hands it on in the order FreeSWITCH wrote it; its end (a read
// error, the end of the stream, a protocol violation or a panic) fails the
// commands waiting and closes the connection.
type conn struct {
	nc   net.Conn
	fr   *FrameReader // the read loop's alone
	cmds commands
	wire *wireCounters
	log  func() *slog.Logger

	done      chan struct{} // closed when the read loop has ended
	closeOnce sync.Once
	mu        sync.Mutex
	err       error // why the read loop ended; nil: the stream ended
}

func newConn(nc net.Conn, timeout time.Duration, wire *wireCounters, log func() *slog.Logger) *conn {
	if wire == nil {
		wire = &wireCounters{}
	}
	c := &conn{nc: nc, fr: NewFrameReader(nc), wire: wire, log: log, done: make(chan struct{})}
	c.cmds = commands{nc: nc, timeout: timeout, wire: wire, log: log, fail: c.close}
	return c
}

// frameHandler is what a connection's read loop hands over besides
// replies: events, and disconnect notices (an error ends the loop).
type frameHandler interface {
	event(ev Event, body []byte)
	notice(f *Frame) error
}

// errProtocol marks a peer that broke the Event Socket protocol.
var errProtocol = errors.New("esl: protocol violation")

// readLoop runs the connection's reader until the stream ends or breaks.
// first, when not nil, runs before the loop (a socket's connect reply);
// ended runs last, with why the loop stopped, after the commands waiting
// have failed and the connection is closed.
func (c *conn) readLoop(first func() error, h frameHandler, ended func(err error)) {
	var err error
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("esl: panic reading from FreeSWITCH: %v", p)
			c.log().Error("panic in the read loop; closing the connection", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		c.cmds.shut()
		close(c.done)
		c.close()
		if ended != nil {
			ended(err)
		}
	}()
	if first != nil {
		if err = first(); err != nil {
			return
		}
	}
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
			c.wire.events.Add(1)
			c.wire.eventBytes.Add(uint64(len(f.Header) + len(f.Body)))
			var ev Event
			if ev, err = parseEvent(f.Body, time.Now()); err == nil {
				h.event(ev, f.Body)
			}
		case contentDisconnect:
			err = h.notice(&f)
		default:
			// log/data, text/event-json, ...: nothing eslapp asks for.
		}
		if err != nil {
			return
		}
	}
}

// why is what ended the read loop.
func (c *conn) why() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		return "connection closed"
	}
	return c.err.Error()
}

func (c *conn) close() { c.closeOnce.Do(func() { _ = c.nc.Close() }) }

// positiveOr sets a configured bound that is not positive to its default.
func positiveOr[T ~int | ~int64](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// loggerOrDiscard is log, or a logger that discards when there is none.
func loggerOrDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}
