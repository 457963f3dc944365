package prompts

import (
	"fmt"
	"github.com/eslapp/eslapp/conf"
	"sort"
	"strings"
)

// Kind is the renderer a segment goes to.
type Kind uint8

// The renderers. The zero Kind is "no renderer" (an unmapped character).
const (
	KindFile     Kind = iota + 1 // an audio file or FreeSWITCH stream, played with playback
	KindTTS                      // text to speech, tts://ENGINE|VOICE|TEXT inside the playback
	KindCurrency                 // say LANG currency pronounced AMOUNT
	KindNumber                   // say LANG number pronounced NUMBER
	KindDigits                   // say LANG number iterated DIGITS
)

var kindNames = [...]string{
	KindFile:     "file",
	KindTTS:      "tts",
	KindCurrency: "currency",
	KindNumber:   "number",
	KindDigits:   "digits",
}

// String is the kind's configuration name: file, tts, currency, number or
// digits.
func (k Kind) String() string {
	if k == 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", k)
	}
	return kindNames[k]
}

// ParseKind returns the kind with the configuration name s.
func ParseKind(s string) (Kind, error) {
	for k, name := range kindNames {
		if k > 0 && name == s {
			return Kind(k), nil
		}
	}
	return 0, fmt.Errorf("prompts: unknown renderer kind %q (want file, tts, currency, number or digits)", s)
}

// Prefixes maps the first character of a segment to its renderer.
//
// The default table is CXone's: '%' text to speech, '$' currency, '#'
// number, '&' digits; a segment that starts with anything a file name
// starts with (see Parse) is a file. NewPrefixes adds or replaces
// characters. The zero Prefixes is the default table. A Prefixes is a
// value: copying it is cheap and safe.
type Prefixes struct {
	custom bool
	kinds  [128]Kind
}

// DefaultPrefixes returns CXone's table: % tts, $ currency, # number,
// & digits.
func DefaultPrefixes() Prefixes {
	var p Prefixes
	p.custom = true
	for c := range p.kinds {
		p.kinds[c] = defaultPrefixKind(byte(c))
	}
	return p
}

func defaultPrefixKind(c byte) Kind {
	switch c {
	case '%':
		return KindTTS
	case '$':
		return KindCurrency
	case '#':
		return KindNumber
	case '&':
		return KindDigits
	}
	return 0
}

// NewPrefixes returns the default table changed by overrides (a bad one
// is a *conf.FieldError at prompts.prefixes.KEY), which map a
// one-character string to a kind name ("file", "tts", "currency",
// "number", "digits") or to "none" to remove a default, e.g.
// {"~": "currency"} from the TOML `prefixes = { "~" = "currency" }`.
//
// A prefix must be one ASCII punctuation character other than the ones
// the sequence syntax or file names use: '"', '{', '}', '/', '.', '_',
// '-' and '+' (the last two would make "-3" ambiguous with a number that
// FreeSWITCH expanded; see ErrPreExpanded).
func NewPrefixes(overrides map[string]string) (Prefixes, error) {
	p := DefaultPrefixes()
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the same error first every time
	for _, key := range keys {
		if len(key) != 1 || !isPrefixChar(key[0]) {
			return Prefixes{}, &conf.FieldError{Key: []string{"prompts", "prefixes", key}, Msg: `a prefix is one punctuation character other than " { } / . _ - +`}
		}
		name := overrides[key]
		if name == "none" {
			p.kinds[key[0]] = 0
			continue
		}
		k, err := ParseKind(name)
		if err != nil {
			return Prefixes{}, &conf.FieldError{Key: []string{"prompts", "prefixes", key}, Msg: fmt.Sprintf("unknown kind %q (want file, tts, currency, number, digits or none)", name)}
		}
		p.kinds[key[0]] = k
	}
	return p, nil
}

// isPrefixChar reports whether c may be configured as a prefix.
func isPrefixChar(c byte) bool {
	if c <= ' ' || c >= 0x7f || isFileStart(rune(c)) {
		return false
	}
	switch c {
	case '"', '{', '}', '-', '+':
		return false
	}
	return true
}

// Kind returns the renderer for a segment starting with c, or 0 when c is
// not a prefix.
func (p Prefixes) Kind(c rune) Kind {
	if c < 0 || c >= 128 {
		return 0
	}
	if !p.custom {
		return defaultPrefixKind(byte(c))
	}
	return p.kinds[c]
}

// Prefix returns a character that selects kind k, preferring the default
// one, for messages that show the author what to write.
func (p Prefixes) Prefix(k Kind) (string, bool) {
	for _, c := range "%$#&" {
		if p.Kind(c) == k {
			return string(c), true
		}
	}
	for c := rune(0); c < 128; c++ {
		if p.Kind(c) == k {
			return string(c), true
		}
	}
	return "", false
}

// String lists the table, e.g. "#=number $=currency %=tts &=digits".
func (p Prefixes) String() string {
	var parts []string
	for c := rune(0); c < 128; c++ {
		if k := p.Kind(c); k != 0 {
			parts = append(parts, string(c)+"="+k.String())
		}
	}
	return strings.Join(parts, " ")
}
