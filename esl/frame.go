package esl

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Frame content types FreeSWITCH sends on an outbound socket (BRIEF §6,
// transcripts README "Wire format").
const (
	contentReply      = "command/reply"
	contentAPI        = "api/response"
	contentEventPlain = "text/event-plain"
	contentDisconnect = "text/disconnect-notice"
)

// Limits on what eslapp accepts from FreeSWITCH. The connect reply, the
// largest header block FreeSWITCH sends, is about 7 KB; events carry their
// headers in a body of about 6 KB. The limits are generous and exist so that
// a broken peer cannot make eslapp allocate without bound.
const (
	maxHeaderBlock = 1 << 20
	maxBody        = 16 << 20
)

// errFrame marks bytes that are not an ESL frame eslapp can accept.
var errFrame = errors.New("esl: malformed frame")

// frameHeader is what the scanner learns from one frame's header block.
type frameHeader struct {
	headerLen     int // bytes of the header block, including the terminating blank line
	contentType   string
	contentLength int // 0 when there is no Content-Length header
	disposition   string
}

// scanFrameHeader reads the header block at the start of b. It returns
// ok=false when b does not yet hold a whole header block.
//
// The rules are those of net/textproto, which eslgo uses to read the same
// bytes, made stricter where FreeSWITCH never needs the leniency (no
// continuation lines, no empty blocks): every block this function accepts is
// one that eslgo reads as the same frame, so the two never disagree about
// where a frame ends.
func scanFrameHeader(b []byte) (h frameHeader, ok bool, err error) {
	h.contentLength = 0
	sawLength := false
	pos := 0
	for lines := 0; ; lines++ {
		nl := bytes.IndexByte(b[pos:], '\n')
		if nl < 0 {
			if len(b) > maxHeaderBlock {
				return h, false, fmt.Errorf("%w: header block over %d bytes", errFrame, maxHeaderBlock)
			}
			return h, false, nil
		}
		line := b[pos : pos+nl]
		pos += nl + 1
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			if lines == 0 {
				return h, false, fmt.Errorf("%w: empty header block", errFrame)
			}
			h.headerLen = pos
			if h.contentLength > maxBody {
				return h, false, fmt.Errorf("%w: body of %d bytes over %d", errFrame, h.contentLength, maxBody)
			}
			return h, true, nil
		}
		if pos > maxHeaderBlock {
			return h, false, fmt.Errorf("%w: header block over %d bytes", errFrame, maxHeaderBlock)
		}
		key, value, found := bytes.Cut(line, []byte(":"))
		if !found || len(key) == 0 {
			return h, false, fmt.Errorf("%w: header line without a name: %.40q", errFrame, line)
		}
		for _, c := range key {
			if !isTokenByte(c) {
				return h, false, fmt.Errorf("%w: bad header name %.40q", errFrame, key)
			}
		}
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return h, false, fmt.Errorf("%w: control byte in header %s", errFrame, key)
			}
		}
		value = bytes.TrimLeft(value, " \t")
		switch {
		case asciiEqualFold(key, "Content-Type"):
			if h.contentType == "" {
				h.contentType = string(value)
			}
		case asciiEqualFold(key, "Content-Length"):
			if sawLength {
				continue // textproto's Get returns the first value
			}
			sawLength = true
			n, convErr := strconv.Atoi(string(value))
			if convErr != nil || n < 0 {
				return h, false, fmt.Errorf("%w: bad Content-Length %.20q", errFrame, value)
			}
			h.contentLength = n
		case asciiEqualFold(key, "Content-Disposition"):
			if h.disposition == "" {
				h.disposition = string(value)
			}
		}
	}
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
