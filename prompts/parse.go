package prompts

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxSegmentLen is the longest segment, in characters between its quotes,
// that CXone allows and so does Parse.
const MaxSegmentLen = 300

// ErrPreExpanded marks a *SyntaxError for a segment that looks as if
// FreeSWITCH had already replaced a ${var} in it: a file segment that is a
// bare number ("12.50", "-3", "1,234"), an empty or blank segment, or a
// prefix with nothing after it. Test with errors.Is.
var ErrPreExpanded = errors.New("segment looks expanded by FreeSWITCH")

// SyntaxError is a sequence that cannot be parsed. Line and Column are
// 1-based and count characters (runes); Column restarts after a newline.
type SyntaxError struct {
	Line, Column int
	Msg          string
	Err          error // nil, or ErrPreExpanded
}

func (e *SyntaxError) Error() string {
	return position(e.Line, e.Column) + e.Msg
}

func (e *SyntaxError) Unwrap() error { return e.Err }

func position(line, col int) string {
	if line > 1 {
		return fmt.Sprintf("line %d, column %d: ", line, col)
	}
	return fmt.Sprintf("column %d: ", col)
}

// Sequence is a parsed, unresolved prompt sequence. It holds no variable
// values and may be kept and shared: Resolve does not change it.
type Sequence struct {
	Segments []Segment
}

// Segment is one quoted segment of a sequence.
type Segment struct {
	Kind         Kind
	Prefix       string // the prefix character used; "" for a file without one
	Line, Column int    // of the opening quote
	Text         string // the text between the quotes, as written
	value        string // Text without prefix and surrounding white space
	parts        []part
}

// part is literal text (braces already unescaped) or a variable reference.
type part struct {
	text  string
	isRef bool
}

// Value is the segment's value as written: Text without the prefix and the
// white space around it, with {var} references and {{ }} escapes intact.
func (s Segment) Value() string { return s.value }

// Refs lists the variable references in the segment, in order, as written
// between the braces.
func (s Segment) Refs() []string {
	var refs []string
	for _, p := range s.parts {
		if p.isRef {
			refs = append(refs, p.text)
		}
	}
	return refs
}

// Literal returns the segment's value when it holds no variable reference.
func (s Segment) Literal() (string, bool) {
	var b strings.Builder
	for _, p := range s.parts {
		if p.isRef {
			return "", false
		}
		b.WriteString(p.text)
	}
	return b.String(), true
}

// Refs lists the distinct variable references of the sequence in order of
// first use, so `eslapp check` can compare them with the variables a flow
// sets.
func (q *Sequence) Refs() []string {
	var refs []string
	seen := map[string]bool{}
	for _, s := range q.Segments {
		for _, r := range s.Refs() {
			if !seen[r] {
				seen[r] = true
				refs = append(refs, r)
			}
		}
	}
	return refs
}

// Parse reads a CXone prompt sequence: segments in double quotes separated
// by white space. An empty or blank sequence has no segments (no prompt).
//
// Within a segment, white space at both ends is ignored, and so is white
// space between a prefix and the value. The first character then selects
// the renderer:
//
//   - a character in the prefix table (default % tts, $ currency,
//     # number, & digits): that renderer, for the rest of the segment;
//   - a letter or digit (any script), '/', '.', '_' or '{': a file, the
//     whole segment being its name or path;
//   - anything else: an unknown prefix, reported as a *SyntaxError.
//
// A bare number ("12.50", "-3", "1,234") as a file, an empty segment and
// a prefix with nothing after it are reported as a *SyntaxError wrapping
// ErrPreExpanded: in dialplan XML they are what FreeSWITCH leaves of
// "${var}" segments, and the message shows the form that survives
// ("$ {var}").
//
// "{name}" in a segment is a variable reference, kept opaque (whatever is
// between the braces is given to the Resolver); "{{" and "}}" are literal
// braces. A segment longer than MaxSegmentLen characters, an unterminated
// quote or '{', a lone '}', text outside quotes and quotes not separated by
// white space are *SyntaxErrors. A segment without references whose value
// cannot be played (currency "$abc", number "#1.5", a file "../x.wav") is
// a *ValueError. Parse returns the first problem; Check reports them all.
func Parse(seq string, prefixes Prefixes) (*Sequence, error) {
	p := newParser(seq, prefixes)
	p.run()
	if len(p.errs) > 0 {
		return nil, p.errs[0]
	}
	return &Sequence{Segments: p.segs}, nil
}

