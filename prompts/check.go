package prompts

import "errors"

// Severity says whether a Problem makes a sequence unusable.
type Severity uint8

// Severities.
const (
	SeverityError Severity = iota + 1
	SeverityWarning
)

func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// Problem is one finding of Check.
type Problem struct {
	Severity     Severity
	Line, Column int    // in the sequence, 1-based; 0 when not about a segment
	Path         string // the sound file concerned, if any
	// Err is a *SyntaxError, *ValueError, *SoundError or *ConfigError.
	Err error
}

// String is the problem as `eslapp check` prints it after the key, e.g.
// `column 14: /usr/share/eslapp/sounds/hold.wav: missing: looked for ...`.
func (p Problem) String() string {
	var se *SoundError
	if errors.As(p.Err, &se) && p.Column > 0 {
		return position(p.Line, p.Column) + p.Err.Error()
	}
	return p.Err.Error()
}

// Check examines a sequence from the configuration without variable
// values and returns every problem found, in order: syntax errors,
// unknown prefixes and literal values that cannot be played (from Parse,
// all of them rather than the first), then, when cat is not nil, the
// sounds of file segments without references (missing, not a 16-bit mono
// PCM wav at 8/16/32/48 kHz, truncated, empty; warnings for formats and
// streams it cannot measure). An invalid cfg is reported alone. File
// names that come from variables are checked when played.
func Check(seq string, cfg RenderConfig, cat *Catalog) []Problem {
	r, err := NewRenderer(cfg)
	if err != nil {
		return []Problem{{Severity: SeverityError, Err: err}}
	}
	p := newParser(seq, cfg.Prefixes)
	p.run()
	var out []Problem
	for _, err := range p.errs {
		pr := Problem{Severity: SeverityError, Err: err}
		var se *SyntaxError
		var ve *ValueError
		switch {
		case errors.As(err, &se):
			pr.Line, pr.Column = se.Line, se.Column
		case errors.As(err, &ve):
			pr.Line, pr.Column = ve.Line, ve.Column
		}
		out = append(out, pr)
	}
	if cat == nil {
		return out
	}
	for _, seg := range p.segs {
		lit, ok := seg.Literal()
		if seg.Kind != KindFile || !ok {
			continue
		}
		file, err := r.FilePath(lit)
		if err != nil { // Parse checked the name already; keep the position
			out = append(out, Problem{Severity: SeverityError, Line: seg.Line, Column: seg.Column, Err: err})
			continue
		}
		for _, sp := range cat.Sound(file).Problems {
			sev := SeverityError
			if sp.Warning() {
				sev = SeverityWarning
			}
			out = append(out, Problem{Severity: sev, Line: seg.Line, Column: seg.Column, Path: sp.Path, Err: sp})
		}
	}
	return out
}
