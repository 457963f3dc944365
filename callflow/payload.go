package callflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// PayloadTemplate is a parsed payload template, a step's payload (payload,
// wfe_payload) or a custom event's body: JSON text with {expr} references.
// It is immutable and may be shared between calls.
//
// JSON has '{' everywhere, so where a reference may stand depends on where
// it is:
//
//   - Outside a JSON string literal, a '{' immediately followed by a letter
//     or '_' starts a reference, which runs to the next '}'. Every other '{'
//     and every '}' is JSON. A JSON object starts with '{' followed by white
//     space, '"' or '}', never a letter, so the two cannot be confused:
//     {}, { }, {"a":1}, {"a":{"b":{x}}} are JSON (the last with one
//     reference); {a} and {x.asjson()} are references. "{{" and "}}" are NOT
//     escapes here ("}}" closes two objects). A reference here is one JSON
//     value: the variable's JSON (strings quoted and escaped, numbers, true,
//     false, null, objects and arrays as compact JSON); ".asjson()" says the
//     same explicitly.
//   - Inside a JSON string literal the text template rules apply, as in
//     ParseTemplate: "{expr}" is a reference, "{{" and "}}" are literal
//     braces, and a lone '{' or '}' is an error. The reference's text form
//     (Value.Text) is inserted JSON-escaped, so no value can end the string
//     or add keys; with ".asjson()" the value's JSON text is inserted,
//     escaped. JSON escapes the author wrote (\", \u00e9) are kept.
//
// The template must be JSON once every reference outside a string is taken
// for a value and every reference inside one for text; ParsePayload checks
// that, so a reference cannot stand where a value cannot ({{x}:1} is an
// error: write {"{x}":1} for a key). The template must be valid UTF-8.
//
// Rendering compacts: white space outside string literals is dropped at
// parse time, so the rendered payload is compact JSON at no cost at run
// time, and logs show it on one line.
type PayloadTemplate struct {
	src    string
	parts  []payloadPart
	litLen int // total length of the literal parts
	refs   int
}

// payloadPart is compact literal JSON text (braces unescaped) or a
// reference.
type payloadPart struct {
	lit      string
	expr     Expr
	isRef    bool
	inString bool // the reference is inside a JSON string literal
}

// Errors of PayloadTemplate.Render, in a *PayloadError. The step maps both
// to OnInvalidInput.
var (
	ErrPayloadTooLarge = errors.New("payload over the size limit")
	ErrPayloadInvalid  = errors.New("payload is not valid JSON")
)

// PayloadError is a rendered payload that must not be sent.
type PayloadError struct {
	Err   error // ErrPayloadTooLarge or ErrPayloadInvalid
	Size  int   // bytes rendered when the error was found
	Limit int   // the size limit, for ErrPayloadTooLarge
}

func (e *PayloadError) Error() string {
	if errors.Is(e.Err, ErrPayloadTooLarge) {
		return fmt.Sprintf("payload over the size limit of %d bytes", e.Limit)
	}
	return e.Err.Error()
}

func (e *PayloadError) Unwrap() error { return e.Err }

// ParsePayload parses a payload template. The error is an *ExprError whose
// Offset is in s: a reference that does not parse, a lone brace inside a
// string, invalid UTF-8, or text that is not JSON.
func ParsePayload(s string) (*PayloadTemplate, error) {
	if !utf8.ValidString(s) {
		i := 0
		for i < len(s) {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			i += size
		}
		return nil, syntaxError(s, i, "the payload is not valid UTF-8")
	}
	if strings.TrimSpace(s) == "" {
		return nil, syntaxError(s, 0, "empty payload")
	}
	p := &PayloadTemplate{src: s}
	// skel is the payload with each reference outside a string replaced by
	// null and each one inside a string removed: it must be valid JSON.
	// skelSrc[k] is the offset in s that skel[k] comes from.
	skel := make([]byte, 0, len(s))
	skelSrc := make([]int, 0, len(s))
	var lit []byte
	keep := func(b byte, at int) {
		skel = append(skel, b)
		skelSrc = append(skelSrc, at)
	}
	flush := func() {
		if len(lit) > 0 {
			p.parts = append(p.parts, payloadPart{lit: string(lit)})
			p.litLen += len(lit)
			lit = lit[:0]
		}
	}
	inString := false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case !inString && c == '{' && i+1 < len(s) && isNameStart(s[i+1]):
			end, e, err := scanBrace(s, i, "")
			if err != nil {
				return nil, err
			}
			flush()
			p.parts = append(p.parts, payloadPart{expr: e, isRef: true})
			p.refs++
			for _, b := range []byte("null") {
				keep(b, i)
			}
			i = end
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			keep(c, i)
			i++
		case !inString:
			inString = c == '"'
			lit = append(lit, c)
			keep(c, i)
			i++
		case c == '\\':
			if i+1 < len(s) && strings.IndexByte(`"\/bfnrtu`, s[i+1]) < 0 {
				return nil, syntaxError(s, i, "invalid escape %s in a JSON string (write {{ and }} for literal braces)", describe(s, i+1))
			}
			lit = append(lit, c)
			keep(c, i)
			if i+1 < len(s) {
				lit = append(lit, s[i+1])
				keep(s[i+1], i+1)
			}
			i += 2
		case c == '"':
			inString = false
			lit = append(lit, c)
			keep(c, i)
			i++
		case c == '{' || c == '}':
			end, e, err := scanBrace(s, i, literalBraceHint)
			if err != nil {
				return nil, err
			}
			if e.src == "" { // "{{" or "}}"
				lit = append(lit, c)
				keep(c, i)
			} else {
				flush()
				p.parts = append(p.parts, payloadPart{expr: e, isRef: true, inString: true})
				p.refs++
			}
			i = end
		default:
			lit = append(lit, c)
			keep(c, i)
			i++
		}
	}
	flush()
	if err := checkSkeleton(s, skel, skelSrc); err != nil {
		return nil, err
	}
	return p, nil
}

