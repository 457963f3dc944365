package esl

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"sync"
)

// Frame content types FreeSWITCH sends on an event socket
// (mod_event_socket's Content-Type values, as captured from 1.10.12).
const (
	contentReply      = "command/reply"
	contentAPI        = "api/response"
	contentEventPlain = "text/event-plain"
	contentDisconnect = "text/disconnect-notice"
	contentAuth       = "auth/request"
)

// Default limits on what a FrameReader accepts. The connect reply, the
// largest header block FreeSWITCH sends on an outbound socket, is about 7 KB
// plus the channel variables the dialplan set; events carry their headers
// in a body of about 6 KB. The limits exist so that a broken peer cannot
// make eslapp allocate without bound.
const (
	DefaultMaxHeader = 1 << 20
	DefaultMaxBody   = 16 << 20
)

// ErrMalformedFrame marks bytes that are not an ESL frame eslapp can accept.
var ErrMalformedFrame = errors.New("esl: malformed frame")

// ErrFrameTooLarge is wrapped by the errors of a FrameReader whose frame is
// over its limits.
var ErrFrameTooLarge = fmt.Errorf("%w: over the size limit", ErrMalformedFrame)

// Frame is one frame read from FreeSWITCH: a header block, then
// Content-Length bytes of body. Its slices belong to the FrameReader and
// are valid until the next call of Next.
type Frame struct {
	// Header is the header block without its terminating blank line.
	// Values are as sent: URL-encoded in the connect reply, plain in a
	// command/reply.
	Header        []byte
	Body          []byte
	ContentType   string
	ContentLength int
	// Disposition is a disconnect notice's Content-Disposition: "linger"
	// or "disconnect".
	Disposition string
}

// Get returns the value of the first header line with this name (ASCII
// case-insensitive), "" when there is none.
func (f *Frame) Get(name string) string { return headerValue(f.Header, name) }

// headerValue finds a header in a block of "Name: value" lines.
func headerValue(block []byte, name string) string {
	for line := range lines(block) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && asciiEqualFold(k, name) {
			return string(bytes.TrimLeft(v, " \t"))
		}
	}
	return ""
}

// lines yields the lines of a header block, without their line ends, up to
// the blank line that ends it (or the block's end).
func lines(block []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for len(block) > 0 {
			line := block
			if i := bytes.IndexByte(block, '\n'); i >= 0 {
				line, block = block[:i], block[i+1:]
			} else {
				block = nil
			}
			line = bytes.TrimSuffix(line, []byte("\r"))
			if len(line) == 0 || !yield(line) {
				return
			}
		}
	}
}

// FrameReader reads ESL frames from a stream, one at a time, with one
// framing rule for everything eslapp reads: the per-call read loop, the
// inbound connection, and the tests' FreeSWITCH double.
//
// It scans a header block once, however the bytes arrive (a block dripped a
// few bytes per read is not rescanned from its start), and holds no buffer
// larger than the frame it reads: between frames it keeps a 512-byte
// buffer, and a larger frame borrows one from a pool of size classes.
type FrameReader struct {
	r         io.Reader
	maxHeader int
	maxBody   int

	small [512]byte
	buf   []byte // buf[start:end] is read and not yet consumed
	start int
	end   int
	next  int // where the frame returned last ends: consumed on the next call

	scan headerScanner // the header block at buf[start:], scanned so far
}

// NewFrameReader reads frames from r with the default limits.
func NewFrameReader(r io.Reader) *FrameReader {
	fr := &FrameReader{r: r, maxHeader: DefaultMaxHeader, maxBody: DefaultMaxBody}
	fr.buf = fr.small[:]
	return fr
}

// SetLimits bounds the header block and the body of the frames read from
// now on.
func (fr *FrameReader) SetLimits(maxHeader, maxBody int) {
	fr.maxHeader, fr.maxBody = maxHeader, maxBody
}

// Next reads the next frame. Errors: io.EOF at a clean end between frames,
// io.ErrUnexpectedEOF inside one, errors wrapping ErrMalformedFrame for bytes that are
// not a frame (or ErrFrameTooLarge), and the stream's own errors.
func (fr *FrameReader) Next() (Frame, error) {
	fr.consume()
	for {
		done, err := fr.scan.scan(fr.buf[fr.start:fr.end], fr.maxHeader)
		if err != nil {
			return Frame{}, err
		}
		if done {
			break
		}
		if err := fr.fill(fr.end+1, false); err != nil {
			if err == io.EOF && fr.end == fr.start {
				return Frame{}, io.EOF
			}
			return Frame{}, noEOF(err)
		}
	}
	h := fr.scan.h
	if h.contentLength > fr.maxBody {
		return Frame{}, fmt.Errorf("%w: body of %d bytes, limit %d", ErrFrameTooLarge, h.contentLength, fr.maxBody)
	}
	size := h.headerLen + h.contentLength
	if err := fr.fill(fr.start+size, true); err != nil {
		return Frame{}, noEOF(err)
	}
	f := Frame{
		Header:        trimBlank(fr.buf[fr.start : fr.start+h.headerLen]),
		Body:          fr.buf[fr.start+h.headerLen : fr.start+size],
		ContentType:   h.contentType,
		ContentLength: h.contentLength,
		Disposition:   h.disposition,
	}
	fr.next = fr.start + size
	return f, nil
}