type parser struct {
	src      string
	prefixes Prefixes
	segs     []Segment
	errs     []error

	// position cache for pos
	line, col, scanned int
}

func newParser(src string, prefixes Prefixes) *parser {
	return &parser{src: src, prefixes: prefixes, line: 1, col: 1}
}

// pos returns the 1-based line and column of byte offset off. Offsets
// are asked for in increasing order while parsing, so the scan resumes
// where the last one ended.
func (p *parser) pos(off int) (line, col int) {
	if off < p.scanned {
		p.line, p.col, p.scanned = 1, 1, 0
	}
	i := p.scanned
	for i < off {
		r, w := utf8.DecodeRuneInString(p.src[i:])
		if r == '\n' {
			p.line, p.col = p.line+1, 1
		} else {
			p.col++
		}
		i += w
	}
	p.scanned = i
	return p.line, p.col
}

// maxErrors is how many problems the parser reports before it gives up.
const maxErrors = 50

func (p *parser) fail(off int, msg string, err error) {
	line, col := p.pos(off)
	p.add(&SyntaxError{Line: line, Column: col, Msg: msg, Err: err})
}

// add records err, or a last "too many errors" instead of the one that
// reaches maxErrors.
func (p *parser) add(err error) {
	if len(p.errs) == maxErrors-1 {
		line, col := p.line, p.col
		err = &SyntaxError{Line: line, Column: col, Msg: "too many errors; giving up"}
	}
	p.errs = append(p.errs, err)
}

func (p *parser) run() {
	src := p.src
	for i := 0; i < len(src) && len(p.errs) < maxErrors; {
		r, w := utf8.DecodeRuneInString(src[i:])
		if unicode.IsSpace(r) {
			i += w
			continue
		}
		if r != '"' {
			start := i
			for i < len(src) {
				r, w = utf8.DecodeRuneInString(src[i:])
				if r == '"' || unicode.IsSpace(r) {
					break
				}
				i += w
			}
			msg := fmt.Sprintf("text outside quotes: %s; every segment is written in double quotes", clip(src[start:i]))
			if strings.ContainsAny(src[start:i], "“”„″") {
				msg += ` (plain " quotes, not typographic ones)`
			}
			p.fail(start, msg, nil)
			continue
		}
		end := strings.IndexByte(src[i+1:], '"')
		if end < 0 {
			p.fail(i, "unterminated quote: the segment starting here has no closing \"", nil)
			return
		}
		p.segment(i, src[i+1:i+1+end])
		i += end + 2
		if i < len(src) {
			if r, _ := utf8.DecodeRuneInString(src[i:]); !unicode.IsSpace(r) {
				p.fail(i, "segments must be separated by white space", nil)
				for i < len(src) && src[i] != '"' { // resynchronise at the next quote
					i++
				}
			}
		}
	}
}

