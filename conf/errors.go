package conf

import "strings"

// FieldError is one problem in the configuration, for every package that
// checks a part of it. Key is the path from the configuration's root, e.g.
// {"integrations", "demo-crm", "headers", "Authorization"}, so that
// cmd/eslapp can name the file and line. Msg never holds a secret.
type FieldError struct {
	Key []string
	Msg string
}

func (e *FieldError) Error() string { return KeyString(e.Key) + ": " + e.Msg }

// FieldErrors is every problem found, in a stable order.
type FieldErrors []*FieldError

func (es FieldErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find each *FieldError.
func (es FieldErrors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// Add records a problem at key.
func (es *FieldErrors) Add(key []string, msg string) {
	*es = append(*es, &FieldError{Key: key, Msg: msg})
}

// KeyString writes a key path as TOML does: dotted, quoting parts that are
// not bare keys ("integrations.\"crm.v2\".timeout_ms").
func KeyString(key []string) string {
	var b strings.Builder
	for i, k := range key {
		if i > 0 {
			b.WriteByte('.')
		}
		if bareKey(k) {
			b.WriteString(k)
		} else {
			b.WriteString(quoteKey(k))
		}
	}
	return b.String()
}

func bareKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || c == '-' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func quoteKey(k string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range k {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Clip shortens a value quoted in a message (an outside value, a key the
// configuration misspelled) to n bytes and an ellipsis.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
