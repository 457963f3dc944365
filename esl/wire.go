package esl

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
)

// readChunk is how much wireConn reads from the socket at a time.
const readChunk = 16 << 10

// wireObserver receives what wireConn learns from the byte stream. Its
// methods run on eslgo's receive goroutine and must not block.
type wireObserver interface {
	// connectBlock is the header block of the first frame, the reply to
	// "connect". The slice is the observer's to keep.
	connectBlock(block []byte)
	// notice is a text/disconnect-notice; disposition is "linger" or
	// "disconnect".
	notice(disposition string)
	// closed is called once, when reading fails: io.EOF when FreeSWITCH
	// closed the connection, another error when it broke or eslapp closed it.
	closed(err error)
}

// wireConn is the net.Conn eslgo reads from. It passes FreeSWITCH's
// replies through unchanged, and
//
//   - reports the end of the connection, which eslgo's receive loop swallows
//     (so a TCP drop without a disconnect notice would leave a call waiting
//     forever);
//   - takes text/disconnect-notice frames out of the stream and reports them:
//     eslgo delivers them to a channel that only its own ListenAndServe
//     drains, so each notice would stall its receive loop for five seconds;
//   - keeps the connect reply (the channel data) for the session and hands
//     eslgo a plain "+OK" in its place, and slims every event down to the
//     headers the session reads (slimEvent): FreeSWITCH puts all channel
//     variables into every channel event, and eslgo would parse ~180 headers
//     into a map for each, which was the largest cost of a call;
//   - drops frames of a type eslgo has no channel for (it would stop reading
//     altogether), and refuses malformed ones by failing the read;
//   - counts the events it has handed on, which lets the session put events
//     back in order (see sequencer).
type wireConn struct {
	net.Conn
	obs wireObserver

	buf  []byte // buf[r:w] holds bytes read from the socket, not yet handed on
	r, w int
	// small is where a read waits for the next frame: a call spends most of
	// its life waiting, and should not hold a large buffer meanwhile. A frame
	// that does not fit moves to a pooled buffer.
	small [512]byte

	out      []byte // a rewritten frame being handed to eslgo
	outEvent bool   // ... which is an event
	outBuf   []byte // memory for out
	pass     int    // bytes of a frame passed through as it is, still to hand on
	skip     int    // bytes of a dropped frame still to discard

	connected bool // the connect reply has been seen

	eventsHanded atomic.Uint64 // event frames handed to eslgo in full

	closeOnce sync.Once
}

func newWireConn(c net.Conn, obs wireObserver) *wireConn {
	return &wireConn{Conn: c, obs: obs}
}

// connectOK stands in for the connect reply: eslapp reads the channel data
// from the original, eslgo needs only to see that the command succeeded.
var connectOK = []byte("Content-Type: command/reply\nReply-Text: %2BOK%0A\n\n")

// Read implements net.Conn for eslgo's receive loop. It runs on eslgo's
// goroutine, where a panic would end the whole process: a panic here ends
// this connection alone.
func (c *wireConn) Read(p []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, fmt.Errorf("esl: panic reading from FreeSWITCH: %v\n%s", r, debug.Stack())
			c.fail(err)
		}
	}()
	for {
		if len(c.out) > 0 {
			n := copy(p, c.out)
			c.out = c.out[n:]
			if len(c.out) == 0 && c.outEvent {
				c.eventsHanded.Add(1)
			}
			return n, nil
		}
		if c.pass > 0 {
			return c.readPass(p)
		}
		if c.skip > 0 {
			if err := c.discard(); err != nil {
				return 0, c.fail(err)
			}
			continue
		}
		h, ok, err := scanFrameHeader(c.buf[c.r:c.w])
		if err != nil {
			return 0, c.fail(err)
		}
		if !ok {
			if err := c.fill(0); err != nil {
				return 0, c.fail(err)
			}
			continue
		}
		if err := c.route(h); err != nil {
			return 0, c.fail(err)
		}
	}
}

// route decides what happens to the frame whose header block starts at c.r.
func (c *wireConn) route(h frameHeader) error {
	size := h.headerLen + h.contentLength
	switch {
	case h.contentType == contentDisconnect:
		// Notices are short (67 bytes of body at most): read them whole.
		c.skip = size
		c.obs.notice(h.disposition)
	case h.contentType == contentEventPlain:
		if err := c.fill(size); err != nil {
			return err
		}
		body := c.buf[c.r+h.headerLen : c.r+size]
		slim, mem, err := slimEvent(c.outBuf, body)
		if err != nil {
			return err
		}
		c.outBuf = mem
		c.out, c.outEvent = slim, true
		c.r += size
		c.compact()
	case h.contentType == contentReply && !c.connected:
		c.connected = true
		block := make([]byte, h.headerLen)
		copy(block, c.buf[c.r:c.r+h.headerLen])
		c.obs.connectBlock(block)
		c.out, c.outEvent = connectOK, false
		c.skip = size
	case h.contentType == contentReply, h.contentType == contentAPI:
		c.pass = size
	default:
		// auth/request, text/event-json, ... : nothing eslapp asks for.
		c.skip = size
	}
	return nil
}

// eventKeep are the event headers the session reads (newEvent, the
// sequencer), and the inner Content-Length of an event with a body.
var eventKeep = map[string]bool{
	"Event-Name": true, "Event-Sequence": true, "Unique-ID": true, "Event-Subclass": true,
	"Application": true, "Application-UUID": true, "Application-Response": true,
	"Playback-Status": true, "Hangup-Cause": true, "DTMF-Digit": true,
	"Content-Length": true,
}

