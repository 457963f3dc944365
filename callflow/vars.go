package callflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds a call's variables: Value, one variable's value, and Vars,
// the variables of one call.
//
// A Value keeps JSON data as compact JSON text and reads into it on demand:
// a call reads a handful of fields of a CRM result, so decoding the whole
// document into maps would cost more than scanning the text for the few
// members asked for (Field and Index allocate nothing but the string of a
// member that holds JSON escapes).

// Kind is the JSON type of a Value.
type Kind uint8

// The kinds of Value. The zero Value is KindNull.
const (
	KindNull Kind = iota
	KindString
	KindNumber
	KindBool
	KindObject
	KindArray
)

var kindNames = [...]string{"null", "string", "number", "bool", "object", "array"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Errors of Field, Index and expression evaluation. Test with errors.Is:
// Expr.Eval wraps them in an *EvalError.
var (
	ErrUnknownVar = errors.New("unknown variable")
	ErrNoField    = errors.New("no such field or element")
	ErrWrongType  = errors.New("wrong type")
)

// Value is the value of a call variable: a string (every channel variable),
// or a JSON value (a CRM result or a part of one). The zero Value is JSON
// null. Values are immutable and safe to copy and share between goroutines.
type Value struct {
	kind Kind
	// s is the string for KindString; the JSON literal for numbers and
	// bools; compact JSON text for objects and arrays; "" for null.
	s string
}

// StringValue returns a string Value. s may hold any bytes: JSON encoding
// replaces invalid UTF-8 with U+FFFD, the text form keeps s as is.
func StringValue(s string) Value { return Value{kind: KindString, s: s} }

// BoolValue returns a JSON true or false.
func BoolValue(b bool) Value {
	if b {
		return Value{kind: KindBool, s: "true"}
	}
	return Value{kind: KindBool, s: "false"}
}

// IntValue returns a JSON number.
func IntValue(n int64) Value { return Value{kind: KindNumber, s: strconv.FormatInt(n, 10)} }

// ParseJSON returns the Value of a JSON document: an object or array is kept
// as compact JSON text, a string is decoded, a number keeps its literal.
// Invalid UTF-8 inside strings is replaced with U+FFFD, one per byte, as
// encoding/json does when decoding. The error is encoding/json's
// *json.SyntaxError.
func ParseJSON(raw []byte) (Value, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return Value{}, err
	}
	b := buf.Bytes()
	if !utf8.Valid(b) {
		// In valid JSON, bytes >= 0x80 occur only inside strings, so
		// replacing them keeps the document valid.
		b = replaceInvalidUTF8(b)
	}
	return fromJSON(string(b)), nil
}

// replaceInvalidUTF8 replaces each byte that is not part of a valid UTF-8
// sequence with U+FFFD.
func replaceInvalidUTF8(b []byte) []byte {
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}

// fromJSON makes a Value of valid, compact JSON text.
func fromJSON(raw string) Value {
	if raw == "" {
		return Value{}
	}
	switch raw[0] {
	case '"':
		return StringValue(unquote(raw))
	case '{':
		return Value{kind: KindObject, s: raw}
	case '[':
		return Value{kind: KindArray, s: raw}
	case 't', 'f':
		return Value{kind: KindBool, s: raw}
	case 'n':
		return Value{}
	}
	return Value{kind: KindNumber, s: raw}
}

// Kind reports the JSON type of v.
func (v Value) Kind() Kind { return v.kind }

// Text is v in string context (text templates, JSON string literals of
// payloads): a string as is, a number as its JSON literal, true or false,
// "" for null, compact JSON for objects and arrays.
func (v Value) Text() string { return v.s }

// String is v.Text().
func (v Value) String() string { return v.s }

// AppendJSON appends v as JSON: strings quoted and escaped as encoding/json
// does (including its HTML escaping of <, > and &), other kinds as their
// compact JSON text.
func (v Value) AppendJSON(dst []byte) []byte {
	switch v.kind {
	case KindString:
		return appendJSONString(dst, v.s)
	case KindNull:
		return append(dst, "null"...)
	}
	return append(dst, v.s...)
}

// MarshalJSON implements json.Marshaler.
func (v Value) MarshalJSON() ([]byte, error) { return v.AppendJSON(nil), nil }

// container returns v's JSON text when v can be traversed: an object, an
// array, or a string whose text is a JSON object or array (a result stored
// earlier as a channel variable). A string is decoded on each call.
func (v Value) container() (string, Kind, bool) {
	switch v.kind {
	case KindObject, KindArray:
		return v.s, v.kind, true
	case KindString:
		t := strings.TrimLeft(v.s, " \t\r\n")
		if t == "" || t[0] != '{' && t[0] != '[' {
			return "", 0, false
		}
		d, err := ParseJSON([]byte(t))
		if err != nil || d.kind != KindObject && d.kind != KindArray {
			return "", 0, false
		}
		return d.s, d.kind, true
	}
	return "", 0, false
}

