package itest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/eslapp/eslapp/esl/esltest"
)

// A minimal client of FreeSWITCH's inbound Event Socket, enough for the
// end-to-end tests to ask FreeSWITCH what happened to each call: auth,
// api, event plain, and the events that follow. Frames and events are read
// by the FreeSWITCH double's reader (esltest.ReadFrame, which is eslapp's own
// framing rule, and esltest.ParseEventPlain): one reader in all the tests.

// Event is one FreeSWITCH event in plain format: its headers, URL-decoded,
// and its body (a CUSTOM event's payload, for instance).
type Event struct {
	Headers map[string]string
	Body    string
}

// Get returns a header's value, "" when absent.
func (e Event) Get(name string) string { return e.Headers[name] }

// Name is the event's name, with the subclass of a CUSTOM event.
func (e Event) Name() string {
	if sub := e.Get("Event-Subclass"); sub != "" {
		return e.Get("Event-Name") + " " + sub
	}
	return e.Get("Event-Name")
}

// Sequence is FreeSWITCH's Event-Sequence, which orders events.
func (e Event) Sequence() int64 {
	n, _ := strconv.ParseInt(e.Get("Event-Sequence"), 10, 64)
	return n
}

// Time is Event-Date-Timestamp (microseconds since the epoch, FreeSWITCH's
// clock); zero when absent.
func (e Event) Time() time.Time {
	us, err := strconv.ParseInt(e.Get("Event-Date-Timestamp"), 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMicro(us)
}

// newEvent makes an Event of a text/event-plain body.
func newEvent(body []byte) (Event, error) {
	pe, err := esltest.ParseEventPlain(body)
	if err != nil {
		return Event{}, err
	}
	ev := Event{Headers: make(map[string]string, len(pe.Headers)), Body: string(pe.Body)}
	for _, h := range pe.Headers {
		if _, dup := ev.Headers[h.Name]; !dup {
			ev.Headers[h.Name] = h.Value
		}
	}
	if ev.Get("Event-Name") == "" {
		return ev, errors.New("esl: event without Event-Name")
	}
	return ev, nil
}

// InboundConn is an authenticated inbound Event Socket connection.
type InboundConn struct {
	conn net.Conn
	r    *bufio.Reader
}

// errDisconnected reports FreeSWITCH's disconnect notice or a closed
// connection.
var errDisconnected = errors.New("esl: FreeSWITCH closed the connection")

// DialInbound connects to FreeSWITCH's inbound Event Socket and logs in.
func DialInbound(ctx context.Context, addr, password string) (*InboundConn, error) {
	if strings.ContainsAny(password, "\r\n") {
		return nil, errors.New("esl: the password holds a line break")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &InboundConn{conn: conn, r: bufio.NewReader(conn)}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	f, err := esltest.ReadFrame(c.r)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if f.Get("Content-Type") != "auth/request" {
		conn.Close()
		return nil, fmt.Errorf("esl: %s greeted with %q, not auth/request", addr, f.Get("Content-Type"))
	}
	if _, err := c.Command("auth " + password); err != nil {
		conn.Close()
		return nil, fmt.Errorf("esl: auth on %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return c, nil
}

// command sends one command and returns its reply: Reply-Text of a
// command/reply, or the body of an api/response. A reply starting with
// -ERR is an error. Call it before subscribing to events.
func (c *InboundConn) Command(cmd string) (string, error) {
	if strings.ContainsAny(cmd, "\r\n") {
		return "", errors.New("esl: a command holds a line break")
	}
	if _, err := io.WriteString(c.conn, cmd+"\n\n"); err != nil {
		return "", err
	}
	for {
		f, err := esltest.ReadFrame(c.r)
		if err != nil {
			return "", err
		}
		var reply string
		switch f.Get("Content-Type") {
		case "command/reply":
			reply = f.Get("Reply-Text")
		case "api/response":
			reply = string(f.Body)
		case "text/disconnect-notice":
			return "", errDisconnected
		default:
			continue // an event that was already queued
		}
		if strings.HasPrefix(reply, "-ERR") {
			return reply, fmt.Errorf("%s: %s", strings.Fields(cmd)[0], strings.TrimSpace(reply))
		}
		return reply, nil
	}
}

// api runs an API command and returns its output, trimmed.
func (c *InboundConn) API(cmd string) (string, error) {
	out, err := c.Command("api " + cmd)
	return strings.TrimSpace(out), err
}

// next returns the next event.
func (c *InboundConn) Next() (Event, error) {
	for {
		f, err := esltest.ReadFrame(c.r)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
				return Event{}, errDisconnected
			}
			return Event{}, err
		}
		switch f.Get("Content-Type") {
		case "text/event-plain":
			return newEvent(f.Body)
		case "text/disconnect-notice":
			return Event{}, errDisconnected
		}
	}
}

func (c *InboundConn) Close() error { return c.conn.Close() }