// segment parses the text between the quotes at offset q.
func (p *parser) segment(q int, text string) {
	line, col := p.pos(q)
	seg := Segment{Line: line, Column: col, Text: text}
	if n := utf8.RuneCountInString(text); n > MaxSegmentLen {
		p.fail(q, fmt.Sprintf("segment is %d characters long; at most %d", n, MaxSegmentLen), nil)
		return
	}
	body := strings.TrimLeftFunc(text, unicode.IsSpace)
	lead := len(text) - len(body)
	body = strings.TrimRightFunc(body, unicode.IsSpace)
	if body == "" {
		p.fail(q, "empty segment; "+p.preExpandedHint(""), ErrPreExpanded)
		return
	}
	first, fw := utf8.DecodeRuneInString(body)
	valueOff := q + 1 + lead
	switch k := p.prefixes.Kind(first); {
	case k != 0:
		rest := body[fw:]
		seg.value = strings.TrimLeftFunc(rest, unicode.IsSpace)
		seg.Kind, seg.Prefix = k, string(first)
		valueOff += fw + len(rest) - len(seg.value)
		if seg.value == "" {
			p.fail(q, fmt.Sprintf("segment %q has a %s prefix and nothing after it; %s", text, k, p.preExpandedHint(seg.Prefix)), ErrPreExpanded)
			return
		}
	case isBareNumber(body):
		p.fail(q, fmt.Sprintf("segment %q is a number, not a sound file; %s", text, p.preExpandedHint("")), ErrPreExpanded)
		return
	case isFileStart(first):
		seg.Kind, seg.value = KindFile, body
	default:
		p.fail(q, fmt.Sprintf("unknown prefix %q in segment %s; prefixes are %s, and a file name starts with a letter, digit, '/', '.', '_' or '{'",
			first, clip(text), p.prefixes), nil)
		return
	}
	parts, ok := p.template(seg.value, valueOff)
	if !ok {
		return
	}
	seg.parts = parts
	if lit, ok := seg.Literal(); ok {
		if _, reason := checkValue(seg.Kind, lit); reason != "" {
			p.add(&ValueError{Line: line, Column: col, Kind: seg.Kind, Value: lit, Reason: reason})
			return
		}
	}
	p.segs = append(p.segs, seg)
}

// template splits v (at byte offset base in the source) into literal text
// and {references}.
func (p *parser) template(v string, base int) ([]part, bool) {
	var parts []part
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, part{text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(v); {
		c := v[i]
		switch {
		case (c == '{' || c == '}') && i+1 < len(v) && v[i+1] == c:
			lit.WriteByte(c)
			i += 2
		case c == '{':
			j := strings.IndexAny(v[i+1:], "{}")
			if j < 0 {
				p.fail(base+i, "unterminated {: a variable reference ends with } (write {{ for a literal {)", nil)
				return nil, false
			}
			if v[i+1+j] == '{' {
				p.fail(base+i, "{ inside a variable reference (write {{ for a literal {)", nil)
				return nil, false
			}
			ref := v[i+1 : i+1+j]
			if strings.TrimSpace(ref) == "" {
				p.fail(base+i, "empty variable reference {}", nil)
				return nil, false
			}
			flush()
			parts = append(parts, part{text: ref, isRef: true})
			i += j + 2
		case c == '}':
			p.fail(base+i, "} without a matching { (write }} for a literal })", nil)
			return nil, false
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	return parts, true
}

// preExpandedHint tells a dialplan author the form of a segment that
// FreeSWITCH's variable expansion leaves alone. FreeSWITCH expands only a
// "$" directly followed by "{" (backslashes between them allowed), so
// white space after the prefix, or no "$" at all, survives. prefix is the
// segment's prefix, or "" to suggest the currency one.
func (p *parser) preExpandedHint(prefix string) string {
	form := `"{var}"`
	if prefix == "" {
		prefix, _ = p.prefixes.Prefix(KindCurrency)
	}
	if prefix != "" {
		form = fmt.Sprintf(`"%s {var}"`, prefix)
	}
	return "in dialplan XML FreeSWITCH expands ${var} before eslapp reads the sequence; write " + form +
		` instead (white space after the prefix, or "{var}" for a file) so that eslapp reads the variable itself`
}

// isFileStart reports whether a file segment may start with r.
func isFileStart(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '/' || r == '.' || r == '_' || r == '{'
}

// isBareNumber reports whether s is a number and nothing else: an optional
// sign, digits and commas, an optional fraction.
func isBareNumber(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	digits, dot := 0, false
	for i := range len(s) {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			digits++
		case c == ',' && !dot && digits > 0:
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

// clip quotes s for a message, shortened to 40 bytes.
func clip(s string) string {
	if len(s) > 40 {
		cut := 40
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q…", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}