// checkSkeleton reports where skel, the payload with its references
// replaced, is not JSON, as a position in the source s.
func checkSkeleton(s string, skel []byte, skelSrc []int) *ExprError {
	if json.Valid(skel) {
		return nil
	}
	var raw json.RawMessage
	err := json.Unmarshal(skel, &raw)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return syntaxError(s, 0, "not valid JSON")
	}
	if strings.HasPrefix(se.Error(), "unexpected end") {
		return syntaxError(s, len(s), "not valid JSON: unexpected end (an unclosed string, object or array?)")
	}
	k := min(max(int(se.Offset)-1, 0), len(skel)-1)
	off := skelSrc[k]
	if s[off] == '{' && off+1 < len(s) && isNameStart(s[off+1]) {
		end := off + strings.IndexByte(s[off:], '}') + 1
		return syntaxError(s, off, "reference %s cannot stand here: outside a JSON string a reference is one whole JSON value (write \"%s\" for its text inside a string or as a key)", s[off:end], s[off:end])
	}
	return syntaxError(s, off, "not valid JSON: %s", se.Error())
}

// Render returns the payload for a call: compact, valid JSON of at most
// maxBytes bytes (maxBytes <= 0: no limit). A reference without a value
// (unknown variable, missing field) renders as null outside a string and
// as nothing inside one, and is returned as a warning (an *EvalError) for
// the caller to log. The error is a *PayloadError: over the limit, or not
// valid JSON (which the parse-time check should make impossible).
func (p *PayloadTemplate) Render(v *Vars, maxBytes int) ([]byte, []error, error) {
	out := make([]byte, 0, p.litLen+24*p.refs)
	var warnings []error
	var scratch []byte
	for _, part := range p.parts {
		switch {
		case !part.isRef:
			out = append(out, part.lit...)
		default:
			val, err := part.expr.value(v)
			switch {
			case err != nil:
				warnings = append(warnings, err)
				if !part.inString {
					out = append(out, "null"...)
				}
			case !part.inString:
				out = val.AppendJSON(out)
			case part.expr.asJSON:
				scratch = val.AppendJSON(scratch[:0])
				out = appendEscaped(out, string(scratch))
			default:
				out = appendEscaped(out, val.Text())
			}
		}
		if maxBytes > 0 && len(out) > maxBytes {
			return nil, warnings, &PayloadError{Err: ErrPayloadTooLarge, Size: len(out), Limit: maxBytes}
		}
	}
	if !json.Valid(out) {
		return nil, warnings, &PayloadError{Err: ErrPayloadInvalid, Size: len(out), Limit: maxBytes}
	}
	return out, warnings, nil
}

// Refs lists the payload's references in order, for eslapp check.
func (p *PayloadTemplate) Refs() []Expr {
	if p == nil {
		return nil
	}
	refs := make([]Expr, 0, p.refs)
	for _, part := range p.parts {
		if part.isRef {
			refs = append(refs, part.expr)
		}
	}
	return refs
}

// String returns the payload template as written.
func (p *PayloadTemplate) String() string {
	if p == nil {
		return ""
	}
	return p.src
}
