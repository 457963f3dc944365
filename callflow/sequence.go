package callflow

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/eslapp/eslapp/prompts"
)

// Sequence is a prompt sequence with its references compiled once, when
// the configuration is checked (or, in dialplan mode, when the call reads
// wfe_sequence): what a call plays. A reference that does not parse is an
// error then, never a prompt skipped at run time.
type Sequence struct {
	src  string
	q    *prompts.Sequence
	refs map[string]Expr // by the reference's text in the sequence
}

// CompileSequence parses a sequence and its references.
func CompileSequence(r *prompts.Renderer, src string) (*Sequence, error) {
	q, err := r.Parse(src)
	if err != nil {
		return nil, err
	}
	s := &Sequence{src: src, q: q, refs: map[string]Expr{}}
	for _, ref := range q.Refs() {
		if _, done := s.refs[ref]; done {
			continue
		}
		e, err := ParseExpr(ref)
		if err != nil {
			return nil, fmt.Errorf("{%s}: %w", ref, err)
		}
		s.refs[ref] = e
	}
	return s, nil
}

// Refs lists the sequence's references, by their root variable.
func (s *Sequence) Refs() []Expr {
	if s == nil {
		return nil
	}
	return slices.SortedFunc(maps.Values(s.refs), func(a, b Expr) int { return strings.Compare(a.Root(), b.Root()) })
}

// String is the sequence as written.
func (s *Sequence) String() string { return s.src }
