package callflow

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// An expression is the text between the braces of a {reference}:
//
//	expr   = name { "." field | "[" index "]" | "['" key "']" } [ ".asjson()" ]
//	name   = [A-Za-z_][A-Za-z0-9_]*        a variable, case-insensitive
//	field  = [A-Za-z0-9_-]+                an object member
//	index  = [0-9]+                        an array element, 0-based, no leading zeros
//	key    = any characters but ' " \ { } and control characters
//
// "['key']" reads a member whose name is not a field (spaces, dots, '@':
// "{account['@odata.etag']}"). The quotes are single so that the same
// reference can be written inside a JSON string literal of a payload and
// inside a quoted prompt segment. Member names match exactly, else ignoring
// case. Array indexes are 0-based as in JSON and JavaScript (CXone Studio's
// own arrays count from 1). ".asjson()" (any case) must come last: it gives
// the value as JSON text, a string quoted and escaped. No white space is
// allowed anywhere in an expression.
//
// Traversal reads JSON values; a string whose text is a JSON object or array
// (a CRM result stored earlier in a channel variable) is decoded on demand,
// so "{workflowResultOutput.id}" works in dialplan mode too. A string is
// never taken for JSON otherwise: "{ANI}" is the string "5551234", never
// the number.

// Expr is a parsed expression. The zero Expr is not valid; Exprs are
// immutable and may be shared.
type Expr struct {
	src    string
	root   string     // variable name as written
	key    string     // lowerASCII(root)
	path   []pathStep // fields and indexes after the root
	asJSON bool
}

type pathStep struct {
	field string // member name, when index < 0
	index int    // element index, or -1
	end   int    // offset in src after this step, for messages
}

// ExprError is an expression, template or payload that cannot be parsed.
// Offset is the 0-based byte offset in the parsed text; Line and Column are
// 1-based and count characters (runes), as in prompts.SyntaxError.
type ExprError struct {
	Offset       int
	Line, Column int
	Msg          string
}

