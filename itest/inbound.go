package itest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// A minimal client of FreeSWITCH's inbound Event Socket, enough for the
// end-to-end tests to ask FreeSWITCH what happened to each call: auth,
// api, event plain, and the events that follow. Framing (readFrame) and
// event parsing (parseEvent) are pure functions over bytes.

// maxFrameBody bounds a frame's body: FreeSWITCH's channel events are about
// 6 KB; anything near this limit is a framing error, not an event.
const maxFrameBody = 16 << 20

// frame is one Event Socket message: its outer headers (never URL-encoded)
// and its body.
type frame struct {
	headers map[string]string
	body    []byte
}

func (f frame) contentType() string { return f.headers["Content-Type"] }

// readFrame reads one frame: header lines up to an empty line, then
// Content-Length bytes of body.
func readFrame(r *bufio.Reader) (frame, error) {
	f := frame{headers: map[string]string{}}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if err == io.EOF && line == "" && len(f.headers) == 0 {
				return f, io.EOF
			}
			return f, fmt.Errorf("esl: reading headers: %w", noEOF(err))
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if len(f.headers) == 0 {
				continue // stray blank line between frames
			}
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return f, fmt.Errorf("esl: header line without a colon: %q", line)
		}
		f.headers[name] = strings.TrimLeft(value, " ")
	}
	if cl, ok := f.headers["Content-Length"]; ok {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > maxFrameBody {
			return f, fmt.Errorf("esl: bad Content-Length %q", cl)
		}
		f.body = make([]byte, n)
		if _, err := io.ReadFull(r, f.body); err != nil {
			return f, fmt.Errorf("esl: reading a %d-byte body: %w", n, noEOF(err))
		}
	}
	return f, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

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

// parseEvent parses the body of a text/event-plain frame: "Name: value"
// lines with URL-encoded values, an empty line, and Content-Length bytes of
// event body when the event has one.
func parseEvent(b []byte) (Event, error) {
	ev := Event{Headers: map[string]string{}}
	rest := b
	for len(rest) > 0 {
		var line []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			line, rest = rest, nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			break
		}
		name, value, ok := strings.Cut(string(line), ":")
		if !ok {
			return ev, fmt.Errorf("esl: event header without a colon: %q", line)
		}
		value = strings.TrimLeft(value, " ")
		if dec, err := url.PathUnescape(value); err == nil {
			value = dec
		}
		ev.Headers[name] = value
	}
	if cl, ok := ev.Headers["Content-Length"]; ok {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > len(rest) {
			return ev, fmt.Errorf("esl: event Content-Length %q with %d bytes left", cl, len(rest))
		}
		ev.Body = string(rest[:n])
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
	f, err := readFrame(c.r)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if f.contentType() != "auth/request" {
		conn.Close()
		return nil, fmt.Errorf("esl: %s greeted with %q, not auth/request", addr, f.contentType())
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
		f, err := readFrame(c.r)
		if err != nil {
			return "", err
		}
		var reply string
		switch f.contentType() {
		case "command/reply":
			reply = f.headers["Reply-Text"]
		case "api/response":
			reply = string(f.body)
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
		f, err := readFrame(c.r)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
				return Event{}, errDisconnected
			}
			return Event{}, err
		}
		switch f.contentType() {
		case "text/event-plain":
			return parseEvent(f.body)
		case "text/disconnect-notice":
			return Event{}, errDisconnected
		}
	}
}

func (c *InboundConn) Close() error { return c.conn.Close() }
