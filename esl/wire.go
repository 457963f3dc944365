package esl

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// readChunk is how much wireConn reads from the socket at a time while it
// looks for a header block. Bodies go straight into eslgo's buffer.
const readChunk = 4096

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

// wireConn is the net.Conn eslgo reads from. It passes FreeSWITCH's frames
// through unchanged, except that it
//
//   - reports the end of the connection, which eslgo's receive loop swallows
//     (so a TCP drop without a disconnect notice would leave a call waiting
//     forever);
//   - takes text/disconnect-notice frames out of the stream and reports them:
//     eslgo delivers them to a channel that only its own ListenAndServe
//     drains, so each notice would stall its receive loop for five seconds;
//   - drops frames of a type eslgo has no channel for (it would stop reading
//     altogether), and refuses malformed ones by failing the read;
//   - counts the events it has handed on, which lets the session put events
//     back in order (see sequencer).
type wireConn struct {
	net.Conn
	obs wireObserver

	buf  []byte // buf[r:w] holds bytes read from the socket, not yet handed on
	r, w int

	pass      int  // bytes of the current frame still to hand to eslgo
	passEvent bool // the current frame is an event
	skip      int  // bytes of a dropped frame still to discard
	connected bool // the connect reply has been seen

	eventsHanded atomic.Uint64 // event frames handed to eslgo in full

	closeOnce sync.Once
}

func newWireConn(c net.Conn, obs wireObserver) *wireConn {
	return &wireConn{Conn: c, obs: obs}
}

// Read implements net.Conn for eslgo's receive loop.
func (c *wireConn) Read(p []byte) (int, error) {
	for {
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
			if err := c.fill(); err != nil {
				return 0, c.fail(err)
			}
			continue
		}
		c.route(h)
	}
}

// route decides what happens to the frame whose header block starts at c.r.
func (c *wireConn) route(h frameHeader) {
	switch h.contentType {
	case contentDisconnect:
		// Notices are short (67 bytes of body at most): read them whole.
		c.skip = h.headerLen + h.contentLength
		c.obs.notice(h.disposition)
	case contentReply, contentAPI, contentEventPlain:
		if !c.connected && h.contentType == contentReply {
			c.connected = true
			block := make([]byte, h.headerLen)
			copy(block, c.buf[c.r:c.r+h.headerLen])
			c.obs.connectBlock(block)
		}
		c.pass = h.headerLen + h.contentLength
		c.passEvent = h.contentType == contentEventPlain
	default:
		// auth/request, text/event-json, ... : nothing eslapp asks for.
		c.skip = h.headerLen + h.contentLength
	}
}

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
	if c.pass == 0 && c.passEvent {
		c.eventsHanded.Add(1)
	}
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

// fill reads more bytes into buf, growing it when a header block does not
// fit (the connect reply is about 7 KB).
func (c *wireConn) fill() error {
	if c.buf == nil {
		c.buf = *(readBufs.Get().(*[]byte))
	}
	if c.w == len(c.buf) {
		if c.r > 0 {
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		} else {
			if len(c.buf) >= maxHeaderBlock {
				return fmt.Errorf("%w: header block over %d bytes", errFrame, maxHeaderBlock)
			}
			grown := make([]byte, 2*len(c.buf))
			copy(grown, c.buf[:c.w])
			c.buf = grown
		}
	}
	n, err := c.Conn.Read(c.buf[c.w:])
	c.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// readBufs holds header-block buffers between reads.
var readBufs = sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}

// compact gives the buffer back once it is empty, so that an idle call (most
// of a call's life is spent waiting) holds no read buffer of its own.
func (c *wireConn) compact() {
	if c.r == c.w && c.buf != nil {
		if len(c.buf) == readChunk {
			b := c.buf
			readBufs.Put(&b)
		}
		c.buf, c.r, c.w = nil, 0, 0
	}
}

// fail reports the end of the stream once and returns the error for eslgo.
func (c *wireConn) fail(err error) error {
	c.closeOnce.Do(func() { c.obs.closed(err) })
	return err
}