func (e *ExprError) Error() string {
	if e.Line > 1 {
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("column %d: %s", e.Column, e.Msg)
}

// syntaxError makes an *ExprError at byte offset off of src.
func syntaxError(src string, off int, format string, args ...any) *ExprError {
	off = min(max(off, 0), len(src))
	line, col := 1, 1
	for _, r := range src[:off] {
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return &ExprError{Offset: off, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

// EvalError is an expression that has no value for this call. Err is
// ErrUnknownVar, ErrNoField or ErrWrongType (test with errors.Is).
type EvalError struct {
	Expr   string // the expression as written
	Err    error
	Detail string // what was missing, e.g. `contact has no field "nme"`
}

func (e *EvalError) Error() string { return "{" + e.Expr + "}: " + e.Detail }

func (e *EvalError) Unwrap() error { return e.Err }

// maxIndexDigits bounds an index so that it fits an int everywhere.
const maxIndexDigits = 9

// ParseExpr parses the text between the braces of a reference. The error is
// an *ExprError whose Offset is in s.
func ParseExpr(s string) (Expr, error) {
	e, err := parseExpr(s, s, 0)
	if err != nil {
		return Expr{}, err
	}
	return e, nil
}

// parseExpr parses s, which starts at byte offset base of full (the
// template it is part of); errors are positioned in full.
func parseExpr(s, full string, base int) (Expr, *ExprError) {
	fail := func(off int, format string, args ...any) (Expr, *ExprError) {
		return Expr{}, syntaxError(full, base+off, format, args...)
	}
	if s == "" {
		return fail(0, "empty reference: write a variable name between the braces (write {{ for a literal {)")
	}
	if !isNameStart(s[0]) {
		return fail(0, "a reference starts with a variable name (a letter or '_'), not %s", describe(s, 0))
	}
	i := 1
	for i < len(s) && isNameByte(s[i]) {
		i++
	}
	e := Expr{src: s, root: s[:i]}
	e.key = lowerASCII(e.root)
	for i < len(s) {
		if e.asJSON {
			return fail(i, ".asjson() must come last")
		}
		switch s[i] {
		case '.':
			j := i + 1
			for j < len(s) && isFieldByte(s[j]) {
				j++
			}
			if j == i+1 {
				return fail(j, "a field name after '.' (letters, digits, '_', '-'), not %s; write ['key'] for other names", describe(s, j))
			}
			name := s[i+1 : j]
			if j < len(s) && s[j] == '(' {
				if !strings.EqualFold(name, "asjson") {
					return fail(i+1, "unknown function %s() (the only one is asjson())", name)
				}
				if j+1 >= len(s) || s[j+1] != ')' {
					return fail(j+1, "asjson takes no arguments: write asjson()")
				}
				e.asJSON = true
				i = j + 2
				continue
			}
			e.path = append(e.path, pathStep{field: name, index: -1, end: j})
			i = j
		case '[':
			j, step, err := parseBracket(s, i)
			if err != "" {
				return fail(j, "%s", err)
			}
			e.path = append(e.path, step)
			i = j
		default:
			return fail(i, "unexpected %s in a reference (after a name: .field, [index], ['key'] or .asjson())", describe(s, i))
		}
	}
	return e, nil
}

// parseBracket parses "[0]" or "['key']" at s[i] == '['. It returns the
// offset after it, or the offset of the problem and a message.
func parseBracket(s string, i int) (int, pathStep, string) {
	j := i + 1
	if j < len(s) && s[j] == '\'' {
		k := j + 1
		for k < len(s) && s[k] != '\'' {
			c := s[k]
			if c < 0x20 || c == 0x7f || c == '"' || c == '\\' || c == '{' || c == '}' {
				return k, pathStep{}, fmt.Sprintf("%s is not allowed in a ['key']", describe(s, k))
			}
			k++
		}
		if k >= len(s) {
			return j, pathStep{}, "unterminated ['key']: a key ends with a quote and ']'"
		}
		if k+1 >= len(s) || s[k+1] != ']' {
			return k + 1, pathStep{}, "a ['key'] ends with a quote and ']'"
		}
		key := s[j+1 : k]
		if !utf8.ValidString(key) {
			return j + 1, pathStep{}, "a ['key'] must be valid UTF-8"
		}
		return k + 2, pathStep{field: key, index: -1, end: k + 2}, ""
	}
	k := j
	for k < len(s) && '0' <= s[k] && s[k] <= '9' {
		k++
	}
	switch {
	case k == j:
		return j, pathStep{}, fmt.Sprintf("an index (digits) or a 'key' after '[', not %s", describe(s, j))
	case k-j > 1 && s[j] == '0':
		return j, pathStep{}, "an index has no leading zeros"
	case k-j > maxIndexDigits:
		return j, pathStep{}, fmt.Sprintf("an index has at most %d digits", maxIndexDigits)
	case k >= len(s) || s[k] != ']':
		return k, pathStep{}, fmt.Sprintf("']' after an index, not %s", describe(s, k))
	}
	n, _ := strconv.Atoi(s[j:k])
	return k + 1, pathStep{index: n, end: k + 1}, ""
}

// describe names the character at s[i] for a message.
func describe(s string, i int) string {
	if i >= len(s) {
		return "the end"
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return strconv.QuoteRune(r)
}

func isNameStart(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isNameByte(c byte) bool  { return isNameStart(c) || '0' <= c && c <= '9' }
func isFieldByte(c byte) bool { return isNameByte(c) || c == '-' }

// ValidName reports whether s is a variable name an expression can refer
// to: [A-Za-z_][A-Za-z0-9_]*.
func ValidName(s string) bool {
	if s == "" || !isNameStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

// String returns the expression as written.
func (e Expr) String() string { return e.src }

// Root returns the variable the expression reads, as written.
func (e Expr) Root() string { return e.root }

// AsJSON reports whether the expression ends in .asjson().
func (e Expr) AsJSON() bool { return e.asJSON }

// HasPath reports whether the expression reads into its variable (a field
// or an index after the name).
func (e Expr) HasPath() bool { return len(e.path) > 0 }

// Eval evaluates the expression for a call. With .asjson() the result is a
// string Value holding the JSON text. The error is an *EvalError wrapping
// ErrUnknownVar, ErrNoField or ErrWrongType. A nil v has no variables.
func (e Expr) Eval(v *Vars) (Value, error) {
	val, err := e.value(v)
	if err != nil {
		return Value{}, err
	}
	if e.asJSON {
		return StringValue(string(val.AppendJSON(nil))), nil
	}
	return val, nil
}

// EvalOn evaluates the expression with its variable bound to root: for a
// step's mappings, "result.records[0].id" on the step's result.
func (e Expr) EvalOn(root Value) (Value, error) {
	val, err := e.walk(root)
	if err != nil {
		return Value{}, err
	}
	if e.asJSON {
		return StringValue(string(val.AppendJSON(nil))), nil
	}
	return val, nil
}

// value evaluates the expression without its .asjson().
func (e Expr) value(v *Vars) (Value, error) {
	if e.root == "" {
		return Value{}, &EvalError{Expr: e.src, Err: ErrUnknownVar, Detail: "empty expression"}
	}
	root, ok := v.get(e.root, e.key)
	if !ok {
		return Value{}, &EvalError{Expr: e.src, Err: ErrUnknownVar, Detail: fmt.Sprintf("unknown variable %q", e.root)}
	}
	return e.walk(root)
}

// walk follows the path from the root's value.
func (e Expr) walk(val Value) (Value, error) {
	at := e.root
	for _, st := range e.path {
		var next Value
		var err error
		if st.index >= 0 {
			next, err = val.Index(st.index)
		} else {
			next, err = val.Field(st.field)
		}
		if err != nil {
			return Value{}, e.stepError(at, val, st, err)
		}
		val = next
		at = e.src[:st.end]
	}
	return val, nil
}

func (e Expr) stepError(at string, val Value, st pathStep, err error) error {
	var detail string
	switch {
	case err == ErrWrongType && st.index >= 0:
		detail = fmt.Sprintf("%s is %s, not an array", at, kindPhrase(val))
	case err == ErrWrongType:
		detail = fmt.Sprintf("%s is %s, not an object", at, kindPhrase(val))
	case st.index >= 0:
		detail = fmt.Sprintf("%s has no element [%d] (%d elements)", at, st.index, val.containerLen())
	default:
		detail = fmt.Sprintf("%s has no field %q", at, st.field)
	}
	return &EvalError{Expr: e.src, Err: err, Detail: detail}
}

// kindPhrase names val's kind for a message: "a string", "an object".
func kindPhrase(val Value) string {
	switch k := val.Kind(); k {
	case KindObject, KindArray:
		return "an " + k.String()
	case KindNull:
		return "null"
	default:
		return "a " + k.String()
	}
}

// containerLen is Len, also for a string holding a JSON array or object.
func (v Value) containerLen() int {
	raw, k, ok := v.container()
	if !ok {
		return 0
	}
	return Value{kind: k, s: raw}.Len()
}