// ReadFrame reads one frame from r by the same rules as a FrameReader, for
// readers that share r with other reads (the tests' FreeSWITCH double and
// clients). The frame's slices are its own. A body is read as it arrives,
// so a bogus Content-Length on a short stream costs nothing.
func ReadFrame(r *bufio.Reader, maxHeader, maxBody int) (Frame, error) {
	var sc headerScanner
	var block []byte
	for {
		line, err := r.ReadSlice('\n')
		block = append(block, line...)
		if err == bufio.ErrBufferFull {
			if len(block) > maxHeader {
				return Frame{}, fmt.Errorf("%w: header block over %d bytes", ErrFrameTooLarge, maxHeader)
			}
			continue
		}
		if err != nil {
			if err == io.EOF && len(block) == 0 {
				return Frame{}, io.EOF
			}
			return Frame{}, noEOF(err)
		}
		done, err := sc.scan(block, maxHeader)
		if err != nil {
			return Frame{}, err
		}
		if done {
			break
		}
	}
	h := sc.h
	if h.contentLength > maxBody {
		return Frame{}, fmt.Errorf("%w: body of %d bytes, limit %d", ErrFrameTooLarge, h.contentLength, maxBody)
	}
	f := Frame{Header: trimBlank(block), ContentType: h.contentType, ContentLength: h.contentLength, Disposition: h.disposition}
	if h.contentLength > 0 {
		var body bytes.Buffer
		if _, err := io.CopyN(&body, r, int64(h.contentLength)); err != nil {
			return Frame{}, noEOF(err)
		}
		f.Body = body.Bytes()
	}
	return f, nil
}

// Buffered is how many bytes have been read past the frame returned last.
func (fr *FrameReader) Buffered() int { return fr.end - max(fr.next, fr.start) }

// consume drops the frame returned last and starts a new header scan. An
// empty buffer goes back to the pool and the reader returns to its small
// one: a call spends most of its life waiting for the next frame.
func (fr *FrameReader) consume() {
	if fr.next > fr.start {
		fr.start = fr.next
	}
	fr.scan = headerScanner{}
	if fr.start == fr.end {
		fr.start, fr.end, fr.next = 0, 0, 0
		fr.release()
	}
}

