package crm

import (
	"errors"
	"fmt"
	"github.com/eslapp/eslapp/conf"
	"net/url"
	"strings"
)

// pathTemplate is a workflow path such as "/contacts/{phone}/tickets",
// compiled at load. Values put into it come from callers (caller ID, CRM
// data), so expansion path-escapes them and refuses anything that could
// leave the path: a value can never change scheme or host, add a query or
// fragment, or be a "." or ".." segment.
type pathTemplate struct {
	parts []pathPart
}

type pathPart struct {
	lit  string // escaped literal text, when name is ""
	name string // variable name
}

// compilePath checks a configured path; errors are messages for FieldError.
func compilePath(p string) (pathTemplate, error) {
	if !strings.HasPrefix(p, "/") {
		return pathTemplate{}, fmt.Errorf("%q must start with \"/\"", conf.Clip(p, 80))
	}
	var t pathTemplate
	rest := p
	for rest != "" {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			i = len(rest)
		}
		if i > 0 {
			lit := rest[:i]
			if err := checkLiteral(lit); err != nil {
				return pathTemplate{}, err
			}
			t.parts = append(t.parts, pathPart{lit: lit})
			rest = rest[i:]
			continue
		}
		if rest[0] == '}' {
			return pathTemplate{}, errors.New(`"}" without "{"`)
		}
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return pathTemplate{}, errors.New(`"{" without "}"`)
		}
		name := rest[1:end]
		if !validVarName(name) {
			return pathTemplate{}, fmt.Errorf("{%s}: a variable name is letters, digits, '_', '.' and '-', starting with a letter or '_'", conf.Clip(name, 40))
		}
		t.parts = append(t.parts, pathPart{name: name})
		rest = rest[end+1:]
	}
	// Dot and empty segments: look at the template with variables as "x".
	shape := t.shape()
	if strings.Contains(shape, "//") {
		return pathTemplate{}, errors.New(`empty path segment ("//")`)
	}
	for _, seg := range strings.Split(shape, "/") {
		if seg, _ = url.PathUnescape(seg); seg == "." || seg == ".." {
			return pathTemplate{}, fmt.Errorf("%q segment not allowed", seg)
		}
	}
	return t, nil
}

// shape is the template with each variable replaced by "x".
func (t pathTemplate) shape() string {
	var b strings.Builder
	for _, part := range t.parts {
		if part.name != "" {
			b.WriteByte('x')
		} else {
			b.WriteString(part.lit)
		}
	}
	return b.String()
}

// checkLiteral allows RFC 3986 path characters and valid %XX escapes.
func checkLiteral(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0:
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return fmt.Errorf("%q: '%%' must start an escape such as %%2F", conf.Clip(s, 80))
			}
			i += 2
		case c == '?' || c == '#':
			return fmt.Errorf("%q: a path cannot hold a query or fragment", conf.Clip(s, 80))
		default:
			return fmt.Errorf("%q: character %q must be percent-escaped", conf.Clip(s, 80), c)
		}
	}
	return nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func validVarName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// vars lists the template's variable names.
func (t pathTemplate) vars() []string {
	var names []string
	for _, p := range t.parts {
		if p.name != "" {
			names = append(names, p.name)
		}
	}
	return names
}

// expand fills the template. The error is an ErrInvalidInput rejection.
func (t pathTemplate) expand(lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.lit)
			continue
		}
		var v string
		ok := false
		if lookup != nil {
			v, ok = lookup(p.name)
		}
		switch {
		case !ok:
			return "", reject(ErrInvalidInput, "path variable {%s} has no value", p.name)
		case v == "":
			return "", reject(ErrInvalidInput, "path variable {%s} is empty", p.name)
		case v == "." || v == "..":
			return "", reject(ErrInvalidInput, "path variable {%s} is %q, which would change the path", p.name, v)
		}
		// PathEscape escapes '/', '?', '#' and '%', so a value stays inside
		// its segment.
		b.WriteString(url.PathEscape(v))
	}
	return b.String(), nil
}

// joinURL appends an expanded path to the base URL and checks the result
// still points at the base's origin: a second line of defence should the
// escaping above ever be wrong.
func joinURL(base *url.URL, path string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(base.String(), "/") + path)
	if err != nil {
		return nil, reject(ErrInvalidInput, "request path is not valid")
	}
	if u.Scheme != base.Scheme || u.Host != base.Host || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return nil, reject(ErrInvalidInput, "request path would leave the CRM's base URL")
	}
	// Segments as sent: an escaped "/" inside a value is not a separator.
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		if seg, err = url.PathUnescape(seg); err != nil || seg == "." || seg == ".." {
			return nil, reject(ErrInvalidInput, "request path would leave the CRM's base URL")
		}
	}
	return u, nil
}
