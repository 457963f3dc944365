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
func checkLiteral(s string) error { return checkURIText(s, "-._~!$&'()*+,;=:@/") }

// checkURIText allows letters, digits, the bytes of allowed and valid %XX
// escapes in s, a literal of a workflow path or query.
func checkURIText(s, allowed string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte(allowed, c) >= 0:
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return fmt.Errorf("%q: '%%' must start an escape such as %%2F", conf.Clip(s, 80))
			}
			i += 2
		case c == '#':
			return fmt.Errorf("%q: a path cannot hold a fragment", conf.Clip(s, 80))
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
// escaping above ever be wrong. The query, built by expandQuery, is set
// after the check.
func joinURL(base *url.URL, path, query string) (*url.URL, error) {
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
	u.RawQuery = query
	return u, nil
}

// queryParam is one name=value of a workflow's query string, compiled at
// load: the name a literal, the value literals, secret references resolved
// then (${env:FN_KEY}: a function key, an API stage) and {var}s filled per
// request. Every value eslapp inserts is query-escaped, so it stays inside
// its parameter; secrets never reach a log or an error (see scrubURL).
type queryParam struct {
	name  string
	parts []queryPart
}

type queryPart struct {
	lit    string      // as written, when neither of the others
	secret conf.Secret // a resolved ${env:}/${file:} reference
	ref    bool        // secret holds this part
	name   string      // a {var}
}

// compileQuery checks the query of a workflow path ("a=1&code=${env:K}&p={phone}").
func compileQuery(q string, res conf.Resolver) ([]queryParam, error) {
	if q == "" {
		return nil, errors.New(`empty query after "?"`)
	}
	var params []queryParam
	for _, pair := range strings.Split(q, "&") {
		name, value, hasValue := strings.Cut(pair, "=")
		if name == "" {
			return nil, fmt.Errorf("%q: a query parameter needs a name", conf.Clip(pair, 60))
		}
		if err := checkQueryLiteral(name, false); err != nil {
			return nil, err
		}
		p := queryParam{name: name}
		if !hasValue {
			params = append(params, p)
			continue
		}
		parts, err := compileQueryValue(value, res)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", conf.Clip(name, 40), err)
		}
		p.parts = parts
		if len(p.parts) == 0 {
			p.parts = []queryPart{{lit: ""}}
		}
		params = append(params, p)
	}
	return params, nil
}

// compileQueryValue splits a value into literals, ${env:}/${file:}
// references (resolved now) and {var}s.
func compileQueryValue(v string, res conf.Resolver) ([]queryPart, error) {
	var parts []queryPart
	for v != "" {
		switch {
		case strings.HasPrefix(v, "${"):
			end := strings.IndexByte(v, '}')
			if end < 0 {
				return nil, errors.New(`"${" without "}"`)
			}
			val, _, err := res.Resolve(v[:end+1])
			if err != nil {
				return nil, err
			}
			parts = append(parts, queryPart{secret: val, ref: true})
			v = v[end+1:]
		case v[0] == '{':
			end := strings.IndexByte(v, '}')
			if end < 0 {
				return nil, errors.New(`"{" without "}"`)
			}
			name := v[1:end]
			if !validVarName(name) {
				return nil, fmt.Errorf("{%s}: a variable name is letters, digits, '_', '.' and '-', starting with a letter or '_'", conf.Clip(name, 40))
			}
			parts = append(parts, queryPart{name: name})
			v = v[end+1:]
		default:
			i := strings.IndexAny(v, "{")
			if j := strings.Index(v, "${"); j >= 0 && (i < 0 || j < i) {
				i = j
			}
			if i < 0 {
				i = len(v)
			}
			if i == 0 { // a lone "$" before "{" is not a reference here
				i = 1
			}
			if err := checkQueryLiteral(v[:i], true); err != nil {
				return nil, err
			}
			parts = append(parts, queryPart{lit: v[:i]})
			v = v[i:]
		}
	}
	return parts, nil
}

// checkQueryLiteral allows RFC 3986 query characters and valid %XX
// escapes; '&' separates parameters, '=' a name from its value (a value
// may hold more), '#' would start a fragment, and ';' must be escaped
// (some servers split a query at it).
func checkQueryLiteral(s string, value bool) error {
	allowed := "-._~!$'()*+,:@/?"
	if value {
		allowed += "="
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ';':
			return fmt.Errorf("%q: write ';' as %%3B (some servers split a query at it)", conf.Clip(s, 80))
		case '{', '}':
			return fmt.Errorf("%q: unbalanced %q", conf.Clip(s, 80), s[i])
		}
	}
	return checkURIText(s, allowed)
}

// expandQuery builds the query string of a request. The error is an
// ErrInvalidInput rejection (a {var} without a value).
func expandQuery(params []queryParam, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.name)
		if p.parts == nil {
			continue
		}
		b.WriteByte('=')
		for _, part := range p.parts {
			switch {
			case part.ref:
				b.WriteString(url.QueryEscape(part.secret.Reveal()))
			case part.name != "":
				var v string
				ok := false
				if lookup != nil {
					v, ok = lookup(part.name)
				}
				if !ok {
					return "", reject(ErrInvalidInput, "query variable {%s} has no value", part.name)
				}
				b.WriteString(url.QueryEscape(v))
			default:
				b.WriteString(part.lit)
			}
		}
	}
	return b.String(), nil
}

// queryVars lists the query's variable names.
func queryVars(params []queryParam) []string {
	var names []string
	for _, p := range params {
		for _, part := range p.parts {
			if part.name != "" {
				names = append(names, part.name)
			}
		}
	}
	return names
}

// scrubbedError is an error whose text had the request URL in it.
type scrubbedError struct {
	err  error
	text string
}

func (e *scrubbedError) Error() string { return e.text }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrubURL hides the request URL in err's text: it carries caller data in
// its path and may carry secrets in its query. errors.Is and As still see
// err.
func scrubURL(err error, target string) error {
	if err == nil || target == "" || !strings.Contains(err.Error(), target) {
		return err
	}
	return &scrubbedError{err: err, text: strings.ReplaceAll(err.Error(), target, "<the CRM request URL>")}
}
