package conf

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

const redacted = "[redacted]"

// Secret holds a header value that was built from a secret reference. Every
// way of printing or serialising it (fmt verbs, %#v, JSON, TOML, slog) gives
// "[redacted]": only Reveal returns the value, and only the code that sets
// request headers calls it.
//
// The value sits behind a pointer because fmt does not call methods on
// values in unexported fields: printing a struct that holds a Secret with
// %+v would otherwise print the text. Nested pointers print as addresses.
type Secret struct {
	p *secretValue
}

type secretValue struct{ s string }

// NewSecret holds v as a Secret.
func NewSecret(v string) Secret { return Secret{p: &secretValue{s: v}} }

// Reveal returns the secret's value.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return s.p.s
}

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }

// Format covers the verbs String does not (%d, %x on a struct would
// otherwise print its fields).
func (Secret) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// refEnv and refFile are how a configured value references a secret:
// ${env:NAME} or ${file:PATH}. "$$" stands for a literal "$".
const (
	refEnv  = "env:"
	refFile = "file:"
)

// Resolver reads secret references in configured values: every package
// that takes a credential from the configuration resolves it here, with the
// same rules. Errors it returns name the reference (environment variable or
// file), never a value.
type Resolver struct {
	// LookupEnv resolves ${env:NAME}; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// BaseDir is the configuration file's directory: relative
	// ${file:PATH} references are read from there.
	BaseDir string
}

// Resolve expands the references in a configured value. hasRef reports
// whether it held any, so the caller can insist that credentials are
// referenced rather than written in the file.
func (r Resolver) Resolve(v string) (out Secret, hasRef bool, err error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(v, '$')
		if i < 0 {
			b.WriteString(v)
			break
		}
		b.WriteString(v[:i])
		v = v[i:]
		switch {
		case strings.HasPrefix(v, "$$"):
			b.WriteByte('$')
			v = v[2:]
			continue
		case !strings.HasPrefix(v, "${"):
			b.WriteByte('$')
			v = v[1:]
			continue
		}
		end := strings.IndexByte(v, '}')
		if end < 0 {
			return Secret{}, hasRef, errors.New(`unterminated "${": write "$$" for a literal "$"`)
		}
		ref := v[2:end]
		v = v[end+1:]
		hasRef = true
		val, err := r.lookup(ref)
		if err != nil {
			return Secret{}, hasRef, err
		}
		b.WriteString(val)
	}
	return NewSecret(b.String()), hasRef, nil
}

func (r Resolver) lookup(ref string) (string, error) {
	switch {
	case strings.HasPrefix(ref, refEnv):
		name := ref[len(refEnv):]
		if !validEnvName(name) {
			return "", fmt.Errorf("${env:%s}: not a valid environment variable name", name)
		}
		lookupEnv := r.LookupEnv
		if lookupEnv == nil {
			lookupEnv = os.LookupEnv
		}
		val, ok := lookupEnv(name)
		if !ok {
			return "", fmt.Errorf("${env:%s}: environment variable %s is not set", name, name)
		}
		if val == "" {
			return "", fmt.Errorf("${env:%s}: environment variable %s is empty", name, name)
		}
		return val, nil
	case strings.HasPrefix(ref, refFile):
		name := ref[len(refFile):]
		if name == "" {
			return "", errors.New("${file:}: no file named")
		}
		path := r.Path(name)
		data, err := os.ReadFile(path)
		if err != nil {
			// The *PathError names the file and the reason, not the content.
			return "", fmt.Errorf("${file:%s}: %w", name, errors.Unwrap(err))
		}
		// Secret files usually end with a newline an editor added; a
		// header value cannot hold it.
		val := strings.TrimRight(string(data), "\r\n")
		if val == "" {
			return "", fmt.Errorf("${file:%s}: file is empty", name)
		}
		return val, nil
	}
	return "", fmt.Errorf("${%s}: unknown reference (use ${env:NAME} or ${file:PATH})", Clip(ref, 40))
}

// Path makes a configured path relative to the configuration's directory.
func (r Resolver) Path(p string) string {
	if filepath.IsAbs(p) || r.BaseDir == "" {
		return p
	}
	return filepath.Join(r.BaseDir, p)
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