// Field returns the member name of an object. An exact match wins; else a
// match ignoring case (CXone names are case-insensitive). With duplicate
// keys the last one wins, as in encoding/json and JavaScript. A string
// holding a JSON object is decoded first. The error is ErrNoField or
// ErrWrongType.
func (v Value) Field(name string) (Value, error) {
	raw, k, ok := v.container()
	if !ok || k != KindObject {
		return Value{}, ErrWrongType
	}
	m, ok := member(raw, name)
	if !ok {
		return Value{}, ErrNoField
	}
	return fromJSON(m), nil
}

// Index returns element i (0-based) of an array. A string holding a JSON
// array is decoded first. The error is ErrNoField or ErrWrongType.
func (v Value) Index(i int) (Value, error) {
	raw, k, ok := v.container()
	if !ok || k != KindArray {
		return Value{}, ErrWrongType
	}
	e, ok := element(raw, i)
	if !ok {
		return Value{}, ErrNoField
	}
	return fromJSON(e), nil
}

// Len is the number of elements of an array or members of an object; 0 for
// other kinds.
func (v Value) Len() int {
	n := 0
	if v.kind == KindObject || v.kind == KindArray {
		for it := newItems(v.s); ; n++ {
			if _, _, ok := it.next(); !ok {
				break
			}
		}
	}
	return n
}

// The scanner below reads valid, compact JSON text (Values are only made
// from validated, compacted JSON). It still checks bounds, so that a bug
// cannot turn into a panic.