// slimEvent writes to dst (reusing its memory) a text/event-plain frame
// holding only the headers of body that eventKeep lists, in their order,
// and the event's own body if it has one. It returns the frame and the
// memory to reuse next time.
func slimEvent(dst, body []byte) (frame, mem []byte, err error) {
	// The kept headers are at most a few hundred bytes: write them after a
	// gap for the frame's own headers, then move them into place.
	const gap = 64
	dst = append(dst[:0], make([]byte, gap)...)
	rest := body
	innerLen := -1
	for {
		i := indexNL(rest)
		if i < 0 {
			return nil, dst, fmt.Errorf("%w: event headers without an end", errFrame)
		}
		line := rest[:i]
		rest = rest[i+1:]
		if len(line) == 0 {
			break
		}
		if line[0] == 'v' {
			continue // variable_*: most of an event, and never kept
		}
		colon := indexColon(line)
		if colon <= 0 {
			return nil, dst, fmt.Errorf("%w: event header line without a name", errFrame)
		}
		name := line[:colon]
		if !eventKeep[string(name)] {
			continue
		}
		dst = append(dst, line...)
		dst = append(dst, '\n')
		if string(name) == "Content-Length" {
			v := line[colon+1:]
			for len(v) > 0 && v[0] == ' ' {
				v = v[1:]
			}
			n, err := strconv.Atoi(string(v))
			if err != nil || n < 0 || n > len(rest) {
				return nil, dst, fmt.Errorf("%w: bad event body length", errFrame)
			}
			innerLen = n
		}
	}
	dst = append(dst, '\n')
	if innerLen > 0 {
		dst = append(dst, rest[:innerLen]...)
	}
	bodyLen := len(dst) - gap
	var head [gap]byte
	h := append(head[:0], "Content-Length: "...)
	h = strconv.AppendInt(h, int64(bodyLen), 10)
	h = append(h, "\nContent-Type: text/event-plain\n\n"...)
	start := gap - len(h)
	copy(dst[start:], h)
	return dst[start:], dst[:0], nil
}

func indexNL(b []byte) int    { return bytes.IndexByte(b, '\n') }
func indexColon(b []byte) int { return bytes.IndexByte(b, ':') }

// readPass hands the current frame's bytes to eslgo: first what is buffered,
// then straight from the socket.
func (c *wireConn) readPass(p []byte) (int, error) {
	if len(p) > c.pass {
		p = p[:c.pass]
	}
	var n int
	if c.r < c.w {
		n = copy(p, c.buf[c.r:c.w])
		c.r += n
		c.compact()
	} else {
		var err error
		n, err = c.Conn.Read(p)
		if n == 0 && err != nil {
			return 0, c.fail(err)
		}
	}
	c.pass -= n
	return n, nil
}

// discard drops the buffered and unread bytes of a frame nobody reads.
func (c *wireConn) discard() error {
	if c.r < c.w {
		n := min(c.skip, c.w-c.r)
		c.r += n
		c.skip -= n
		c.compact()
		return nil
	}
	n, err := io.CopyN(io.Discard, c.Conn, int64(c.skip))
	c.skip -= int(n)
	return err
}

// fill reads from the socket until buf holds at least need bytes from c.r
// (need 0: at least one more byte), growing buf when a frame does not fit.
func (c *wireConn) fill(need int) error {
	for {
		have := c.w - c.r
		if need > 0 && have >= need {
			return nil
		}
		if c.buf == nil {
			c.buf = c.small[:]
		}
		want := max(need, have+1)
		if want > len(c.buf)-c.r {
			switch {
			case want <= len(c.buf) && have < len(c.buf)/2:
				c.w = copy(c.buf, c.buf[c.r:c.w])
				c.r = 0
			case want > maxHeaderBlock+maxBody:
				return fmt.Errorf("%w: frame of %d bytes", errFrame, want)
			default:
				var grown []byte
				if want <= readChunk && len(c.buf) < readChunk {
					grown = *(readBufs.Get().(*[]byte))
				} else {
					grown = make([]byte, max(want, 2*len(c.buf)))
				}
				c.w = copy(grown, c.buf[c.r:c.w])
				c.r = 0
				c.release()
				c.buf = grown
			}
		}
		n, err := c.Conn.Read(c.buf[c.w:])
		c.w += n
		if n > 0 {
			if need == 0 {
				return nil
			}
			continue
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
}

// readBufs holds read buffers between frames.
var readBufs = sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}

// compact gives the buffer back once it is empty, so that an idle call (most
// of a call's life is spent waiting) holds no read buffer of its own.
func (c *wireConn) compact() {
	if c.r == c.w && c.buf != nil {
		c.release()
		c.buf, c.r, c.w = nil, 0, 0
	}
}

// release returns a pooled buffer to the pool.
func (c *wireConn) release() {
	if len(c.buf) == readChunk {
		b := c.buf
		readBufs.Put(&b)
	}
}

// fail reports the end of the stream once and returns the error for eslgo.
func (c *wireConn) fail(err error) error {
	c.closeOnce.Do(func() {
		defer func() { _ = recover() }() // a failing observer must not take the process down
		c.obs.closed(err)
	})
	return err
}
