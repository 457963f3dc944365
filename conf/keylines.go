package conf

import (
	"fmt"
	"strings"

	"github.com/BurntSushi/toml"
)

// Limits on a configuration file, checked before it is decoded: a
// configuration is written by people, and these bound what a broken or
// hostile file can cost eslapp check and serve.
const (
	// MaxConfigBytes bounds a configuration file.
	MaxConfigBytes = 16 << 20
	// MaxKeyDepth bounds a key's path: table headers, dotted keys and
	// inline tables together (flows.NAME.actions.ID.branches.OnSuccess is
	// 6), and the nesting of arrays.
	MaxKeyDepth = 64
)

// KeyLines maps every key of a TOML document ("a.b.c", as toml.Key.String
// spells it) to the line it is first defined on, so that a configuration
// error can name its line. Keys inside arrays of tables are recorded
// without an index: the first table's line.
//
// BurntSushi/toml records each key's position but exposes it only in the
// ParseError of a failed decode, and making one copies the whole document:
// probing every key that way is quadratic (10,000 tenants took seconds).
// KeyLines is one pass over the text instead. It expects a document the
// decoder accepts; on any other it returns what it found, never fails to
// end. It reports a key deeper than MaxKeyDepth with its line.
func KeyLines(data string) (map[string]int, error) {
	s := &keyScanner{data: data, line: 1, lines: make(map[string]int)}
	s.document()
	return s.lines, s.err
}

type keyScanner struct {
	data  string
	pos   int
	line  int
	table toml.Key // the current [table] or [[array]]
	lines map[string]int
	err   error
}

// DepthError is a key or a value nested deeper than MaxKeyDepth.
type DepthError struct {
	Line int
	Key  string
}

func (e *DepthError) Error() string {
	return fmt.Sprintf("line %d: %s: nested more than %d deep", e.Line, e.Key, MaxKeyDepth)
}

func (s *keyScanner) document() {
	for s.err == nil && s.pos < len(s.data) {
		s.skipBlank()
		if s.pos >= len(s.data) {
			return
		}
		switch c := s.data[s.pos]; c {
		case '\n':
			s.newline()
		case '#':
			s.skipComment()
		case '[':
			s.header()
		default:
			start := s.pos
			s.keyValue(s.table, 0)
			if s.pos == start {
				s.pos++ // not TOML: move on
			}
		}
	}
}

// header reads [a.b] or [[a.b]] and makes it the current table.
func (s *keyScanner) header() {
	s.pos++
	array := s.pos < len(s.data) && s.data[s.pos] == '['
	if array {
		s.pos++
	}
	s.skipBlank()
	key := s.key()
	s.table = key
	s.record(key, len(key) > 0)
	if array && len(key) > 0 && s.err == nil {
		// The decoder places an array of tables at its last header.
		s.lines[key.String()] = s.line
	}
	s.skipLine()
}

// keyValue reads key = value, its key under prefix.
func (s *keyScanner) keyValue(prefix toml.Key, depth int) {
	key := s.key()
	if len(key) == 0 {
		return
	}
	full := append(prefix[:len(prefix):len(prefix)], key...)
	s.record(full, true)
	s.skipBlank()
	if s.pos < len(s.data) && s.data[s.pos] == '=' {
		s.pos++
		s.skipBlank()
		s.value(full, depth)
	}
}

// record notes the line of key and of each of its prefixes not yet seen.
func (s *keyScanner) record(key toml.Key, ok bool) {
	if !ok || s.err != nil {
		return
	}
	if len(key) > MaxKeyDepth {
		s.err = &DepthError{Line: s.line, Key: toml.Key(key[:3]).String() + "..."}
		return
	}
	for i := 1; i <= len(key); i++ {
		k := key[:i].String()
		if _, seen := s.lines[k]; !seen {
			s.lines[k] = s.line
		}
	}
}

// key reads a dotted key: bare, "basic" or 'literal' parts.
func (s *keyScanner) key() toml.Key {
	var key toml.Key
	for s.pos < len(s.data) {
		s.skipBlank()
		if s.pos >= len(s.data) {
			break
		}
		var part string
		switch c := s.data[s.pos]; {
		case c == '"':
			part = s.basicString()
		case c == '\'':
			part = s.literalString()
		case isBareKeyByte(c):
			start := s.pos
			for s.pos < len(s.data) && isBareKeyByte(s.data[s.pos]) {
				s.pos++
			}
			part = s.data[start:s.pos]
		default:
			return key
		}
		key = append(key, part)
		if len(key) > MaxKeyDepth+1 {
			return key // record reports it; the rest is not read
		}
		s.skipBlank()
		if s.pos < len(s.data) && s.data[s.pos] == '.' {
			s.pos++
			continue
		}
		break
	}
	return key
}