// fill reads until buf holds bytes up to index upto (relative to buf),
// moving the unconsumed bytes to a large enough buffer first: one of the
// frame's size when exact (the frame's length is known), else twice the
// current one.
func (fr *FrameReader) fill(upto int, exact bool) error {
	need := upto - fr.start // bytes wanted from start
	if upto > len(fr.buf) {
		have := fr.end - fr.start
		var nb []byte
		switch {
		case need <= len(fr.buf):
			nb = fr.buf // shifting down is enough
		case need <= len(fr.small):
			nb = fr.small[:]
		case exact:
			nb = getBuf(need)
		default:
			// A header block still arriving: grow by doubling, so that a
			// long block costs a few copies, not one per read.
			nb = getBuf(max(need, 2*len(fr.buf)))
		}
		copy(nb, fr.buf[fr.start:fr.end])
		if &nb[0] != &fr.buf[0] {
			fr.release()
		}
		fr.buf, fr.start, fr.end, fr.next = nb, 0, have, 0
		upto = need
	}
	for fr.end < upto {
		n, err := fr.r.Read(fr.buf[fr.end:])
		fr.end += n
		if n > 0 {
			continue
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	return nil
}

// release gives a pooled buffer back and returns to the small one.
func (fr *FrameReader) release() {
	if len(fr.buf) > len(fr.small) {
		putBuf(fr.buf)
	}
	fr.buf = fr.small[:]
}

// Size classes of the buffers frames borrow: powers of two from 1 KiB to
// 64 KiB. A frame larger than that gets a buffer of its own size.
const (
	minBufClass = 10
	maxBufClass = 16
)

var bufPools [maxBufClass + 1]sync.Pool

func bufClass(n int) int {
	c := minBufClass
	for 1<<c < n {
		c++
	}
	return c
}

func getBuf(n int) []byte {
	c := bufClass(n)
	if c > maxBufClass {
		return make([]byte, n)
	}
	if b, ok := bufPools[c].Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 1<<c)
}

func putBuf(b []byte) {
	c := bufClass(len(b))
	if c > maxBufClass || len(b) != 1<<c {
		return
	}
	bufPools[c].Put(&b)
}

// trimBlank cuts the blank line that ends a header block, and the line end
// before it.
func trimBlank(block []byte) []byte {
	for range 2 {
		block = bytes.TrimSuffix(block, []byte("\n"))
		block = bytes.TrimSuffix(block, []byte("\r"))
	}
	return block
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// frameHeader is what the scanner learns from one frame's header block.
type frameHeader struct {
	headerLen     int // bytes of the header block, including the terminating blank line
	contentType   string
	contentLength int // 0 when there is no Content-Length header
	disposition   string
}

// headerScanner reads a header block line by line as its bytes arrive,
// remembering where it stopped, so that each byte is looked at once.
//
// The rules are those of net/textproto, made stricter where FreeSWITCH never
// needs the leniency (no continuation lines, no empty blocks): every block
// it accepts is one textproto reads as the same frame.
type headerScanner struct {
	pos       int // bytes of whole lines scanned
	seen      int // bytes after pos already searched for the end of the line
	lines     int
	sawLength bool
	h         frameHeader
}

// scan continues over b, which holds the block's bytes read so far (b grows
// between calls; its start does not move). It reports done once the blank
// line that ends the block is in.
func (s *headerScanner) scan(b []byte, maxHeader int) (done bool, err error) {
	for {
		nl := bytes.IndexByte(b[s.pos+s.seen:], '\n')
		if nl < 0 {
			s.seen = len(b) - s.pos
			if len(b) > maxHeader {
				return false, fmt.Errorf("%w: header block over %d bytes", ErrFrameTooLarge, maxHeader)
			}
			return false, nil
		}
		nl += s.seen
		s.seen = 0
		line := b[s.pos : s.pos+nl]
		s.pos += nl + 1
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			if s.lines == 0 {
				return false, fmt.Errorf("%w: empty header block", ErrMalformedFrame)
			}
			s.h.headerLen = s.pos
			return true, nil
		}
		if s.pos > maxHeader {
			return false, fmt.Errorf("%w: header block over %d bytes", ErrFrameTooLarge, maxHeader)
		}
		s.lines++
		if err := s.line(line); err != nil {
			return false, err
		}
	}
}

func (s *headerScanner) line(line []byte) error {
	key, value, found := bytes.Cut(line, []byte(":"))
	if !found || len(key) == 0 {
		return fmt.Errorf("%w: header line without a name: %.40q", ErrMalformedFrame, line)
	}
	for _, c := range key {
		if !isTokenByte(c) {
			return fmt.Errorf("%w: bad header name %.40q", ErrMalformedFrame, key)
		}
	}
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return fmt.Errorf("%w: control byte in header %s", ErrMalformedFrame, key)
		}
	}
	value = bytes.TrimLeft(value, " \t")
	switch {
	case asciiEqualFold(key, "Content-Type"):
		if s.h.contentType == "" {
			s.h.contentType = string(value)
		}
	case asciiEqualFold(key, "Content-Length"):
		if s.sawLength {
			return nil // textproto's Get returns the first value
		}
		s.sawLength = true
		n, err := strconv.Atoi(string(value))
		if err != nil || n < 0 {
			return fmt.Errorf("%w: bad Content-Length %.20q", ErrMalformedFrame, value)
		}
		s.h.contentLength = n
	case asciiEqualFold(key, "Content-Disposition"):
		if s.h.disposition == "" {
			s.h.disposition = string(value)
		}
	}
	return nil
}

// scanFrameHeader reads the header block at the start of b in one go; ok
// is false when b does not yet hold a whole block.
func scanFrameHeader(b []byte) (h frameHeader, ok bool, err error) {
	var s headerScanner
	ok, err = s.scan(b, DefaultMaxHeader)
	if ok && s.h.contentLength > DefaultMaxBody {
		return s.h, false, fmt.Errorf("%w: body of %d bytes over %d", ErrFrameTooLarge, s.h.contentLength, DefaultMaxBody)
	}
	return s.h, ok, err
}

// isTokenByte reports whether c may appear in a header name (RFC 7230 tchar),
// the set net/textproto accepts.
func isTokenByte(c byte) bool { return tokenBytes[c] }

var tokenBytes = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
