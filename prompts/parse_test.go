package prompts

import (
	"errors"
	"fmt"
	"github.com/eslapp/eslapp/conf"
	"reflect"
	"strings"
	"testing"
)

// TestParseGolden runs testdata/parse.golden: each sequence → its segments
// and references, or every error the parser finds (Parse returns the
// first).
func TestParseGolden(t *testing.T) {
	runGolden(t, "testdata/parse.golden", func(t *testing.T, c *goldenCase) string {
		prefixes, err := NewPrefixes(c.prefixes)
		if err != nil {
			return fmt.Sprintf("prefix error: %v\n", err)
		}
		var b strings.Builder
		p := newParser(c.seq, prefixes)
		p.run()
		q, perr := Parse(c.seq, prefixes)
		if len(p.errs) > 0 {
			if perr != p.errs[0] && perr.Error() != p.errs[0].Error() {
				t.Errorf("Parse returned %v, want the first error %v", perr, p.errs[0])
			}
			for _, e := range p.errs {
				fmt.Fprintf(&b, "error %s\n", describeErr(e))
			}
			return b.String()
		}
		if perr != nil {
			t.Fatalf("Parse: %v, but the parser found no error", perr)
		}
		for _, s := range q.Segments {
			fmt.Fprintf(&b, "%d:%d %s prefix=%q value=%q", s.Line, s.Column, s.Kind, s.Prefix, s.Value())
			if refs := s.Refs(); len(refs) > 0 {
				fmt.Fprintf(&b, " refs=%q", refs)
			}
			if lit, ok := s.Literal(); ok && lit != s.Value() {
				fmt.Fprintf(&b, " literal=%q", lit)
			}
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "refs %q\n", q.Refs())
		return b.String()
	})
}

func describeErr(err error) string {
	var se *SyntaxError
	var ve *ValueError
	switch {
	case errors.As(err, &se) && errors.Is(err, ErrPreExpanded):
		return "syntax (pre-expanded) " + err.Error()
	case errors.As(err, &se):
		return "syntax " + err.Error()
	case errors.As(err, &ve):
		return "value " + err.Error()
	}
	return fmt.Sprintf("%T %v", err, err)
}