// value skips a value, recording the keys of inline tables in it.
func (s *keyScanner) value(key toml.Key, depth int) {
	if s.pos >= len(s.data) || s.err != nil {
		return
	}
	if depth > MaxKeyDepth {
		s.err = &DepthError{Line: s.line, Key: toml.Key(key[:min(len(key), 3)]).String()}
		return
	}
	switch c := s.data[s.pos]; c {
	case '"':
		s.basicString()
	case '\'':
		s.literalString()
	case '[':
		s.items(']', func() { s.value(key, depth+1) })
	case '{':
		s.items('}', func() { s.keyValue(key, depth+1) })
	default:
		// A number, date, boolean: up to what ends it.
		for s.pos < len(s.data) && !strings.ContainsRune(",]}#\n", rune(s.data[s.pos])) {
			s.pos++
		}
	}
}

// items reads the comma-separated items of an array or inline table, each
// with item, up to and past end.
func (s *keyScanner) items(end byte, item func()) {
	s.pos++
	for s.err == nil && s.pos < len(s.data) {
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] == end {
			s.pos++
			return
		}
		if s.data[s.pos] == ',' {
			s.pos++
			continue
		}
		start := s.pos
		item()
		if s.pos == start {
			s.pos++ // not TOML: move on
		}
	}
}

// basicString reads "..." or """...""" and returns its text (escapes
// resolved only as far as keys need: \" and \\ kept literal otherwise).
func (s *keyScanner) basicString() string {
	if strings.HasPrefix(s.data[s.pos:], `"""`) {
		s.pos += 3
		for s.pos < len(s.data) {
			switch {
			case s.data[s.pos] == '\\':
				s.pos++
				if s.pos < len(s.data) && s.data[s.pos] == '\n' {
					s.line++
				}
			case strings.HasPrefix(s.data[s.pos:], `"""`):
				s.pos += 3
				for s.pos < len(s.data) && s.data[s.pos] == '"' { // up to two quotes end the content
					s.pos++
				}
				return ""
			case s.data[s.pos] == '\n':
				s.line++
			}
			s.pos++
		}
		return ""
	}
	s.pos++
	var b strings.Builder
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch c {
		case '"':
			s.pos++
			return b.String()
		case '\n':
			return b.String() // not TOML; the line ends it
		case '\\':
			s.pos++
			if s.pos < len(s.data) {
				b.WriteString(unescapeKeyByte(s.data[s.pos]))
			}
		default:
			b.WriteByte(c)
		}
		s.pos++
	}
	return b.String()
}

// unescapeKeyByte is a basic string's escape, for quoted keys; \uXXXX and
// \UXXXXXXXX stay as written (a key that needs them is rare enough for its
// line to fall back to its table's).
func unescapeKeyByte(c byte) string {
	switch c {
	case 'n':
		return "\n"
	case 't':
		return "\t"
	case 'r':
		return "\r"
	case 'b':
		return "\b"
	case 'f':
		return "\f"
	case 'e':
		return "\x1b"
	}
	return string(c)
}

// literalString reads a literal string, on one line or, between three
// single quotes, on several, and returns its text.
func (s *keyScanner) literalString() string {
	if strings.HasPrefix(s.data[s.pos:], "'''") {
		s.pos += 3
		end := strings.Index(s.data[s.pos:], "'''")
		if end < 0 {
			end = len(s.data) - s.pos
		}
		s.line += strings.Count(s.data[s.pos:s.pos+end], "\n")
		s.pos += end + 3
		for s.pos < len(s.data) && s.data[s.pos] == '\'' {
			s.pos++
		}
		s.pos = min(s.pos, len(s.data))
		return ""
	}
	s.pos++
	start := s.pos
	for s.pos < len(s.data) && s.data[s.pos] != '\'' && s.data[s.pos] != '\n' {
		s.pos++
	}
	text := s.data[start:s.pos]
	if s.pos < len(s.data) && s.data[s.pos] == '\'' {
		s.pos++
	}
	return text
}

// skipBlank skips spaces and tabs.
func (s *keyScanner) skipBlank() {
	for s.pos < len(s.data) && (s.data[s.pos] == ' ' || s.data[s.pos] == '\t' || s.data[s.pos] == '\r') {
		s.pos++
	}
}

// skipSpace skips blanks, line breaks and comments (inside arrays).
func (s *keyScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\r':
			s.pos++
		case '\n':
			s.newline()
		case '#':
			s.skipComment()
		default:
			return
		}
	}
}

func (s *keyScanner) newline() {
	s.pos++
	s.line++
}

func (s *keyScanner) skipComment() {
	for s.pos < len(s.data) && s.data[s.pos] != '\n' {
		s.pos++
	}
}

// skipLine skips the rest of a header line.
func (s *keyScanner) skipLine() {
	for s.pos < len(s.data) && s.data[s.pos] != '\n' {
		s.pos++
	}
}

func isBareKeyByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// LineOf returns the line of key, or of its nearest ancestor that has one.
func LineOf(lines map[string]int, key toml.Key) int {
	for k := key; len(k) > 0; k = k[:len(k)-1] {
		if l, ok := lines[k.String()]; ok {
			return l
		}
	}
	return 0
}
