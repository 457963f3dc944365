package esl

import (
	"bytes"
	"fmt"
	"strings"
	"unsafe"
)

// ChannelData is the reply FreeSWITCH gives to "connect" on an outbound
// socket: a serialized CHANNEL_DATA event with the channel's state and all
// its variables (as "variable_NAME" headers), values URL-encoded.
//
// It keeps the channel's variables, its caller profile (Caller-*) and its
// identity and state (Unique-ID, Control, Socket-Mode, Answer-State,
// Channel-State, Channel-Name) as received, and decodes a header when it is
// asked for: a call reads a dozen of its 180 headers, so keeping one string
// costs far less memory than a map of them all. The event's own headers
// (dates, host, core UUID) and the Channel-* copies of the caller profile
// are not kept.
type ChannelData struct {
	raw string // header lines, "\n" separated, without the terminating blank line
}

// ParseChannelData checks a connect reply's header block and returns it as
// ChannelData. The block is the header lines, with or without the blank
// line that ends them.
func ParseChannelData(block []byte) (*ChannelData, error) {
	return parseChannelData(block, nil, true, contentReply)
}

// VarFilter decides which channel variables a call keeps, given a lookup
// of the variables in the connect reply (its wfe_* inputs say which others
// it reads). A call reads a few of the hundred or so variables FreeSWITCH
// sends, and would hold the rest for its whole life.
type VarFilter func(lookup func(name string) (string, bool)) (keep func(name string) bool)

// keepPickVar extends filter to keep PickVar, the pick-up net's reply,
// which esl reads itself (the claim), whatever the handler keeps.
func keepPickVar(filter VarFilter) VarFilter {
	if filter == nil {
		return nil
	}
	return func(lookup func(string) (string, bool)) func(string) bool {
		keep := filter(lookup)
		return func(name string) bool { return name == PickVar || keep(name) }
	}
}

// parseChannelData builds ChannelData from the block, keeping only the
// variables filter allows (all when filter is nil). The block is read in
// place: no copy of the whole of it outlives the call. check validates each
// line, which a FrameReader has done already. contentType is what the
// block's Content-Type must be ("" for an event's body, which has none).
func parseChannelData(block []byte, filter VarFilter, check bool, contentType string) (*ChannelData, error) {
	keep := func(string) bool { return true }
	if filter != nil {
		keep = filter(func(name string) (string, bool) { return blockVar(block, name) })
	}
	var sc headerScanner
	var b strings.Builder
	for line := range lines(block) {
		name, value, _ := bytes.Cut(line, []byte(":"))
		if check {
			if err := sc.line(line); err != nil {
				return nil, err
			}
		} else if string(name) == "Content-Type" {
			sc.h.contentType = string(bytes.TrimLeft(value, " \t"))
		}
		if !keepChannelHeader(string(name)) {
			continue
		}
		if v, isVar := bytes.CutPrefix(name, []byte("variable_")); isVar && !keep(string(v)) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.Write(line)
	}
	if sc.h.contentType != contentType {
		return nil, fmt.Errorf("%w: channel data with Content-Type %q", ErrMalformedFrame, sc.h.contentType)
	}
	d := &ChannelData{raw: strings.Clone(b.String())} // exact size: it lives as long as the call
	if d.UUID() == "" {
		return nil, fmt.Errorf("%w: connect reply without Unique-ID", ErrMalformedFrame)
	}
	return d, nil
}

// blockVar looks a channel variable up in a connect reply's header block,
// as ChannelData.Var does, without copying the block: the view lives only
// during the lookup, and the value returned never shares its memory (see
// value).
func blockVar(block []byte, name string) (string, bool) {
	if len(block) == 0 {
		return "", false
	}
	return (&ChannelData{raw: unsafe.String(&block[0], len(block))}).Var(name)
}

func keepChannelHeader(name string) bool {
	switch name {
	case "Unique-ID", "Control", "Socket-Mode", "Answer-State", "Channel-State", "Channel-Name", "Content-Type", "Reply-Text":
		return true
	}
	return strings.HasPrefix(name, "variable_") || strings.HasPrefix(name, "Caller-")
}

// UUID is the channel's Unique-ID.
func (d *ChannelData) UUID() string { return d.Header("Unique-ID") }

// Header returns the decoded value of the first header with that name. Header
// names are matched exactly first and then without regard to case, so both
// "Unique-ID" and "unique-id" work.
func (d *ChannelData) Header(name string) string {
	v, _ := d.lookup(name)
	if v == "_undef_" {
		// switch_event_serialize writes a header without a value as _undef_.
		return ""
	}
	return v
}

// Var returns a channel variable as it was when eslapp connected. FreeSWITCH
// variable names are case sensitive; a name that matches no variable exactly
// matches one that differs only in case, because dialplans in the wild mix
// both spellings of the same name (timeoutMilliSec, timeoutmillisec).
func (d *ChannelData) Var(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	v, ok := d.lookup("variable_" + name)
	if v == "_undef_" {
		// switch_event_serialize writes a header without a value as _undef_.
		return "", false
	}
	return v, ok
}

// Vars calls fn for every channel variable, in the order FreeSWITCH sent them,
// until fn returns false.
func (d *ChannelData) Vars(fn func(name, value string) bool) {
	for line := range strings.SplitSeq(d.raw, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(k, "variable_") {
			continue
		}
		if !fn(k[len("variable_"):], URLDecode(strings.TrimLeft(v, " \t"))) {
			return
		}
	}
}

func (d *ChannelData) lookup(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	// Exact match: one search through the block (most lookups).
	for from := 0; from < len(d.raw); {
		i := strings.Index(d.raw[from:], name)
		if i < 0 {
			break
		}
		i += from
		end := i + len(name)
		if (i == 0 || d.raw[i-1] == '\n') && end < len(d.raw) && d.raw[end] == ':' {
			return d.value(end + 1), true
		}
		from = end
	}
	// Then without regard to case, looking only at names of that length.
	for off := 0; off < len(d.raw); {
		line := d.raw[off:]
		if j := strings.IndexByte(line, '\n'); j >= 0 {
			line = line[:j]
		}
		if len(line) > len(name) && line[len(name)] == ':' && strings.EqualFold(line[:len(name)], name) {
			return d.value(off + len(name) + 1), true
		}
		off += len(line) + 1
	}
	return "", false
}

// value decodes the header value that starts at offset i of the block. The
// result never shares memory with the block: a value kept for the call
// (the ANI, say) must not keep the whole block alive after Retain.
func (d *ChannelData) value(i int) string {
	v := d.raw[i:]
	if j := strings.IndexByte(v, '\n'); j >= 0 {
		v = v[:j]
	}
	v = strings.TrimLeft(v, " \t")
	if strings.IndexByte(v, '%') < 0 {
		return strings.Clone(v)
	}
	return URLDecode(v)
}

// URLDecode undoes FreeSWITCH's switch_url_encode. Unlike url.PathUnescape it
// never fails: a '%' not followed by two hex digits is kept as it is, so a
// malformed value is still shown rather than silently emptied.
func URLDecode(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b.WriteByte(hi<<4 | lo)
				i += 2
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