// skipString returns the index after the string starting at s[i] == '"'.
func skipString(s string, i int) int {
	for j := i + 1; j < len(s); {
		k := strings.IndexByte(s[j:], '"')
		if k < 0 {
			break
		}
		q := j + k
		bs := 0 // backslashes before the quote: an odd count escapes it
		for p := q - 1; p > i && s[p] == '\\'; p-- {
			bs++
		}
		if bs%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
	return len(s)
}

// skipValue returns the index after the value starting at s[i].
func skipValue(s string, i int) int {
	if i >= len(s) {
		return len(s)
	}
	switch s[i] {
	case '"':
		return skipString(s, i)
	case '{', '[':
		depth := 0
		for i < len(s) {
			switch s[i] {
			case '"':
				i = skipString(s, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(s)
	}
	for i < len(s) && s[i] != ',' && s[i] != '}' && s[i] != ']' {
		i++
	}
	return i
}

// items iterates over the members of a compact object (key is the raw key
// with its quotes) or the elements of a compact array (key "").
type items struct {
	s   string
	i   int
	obj bool
}

func newItems(s string) items {
	return items{s: s, i: 1, obj: len(s) > 0 && s[0] == '{'}
}

// next returns the next item, or ok false at the end.
func (it *items) next() (key, val string, ok bool) {
	s, i := it.s, it.i
	if i >= len(s) || s[i] == '}' || s[i] == ']' {
		return "", "", false
	}
	if it.obj {
		ks := i
		i = skipString(s, i)
		key = s[ks:i]
		i++ // ':'
	}
	vs := i
	i = skipValue(s, i)
	if vs >= i || i > len(s) {
		it.i = len(s)
		return "", "", false
	}
	val = s[vs:i]
	if i < len(s) && s[i] == ',' {
		i++
	}
	it.i = i
	return key, val, true
}

// member finds the member name of the compact object s.
func member(s, name string) (string, bool) {
	var exact, folded string
	var hasExact, hasFolded bool
	for it := newItems(s); ; {
		key, val, ok := it.next()
		if !ok || len(key) < 2 {
			break
		}
		k := key[1 : len(key)-1]
		var kb [64]byte
		if strings.IndexByte(k, '\\') >= 0 || !utf8.ValidString(k) {
			k = string(appendUnquoted(kb[:0], k)) // compared only: no copy kept
		}
		if k == name {
			exact, hasExact = val, true
		} else if !hasExact && strings.EqualFold(k, name) {
			folded, hasFolded = val, true
		}
	}
	if hasExact {
		return exact, true
	}
	return folded, hasFolded
}

// element finds element i of the compact array s.
func element(s string, i int) (string, bool) {
	if i < 0 {
		return "", false
	}
	for it := newItems(s); ; i-- {
		_, val, ok := it.next()
		if !ok {
			return "", false
		}
		if i == 0 {
			return val, true
		}
	}
}

// unquote decodes the JSON string literal q (with its quotes) of valid
// JSON, as encoding/json does: invalid UTF-8 and lone surrogates become
// U+FFFD.
func unquote(q string) string {
	if len(q) < 2 {
		return ""
	}
	inner := q[1 : len(q)-1]
	if strings.IndexByte(inner, '\\') < 0 && utf8.ValidString(inner) {
		return inner
	}
	var buf [64]byte // short strings are decoded on the stack
	return string(appendUnquoted(buf[:0], inner))
}

// appendUnquoted appends the decoded text of inner, the inside of a JSON
// string literal.
func appendUnquoted(b []byte, inner string) []byte {
	for i := 0; i < len(inner); {
		c := inner[i]
		switch {
		case c == '\\' && i+1 < len(inner):
			i++
			switch e := inner[i]; e {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, n := decodeU(inner[i-1:])
				b = utf8.AppendRune(b, r)
				i += n - 2
			default: // " \ /
				b = append(b, e)
			}
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(inner[i:])
			b = utf8.AppendRune(b, r) // RuneError for an invalid byte
			i += size
		}
	}
	return b
}

// decodeU decodes the \uXXXX escape (or surrogate pair) at the start of s
// and returns the rune and the bytes used.
func decodeU(s string) (rune, int) {
	r := hex4(s)
	if r < 0 {
		return utf8.RuneError, min(len(s), 6)
	}
	if utf16.IsSurrogate(r) {
		if r2 := hex4(s[6:]); r2 >= 0 {
			if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
				return d, 12
			}
		}
		return utf8.RuneError, 6
	}
	return r, 6
}

// hex4 reads the XXXX of "\uXXXX" at the start of s, or returns -1.
func hex4(s string) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range []byte(s[2:6]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// appendJSONString appends s as a quoted JSON string.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendEscaped appends s escaped for the inside of a JSON string literal,
// byte for byte as encoding/json.Marshal does: \" \\ \b \f \n \r \t, other
// control characters and <, >, & as \u00XX, U+2028 and U+2029 as \u2028
// and \u2029, and each byte of invalid UTF-8 as \ufffd.
func appendEscaped(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

// Vars holds the variables of one call. It is owned by the goroutine that
// runs the call and is not safe for concurrent use.
//
// A name is looked up in this order: variables the flow set (Set, SetString,
// SetJSON), then the built-ins given to NewVars (ANI, DNIS, ContactID...),
// then the channel variables (the connect data). CXone variable names are
// case-insensitive, and so are the flow's variables and the built-ins here
// (ASCII case folding); the channel lookup gets the name as written and
// decides itself. Unset hides a name in all three layers. A nil *Vars has
// no variables.
type Vars struct {
	channel  func(name string) (string, bool)
	builtins map[string]Value // by lowerASCII(name)
	set      map[string]flowVar
	order    []string // keys of set, in the order they were first set
}

type flowVar struct {
	name  string // as last written
	v     Value
	unset bool // Unset: hides the built-in and channel variable too
}

// NewVars returns the variables of a call. channel looks up a channel
// variable (nil: none); builtins are values such as ANI, DNIS and
// ContactID, kept as strings.
func NewVars(channel func(name string) (string, bool), builtins map[string]string) *Vars {
	v := &Vars{channel: channel, builtins: make(map[string]Value, len(builtins))}
	for name, s := range builtins {
		v.builtins[lowerASCII(name)] = StringValue(s)
	}
	return v
}

// Get returns the value of a variable.
func (v *Vars) Get(name string) (Value, bool) {
	return v.get(name, lowerASCII(name))
}

// get looks name up; key is lowerASCII(name), computed once per expression.
func (v *Vars) get(name, key string) (Value, bool) {
	if v == nil {
		return Value{}, false
	}
	if fv, ok := v.set[key]; ok {
		return fv.v, !fv.unset
	}
	if val, ok := v.builtins[key]; ok {
		return val, true
	}
	if v.channel != nil {
		if s, ok := v.channel(name); ok {
			return StringValue(s), true
		}
	}
	return Value{}, false
}

// Set sets a flow variable, hiding a built-in or channel variable of the
// same name (in any case). Names keeps the spelling of the last Set.
func (v *Vars) Set(name string, val Value) {
	key := lowerASCII(name)
	if v.set == nil {
		v.set = make(map[string]flowVar)
	}
	if _, ok := v.set[key]; !ok {
		v.order = append(v.order, key)
	}
	v.set[key] = flowVar{name: name, v: val}
}

// SetString sets a flow variable to a string.
func (v *Vars) SetString(name, s string) { v.Set(name, StringValue(s)) }

// SetJSON sets a flow variable to the JSON document raw (see ParseJSON). On
// error the variable is left unchanged.
func (v *Vars) SetJSON(name string, raw []byte) error {
	val, err := ParseJSON(raw)
	if err != nil {
		return err
	}
	v.Set(name, val)
	return nil
}

// Unset removes a variable for the rest of the call: Get reports it
// missing, even when a built-in or channel variable has that name (the
// engine clears the channel variable too).
func (v *Vars) Unset(name string) {
	v.Set(name, Value{})
	key := lowerASCII(name)
	fv := v.set[key]
	fv.unset = true
	v.set[key] = fv
}

// Names lists the variables the flow set and did not unset, in the order
// they were first set, each spelled as in its last Set or Unset.
func (v *Vars) Names() []string {
	names := make([]string, 0, len(v.order))
	for _, key := range v.order {
		if fv := v.set[key]; !fv.unset {
			names = append(names, fv.name)
		}
	}
	return names
}

// lowerASCII lowers ASCII letters; it allocates only when s has upper case.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
