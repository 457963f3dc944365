package callflow

import "strings"

// Template is a parsed text template: literal text with {expr} references
// (see ParseExpr), for configuration and workflow ids, set actions,
// transfer destinations and custom event headers. Templates are immutable
// and may be shared between calls.
type Template struct {
	src   string
	parts []textPart
	size  int // a guess at the rendered size
}

// textPart is literal text (braces unescaped) or a reference.
type textPart struct {
	lit   string
	expr  Expr
	isRef bool
}

// ParseTemplate parses a text template, with the rules of prompt sequences
// (package prompts): "{expr}" is a reference, "{{" and "}}" are literal
// braces; a lone '}', an unterminated '{', a '{' inside a reference and an
// expression that does not parse are errors (*ExprError, Offset in s).
func ParseTemplate(s string) (*Template, error) {
	t := &Template{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, textPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		j := strings.IndexAny(s[i:], "{}")
		if j < 0 {
			lit.WriteString(s[i:])
			break
		}
		lit.WriteString(s[i : i+j])
		i += j
		end, e, err := scanBrace(s, i, literalBraceHint)
		if err != nil {
			return nil, err
		}
		if e.src == "" {
			lit.WriteByte(s[i]) // "{{" or "}}"
		} else {
			flush()
			t.parts = append(t.parts, textPart{expr: e, isRef: true})
		}
		i = end
	}
	flush()
	for _, p := range t.parts {
		t.size += len(p.lit)
		if p.isRef {
			t.size += 16
		}
	}
	return t, nil
}

// literalBraceHint ends the messages about braces where "{{" is an escape.
const literalBraceHint = " (write {{ for a literal {)"

// scanBrace reads what starts at s[i], a '{' or '}', with the text
// template rules: it returns the offset after it and, for a reference, the
// parsed expression (a zero Expr for "{{" and "}}"). hint ends messages.
func scanBrace(s string, i int, hint string) (int, Expr, *ExprError) {
	c := s[i]
	if i+1 < len(s) && s[i+1] == c {
		return i + 2, Expr{}, nil
	}
	if c == '}' {
		return 0, Expr{}, syntaxError(s, i, "'}' without a matching '{' (write }} for a literal })")
	}
	j := strings.IndexAny(s[i+1:], "{}\"\\")
	if j < 0 {
		return 0, Expr{}, syntaxError(s, i, "unterminated '{': a reference ends with '}'%s", hint)
	}
	end := i + 1 + j
	switch s[end] {
	case '{':
		return 0, Expr{}, syntaxError(s, end, "'{' inside a reference%s", hint)
	case '"', '\\':
		// In a payload string, the string ends before the reference does.
		return 0, Expr{}, syntaxError(s, i, "unterminated '{': a reference ends with '}' before any %s%s", describe(s, end), hint)
	}
	e, err := parseExpr(s[i+1:end], s, i+1)
	if err != nil {
		return 0, Expr{}, err
	}
	return end + 1, e, nil
}

// Render returns the template's text for a call, each reference replaced by
// its value's text form (Value.Text). A reference without a value (unknown
// variable, missing field) renders as "" and is returned as a warning, an
// *EvalError, for the caller to log. A nil Template renders "".
func (t *Template) Render(v *Vars) (string, []error) {
	if t == nil {
		return "", nil
	}
	if len(t.parts) == 1 {
		p := t.parts[0]
		if !p.isRef {
			return p.lit, nil
		}
		val, err := p.expr.Eval(v)
		if err != nil {
			return "", []error{err}
		}
		return val.Text(), nil
	}
	var b strings.Builder
	b.Grow(t.size)
	var warnings []error
	for _, p := range t.parts {
		if !p.isRef {
			b.WriteString(p.lit)
			continue
		}
		val, err := p.expr.Eval(v)
		if err != nil {
			warnings = append(warnings, err)
			continue
		}
		b.WriteString(val.Text())
	}
	return b.String(), warnings
}

// Refs lists the template's references in order, for eslapp check.
func (t *Template) Refs() []Expr {
	if t == nil {
		return nil
	}
	var refs []Expr
	for _, p := range t.parts {
		if p.isRef {
			refs = append(refs, p.expr)
		}
	}
	return refs
}

// Literal returns the template's text when it has no reference.
func (t *Template) Literal() (string, bool) {
	if t == nil {
		return "", true
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.isRef {
			return "", false
		}
		b.WriteString(p.lit)
	}
	return b.String(), true
}

// String returns the template as written.
func (t *Template) String() string {
	if t == nil {
		return ""
	}
	return t.src
}
