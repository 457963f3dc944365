package esltest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/eslapp/eslapp/esl"
)

// Frame is one frame FreeSWITCH sends on an event socket: a header block
// ended by a blank line, then Content-Length bytes of body when that header
// is present. The connect reply is a frame too (its header block is the
// serialized CHANNEL_DATA event).
type Frame struct {
	// Headers are the header lines in order; values are raw (the connect
	// reply's values are URL-encoded, a command/reply's are not).
	Headers []Header
	// Body is the Content-Length body, nil when there is none.
	Body []byte
}

// Get returns the first header with this name (exact case), or "".
func (f *Frame) Get(name string) string {
	v, _ := lookupHeader(f.Headers, name)
	return v
}

// Has reports whether a header with this name (exact case) is present.
func (f *Frame) Has(name string) bool {
	_, ok := lookupHeader(f.Headers, name)
	return ok
}

// lookupHeader finds the first header with this name (exact case).
func lookupHeader(hs []Header, name string) (string, bool) {
	for _, h := range hs {
		if h.Name == name {
			return h.Value, true
		}
	}
	return "", false
}

// Kind classifies the frame: "connect" (the CHANNEL_DATA reply), "reply"
// (command/reply), "api" (api/response), "event" (text/event-plain),
// "disconnect" or "linger" (text/disconnect-notice by Content-Disposition),
// or the Content-Type for anything else.
func (f *Frame) Kind() string {
	ct := f.Get("Content-Type")
	switch {
	case f.Get("Event-Name") == "CHANNEL_DATA" && ct == "command/reply":
		return "connect"
	case ct == "command/reply":
		return "reply"
	case ct == "api/response":
		return "api"
	case ct == "text/event-plain":
		return "event"
	case ct == "text/disconnect-notice" && f.Get("Content-Disposition") == "linger":
		return "linger"
	case ct == "text/disconnect-notice":
		return "disconnect"
	}
	return ct
}

// MaxFrameHeader and MaxFrameBody bound what ReadFrame accepts.
const (
	MaxFrameHeader = 1 << 20
	MaxFrameBody   = 64 << 20
)

// ErrMalformedFrame is wrapped by the errors ReadFrame returns for input
// that is not an ESL frame: eslapp's own (esl.ErrMalformedFrame).
var ErrMalformedFrame = esl.ErrMalformedFrame

// ReadFrame reads one frame of what FreeSWITCH sends, by eslapp's own
// framing rules (esl.ReadFrame): what the tests read is what eslapp reads.
// At EOF before a frame it returns io.EOF.
func ReadFrame(r *bufio.Reader) (*Frame, error) {
	raw, err := esl.ReadFrame(r, MaxFrameHeader, MaxFrameBody)
	if err != nil {
		return nil, err
	}
	f := &Frame{Body: raw.Body}
	for line := range bytes.SplitSeq(raw.Header, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		name, val, _ := bytes.Cut(line, []byte(":"))
		f.Headers = append(f.Headers, Header{Name: string(name), Value: string(bytes.TrimLeft(val, " \t"))})
	}
	if f.Body == nil && f.Has("Content-Length") {
		f.Body = []byte{} // "Content-Length: 0": a body, empty
	}
	return f, nil
}

// ParseFrames splits a byte stream of frames, such as a transcript's
// NAME.recv.raw, into frames. Trailing bytes that are not a whole frame are
// an error.
func ParseFrames(b []byte) ([]*Frame, error) {
	r := bufio.NewReader(bytes.NewReader(b))
	var out []*Frame
	for {
		f, err := ReadFrame(r)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, f)
	}
}

// Event is a parsed text/event-plain body (or the connect reply's header
// block): headers with URL-decoded values, and the event's own body.
type Event struct {
	Headers []Header
	Body    []byte
}

// Get returns the first header with this name (exact case), or "".
func (e *Event) Get(name string) string {
	v, _ := lookupHeader(e.Headers, name)
	return v
}

// Has reports whether a header with this name is present.
func (e *Event) Has(name string) bool {
	_, ok := lookupHeader(e.Headers, name)
	return ok
}

// Names returns the header names in order.
func (e *Event) Names() []string {
	out := make([]string, len(e.Headers))
	for i, h := range e.Headers {
		out[i] = h.Name
	}
	return out
}

// ParseEventPlain parses a text/event-plain body as switch_event_serialize
// writes it: URL-encoded "Name: value\n" lines, then either "\n" (no body)
// or a last header "Content-Length: N", "\n", and N raw bytes.
func ParseEventPlain(b []byte) (*Event, error) {
	e := &Event{}
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil, fmt.Errorf("%w: event line without newline", ErrMalformedFrame)
		}
		line := b[:i]
		b = b[i+1:]
		if len(line) == 0 {
			if len(b) != 0 {
				return nil, fmt.Errorf("%w: %d bytes after the end of the event", ErrMalformedFrame, len(b))
			}
			return e, nil
		}
		name, val, ok := bytes.Cut(line, []byte(": "))
		if !ok || len(name) == 0 {
			return nil, fmt.Errorf("%w: event header %q", ErrMalformedFrame, line)
		}
		e.Headers = append(e.Headers, Header{Name: string(name), Value: esl.URLDecode(string(val))})
		if string(name) == "Content-Length" && len(b) > 0 && b[0] == '\n' {
			n, err := strconv.Atoi(string(val))
			if err != nil || n < 0 || n != len(b)-1 {
				return nil, fmt.Errorf("%w: event body length %q for %d bytes", ErrMalformedFrame, val, len(b)-1)
			}
			e.Body = append([]byte(nil), b[1:]...)
			return e, nil
		}
	}
	return nil, fmt.Errorf("%w: event without final blank line", ErrMalformedFrame)
}

// Event returns the frame as an event: the body of a text/event-plain frame,
// or the header block of the connect reply, URL-decoded.
func (f *Frame) Event() (*Event, error) {
	switch f.Kind() {
	case "event":
		return ParseEventPlain(f.Body)
	case "connect":
		e := &Event{Headers: make([]Header, len(f.Headers))}
		for i, h := range f.Headers {
			e.Headers[i] = Header{Name: h.Name, Value: esl.URLDecode(h.Value)}
		}
		return e, nil
	}
	return nil, fmt.Errorf("%w: %s frame is not an event", ErrMalformedFrame, strings.TrimSpace(f.Kind()))
}
