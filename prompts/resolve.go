package prompts

import (
	"fmt"
	"strings"
)

// MaxValueLen is the longest resolved segment value, in bytes. Longer text
// (a CRM note in a TTS segment, say) is refused rather than spoken for
// minutes or cut at a random place.
const MaxValueLen = 1024

// Resolver supplies the values of the {references} in a sequence. The
// reference is passed exactly as written between the braces ("balance",
// "contact.name", "list[0].id", "x.asjson()"); the resolver decides what
// it means and whether an unknown one is an error or the empty string.
// Values are used as text: they are never parsed for references, quotes
// or prefixes.
type Resolver interface {
	Resolve(ref string) (string, error)
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(ref string) (string, error)

// Resolve calls f.
func (f ResolverFunc) Resolve(ref string) (string, error) { return f(ref) }

// Resolved is a segment with its references replaced: what Render plays.
type Resolved struct {
	Kind         Kind
	Line, Column int    // of the segment's opening quote, for messages
	Value        string // the value with references replaced, not yet normalised
}

// ValueError is a segment value that cannot be played: an amount that is
// not one, a file name leading out of the sounds directory, a reference
// the Resolver could not resolve (Err holds the Resolver's error), or a
// value FreeSWITCH could not carry (Err holds the *esl.UnsafeValueError).
type ValueError struct {
	Line, Column int // of the segment's opening quote
	Kind         Kind
	Ref          string // the reference that failed to resolve, if any
	Value        string // the offending value (shortened in Error)
	Reason       string
	Err          error
}

func (e *ValueError) Error() string {
	var b strings.Builder
	b.WriteString(position(e.Line, e.Column))
	b.WriteString(e.Kind.String())
	if e.Ref != "" {
		fmt.Fprintf(&b, " {%s}", e.Ref)
	}
	// TTS text may be a caller's name or CRM data: keep it out of logs.
	if e.Value != "" && e.Kind != KindTTS {
		b.WriteString(" ")
		b.WriteString(clip(e.Value))
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *ValueError) Unwrap() error { return e.Err }

// Resolve replaces the references of every segment through r, which may
// be nil when the sequence has none. The sequence itself is not changed.
// Errors are *ValueError.
func (q *Sequence) Resolve(r Resolver) ([]Resolved, error) {
	out := make([]Resolved, 0, len(q.Segments))
	for _, s := range q.Segments {
		v, err := s.resolve(r)
		if err != nil {
			return nil, err
		}
		out = append(out, Resolved{Kind: s.Kind, Line: s.Line, Column: s.Column, Value: v})
	}
	return out, nil
}

func (s Segment) resolve(r Resolver) (string, error) {
	if len(s.parts) == 1 && !s.parts[0].isRef {
		return s.parts[0].text, nil
	}
	var b strings.Builder
	for _, p := range s.parts {
		if !p.isRef {
			b.WriteString(p.text)
			continue
		}
		if r == nil {
			return "", &ValueError{Line: s.Line, Column: s.Column, Kind: s.Kind, Ref: p.text, Reason: "no variables to resolve it from"}
		}
		v, err := r.Resolve(p.text)
		if err != nil {
			return "", &ValueError{Line: s.Line, Column: s.Column, Kind: s.Kind, Ref: p.text, Reason: "cannot resolve", Err: err}
		}
		b.WriteString(v)
		if b.Len() > MaxValueLen {
			return "", &ValueError{Line: s.Line, Column: s.Column, Kind: s.Kind, Ref: p.text, Reason: fmt.Sprintf("value longer than %d bytes", MaxValueLen)}
		}
	}
	return b.String(), nil
}