// TestParseErrors checks the error types and positions callers rely on.
func TestParseErrors(t *testing.T) {
	type want struct {
		syntax, value, pre bool
		line, col          int
		msg                string // a substring of the message
	}
	cases := []struct {
		seq  string
		want want
	}{
		{`"hold.wav`, want{syntax: true, line: 1, col: 1, msg: "unterminated quote"}},
		{`"a.wav" "b.wav`, want{syntax: true, line: 1, col: 9, msg: "unterminated quote"}},
		{`hold.wav`, want{syntax: true, line: 1, col: 1, msg: "text outside quotes"}},
		{`"a.wav" x`, want{syntax: true, line: 1, col: 9, msg: "text outside quotes"}},
		{`“hold.wav”`, want{syntax: true, line: 1, col: 1, msg: "typographic"}},
		{`"a.wav""b.wav"`, want{syntax: true, line: 1, col: 8, msg: "separated by white space"}},
		{`""`, want{syntax: true, pre: true, line: 1, col: 1, msg: "empty segment"}},
		{`"   "`, want{syntax: true, pre: true, line: 1, col: 1, msg: "empty segment"}},
		{`"12.50"`, want{syntax: true, pre: true, line: 1, col: 1, msg: `write "$ {var}" instead`}},
		{`"-3"`, want{syntax: true, pre: true, col: 1, line: 1, msg: "is a number"}},
		{`"1,234"`, want{syntax: true, pre: true, col: 1, line: 1, msg: "is a number"}},
		{`"%"`, want{syntax: true, pre: true, col: 1, line: 1, msg: `tts prefix and nothing after it; in dialplan XML FreeSWITCH expands ${var} before eslapp reads the sequence; write "% {var}" instead`}},
		{`"$ "`, want{syntax: true, pre: true, col: 1, line: 1, msg: "currency prefix and nothing"}},
		{`"@x.wav"`, want{syntax: true, line: 1, col: 1, msg: "unknown prefix '@'"}},
		{`"~{x}"`, want{syntax: true, line: 1, col: 1, msg: "unknown prefix '~'"}},
		{`"` + strings.Repeat("a", 301) + `"`, want{syntax: true, line: 1, col: 1, msg: "301 characters"}},
		{`"%Hello {name"`, want{syntax: true, line: 1, col: 9, msg: "unterminated {"}},
		{`"%Hello {a{b}"`, want{syntax: true, line: 1, col: 9, msg: "{ inside"}},
		{`"%Hello }"`, want{syntax: true, line: 1, col: 9, msg: "} without"}},
		{`"%Hello {}"`, want{syntax: true, line: 1, col: 9, msg: "empty variable reference"}},
		{"\"a.wav\"\n  \"ünï {x\"", want{syntax: true, line: 2, col: 8, msg: "unterminated {"}},
		{`"$abc"`, want{value: true, line: 1, col: 1, msg: "not an amount"}},
		{`"#1.5"`, want{value: true, line: 1, col: 1, msg: "whole number"}},
		{`"#1234567890"`, want{value: true, line: 1, col: 1, msg: "more than 9 digits"}},
		{`"&12*34"`, want{value: true, line: 1, col: 1, msg: "'*' and '#'"}},
		{`"../etc/x.wav"`, want{value: true, line: 1, col: 1, msg: "out of the sounds directory"}},
		{`"file_string://a.wav!b.wav"`, want{value: true, line: 1, col: 1, msg: "unsupported URL scheme"}},
	}
	for _, c := range cases {
		t.Run(c.seq, func(t *testing.T) {
			_, err := Parse(c.seq, Prefixes{})
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", c.seq)
			}
			var se *SyntaxError
			var ve *ValueError
			gotSyntax, gotValue := errors.As(err, &se), errors.As(err, &ve)
			if gotSyntax != c.want.syntax || gotValue != c.want.value || errors.Is(err, ErrPreExpanded) != c.want.pre {
				t.Fatalf("Parse(%q) = %T %v; want syntax=%v value=%v pre-expanded=%v", c.seq, err, err, c.want.syntax, c.want.value, c.want.pre)
			}
			line, col := 0, 0
			if se != nil {
				line, col = se.Line, se.Column
			} else {
				line, col = ve.Line, ve.Column
			}
			if line != c.want.line || col != c.want.col {
				t.Errorf("position %d:%d, want %d:%d (%v)", line, col, c.want.line, c.want.col, err)
			}
			if !strings.Contains(err.Error(), c.want.msg) {
				t.Errorf("message %q does not contain %q", err.Error(), c.want.msg)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	for _, seq := range []string{
		``, "  \n\t ", `"hold.wav"`, `"%Hello"`, `"$12.50"`, `"#42"`, `"&12345"`,
		`"$ {balance}"`, `"  hold.wav  "`, `"%{name}"`, `"{file}"`, `"x{{y}}.wav"`,
		`"silence_stream://500"`, `"/abs/path.wav"`, `"_x.wav"`, `"./x.wav"`, `"日本.wav"`,
		`"` + strings.Repeat("a", 300) + `"`, "\"a.wav\"\n\"b.wav\"",
		`"%Use {{name}} for {n.list[0].field} and {x.asjson()}"`,
	} {
		if _, err := Parse(seq, Prefixes{}); err != nil {
			t.Errorf("Parse(%q): %v", seq, err)
		}
	}
}

func TestRefs(t *testing.T) {
	q, err := Parse(`"%Hi {name}, {{not}} {a.b[0].c}" "{name}.wav" "$ {balance}" "&{x.asjson()}"`, Prefixes{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"name", "a.b[0].c", "balance", "x.asjson()"}
	if got := q.Refs(); !reflect.DeepEqual(got, want) {
		t.Errorf("Refs() = %q, want %q", got, want)
	}
	if got := q.Segments[0].Refs(); !reflect.DeepEqual(got, []string{"name", "a.b[0].c"}) {
		t.Errorf("segment Refs() = %q", got)
	}
}

func TestPrefixes(t *testing.T) {
	p, err := NewPrefixes(map[string]string{"~": "currency", "!": "tts", "$": "none", "@": "file"})
	if err != nil {
		t.Fatal(err)
	}
	q, err := Parse(`"~{balance}" "!Hello" "@hold.wav" "#4"`, p)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []Kind
	for _, s := range q.Segments {
		kinds = append(kinds, s.Kind)
	}
	if want := []Kind{KindCurrency, KindTTS, KindFile, KindNumber}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("kinds %v, want %v", kinds, want)
	}
	if _, err := Parse(`"$12"`, p); err == nil || !strings.Contains(err.Error(), "unknown prefix '$'") {
		t.Errorf(`"$12" with $ removed: %v`, err)
	}
	if c, _ := p.Prefix(KindCurrency); c != "~" {
		t.Errorf("Prefix(currency) = %q, want ~", c)
	}
	if got, want := (Prefixes{}).String(), DefaultPrefixes().String(); got != want || got != "#=number $=currency %=tts &=digits" {
		t.Errorf("zero Prefixes %q, default %q", got, want)
	}
	for _, bad := range []map[string]string{
		{"~~": "tts"}, {"a": "tts"}, {"1": "tts"}, {"/": "file"}, {".": "tts"}, {"_": "tts"},
		{`"`: "tts"}, {"{": "tts"}, {"-": "number"}, {"+": "number"}, {" ": "tts"}, {"é": "tts"},
		{"~": "speech"}, {"": "tts"},
	} {
		_, err := NewPrefixes(bad)
		var fe *conf.FieldError
		if !errors.As(err, &fe) || fe.Key[0] != "prompts" || fe.Key[1] != "prefixes" {
			t.Errorf("NewPrefixes(%q) = %v, want a *conf.FieldError at prompts.prefixes", bad, err)
		}
	}
}

func TestKindNames(t *testing.T) {
	for _, k := range []Kind{KindFile, KindTTS, KindCurrency, KindNumber, KindDigits} {
		got, err := ParseKind(k.String())
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), got, err)
		}
	}
	if _, err := ParseKind("none"); err == nil {
		t.Error(`ParseKind("none") succeeded`)
	}
}

func TestParseGivesUp(t *testing.T) {
	problems := Check(strings.Repeat(`"@" `, 1000), RenderConfig{}, nil)
	if len(problems) != maxErrors || !strings.Contains(problems[maxErrors-1].String(), "too many errors") {
		t.Fatalf("%d problems, last %v", len(problems), problems[len(problems)-1])
	}
}
