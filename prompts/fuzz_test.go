package prompts

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/eslapp/eslapp/esl"
)

// FuzzParse: any text parses to well-formed segments or to a positioned
// *SyntaxError/*ValueError; the segments survive being written back; Check
// agrees with Parse.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`"%Your account balance is" "silence.wav" "${accountBalance}"`,
		`"hold.wav" "%Please hold." "$12.50" "#42" "&12345"`,
		`"$ {balance}" "% {name}" "{file}"`, `"12.50"`, `""`, `"$"`, `"@x"`,
		`"%a {{b}} {c.d[0]} {e.asjson()}"`, `"{a"`, `"}"`, `"a""b"`, `x "a"`, `"unterminated`,
		"\"a\"\n\"%b\"\r\n\t\"c\"", `“a”`, `"ü {x}"`, "\"\xff\"", `"-3" "1,234"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seq string) {
		q, err := Parse(seq, Prefixes{})
		problems := Check(seq, RenderConfig{}, nil)
		if (err == nil) != (len(problems) == 0) {
			t.Fatalf("Parse error %v, Check %d problems", err, len(problems))
		}
		lines := strings.Count(seq, "\n") + 1
		if err != nil {
			var se *SyntaxError
			var ve *ValueError
			line, col := 0, 0
			switch {
			case errors.As(err, &se):
				line, col = se.Line, se.Column
			case errors.As(err, &ve):
				line, col = ve.Line, ve.Column
			default:
				t.Fatalf("error %T %v", err, err)
			}
			if line < 1 || line > lines || col < 1 || col > utf8.RuneCountInString(seq)+1 {
				t.Fatalf("position %d:%d out of range: %v", line, col, err)
			}
			return
		}
		var rebuilt []string
		for _, s := range q.Segments {
			if s.Kind < KindFile || s.Kind > KindDigits || s.Line < 1 || s.Line > lines || s.Column < 1 {
				t.Fatalf("bad segment %+v", s)
			}
			if strings.Contains(s.Text, `"`) || utf8.RuneCountInString(s.Text) > MaxSegmentLen {
				t.Fatalf("segment text %q", s.Text)
			}
			for _, r := range s.Refs() {
				if r == "" || strings.ContainsAny(r, "{}") {
					t.Fatalf("reference %q", r)
				}
			}
			rebuilt = append(rebuilt, `"`+s.Text+`"`)
		}
		q2, err := Parse(strings.Join(rebuilt, " "), Prefixes{})
		if err != nil || len(q2.Segments) != len(q.Segments) {
			t.Fatalf("segments written back do not parse alike: %v", err)
		}
		for i := range q.Segments {
			a, b := q.Segments[i], q2.Segments[i]
			if a.Kind != b.Kind || a.Value() != b.Value() || strings.Join(a.Refs(), "\x00") != strings.Join(b.Refs(), "\x00") {
				t.Fatalf("segment %d: %+v then %+v", i, a, b)
			}
		}
	})
}

// renderTemplates are the sequences FuzzRender feeds values into.
var renderTemplates = []string{
	`"%Hello {v}, welcome"`,
	`"%{v}"`,
	`"hold.wav" "%Dear {v}" "silence_stream://200" "$ {n}" "%Goodbye {v}" "holdmusic.wav"`,
	`"{v}.wav" "%x"`,
	`"$ {v}"`, `"# {v}"`, `"& {v}"`,
	`"%a" "{v}"`,
}

// FuzzRender feeds hostile variable values through the Resolver. A TTS
// segment must play the value, normalised, as one item, in the same
// applications and items as a plain value; any other segment plays it as
// one item or refuses it with a *ValueError. The FreeSWITCH double splits
// every argument and expands it like FreeSWITCH: nothing may split
// differently, expand or run.
func FuzzRender(f *testing.F) {
	for i, v := range hostileValues {
		f.Add(uint8(i), v)
	}
	f.Add(uint8(0), "Bob")
	f.Add(uint8(4), "$1,234.56")
	f.Add(uint8(6), "555-0100")
	r, err := NewRenderer(RenderConfig{SoundsDir: "/snd"})
	if err != nil {
		f.Fatal(err)
	}
	var seqs []*Sequence
	var plain [][]Step
	for _, tpl := range renderTemplates {
		q, err := r.Parse(tpl)
		if err != nil {
			f.Fatal(err)
		}
		steps, err := r.Play(q, mapResolver(map[string]string{"v": "42", "n": "1"}))
		if err != nil {
			f.Fatal(err)
		}
		seqs, plain = append(seqs, q), append(plain, steps)
	}
	f.Fuzz(func(t *testing.T, pick uint8, v string) {
		i := int(pick) % len(seqs)
		q := seqs[i]
		segs, err := q.Resolve(mapResolver(map[string]string{"v": v, "n": "1"}))
		if err != nil {
			var ve *ValueError
			if !errors.As(err, &ve) || len(v) <= MaxValueLen-20 {
				t.Fatalf("Resolve: %v", err)
			}
			return
		}
		steps, err := r.Render(segs)
		ttsOnly := !strings.Contains(renderTemplates[i], "{v}.wav") && !strings.Contains(renderTemplates[i], `"{v}"`) &&
			!strings.ContainsAny(renderTemplates[i][:2], "$#&")
		if err != nil {
			var ve *ValueError
			if !errors.As(err, &ve) || ttsOnly {
				t.Fatalf("Render: %T %v", err, err)
			}
			return
		}
		checkPlays(t, r, segs, steps)
		for _, st := range steps {
			if strings.ContainsAny(st.Arg.String(), "\r\n\x00") {
				t.Fatalf("raw control character in %q", st.Arg)
			}
		}
		if ttsOnly && esl.NormalizeSpeech(v) == "" && renderTemplates[i] == `"%{v}"` {
			if len(steps) != 0 {
				t.Fatalf("empty text played: %+v", steps)
			}
			return
		}
		if len(steps) != len(plain[i]) {
			t.Fatalf("%d applications, a plain value gives %d", len(steps), len(plain[i]))
		}
		for j := range steps {
			if steps[j].App != plain[i][j].App || steps[j].Items != plain[i][j].Items {
				t.Fatalf("step %d: %s/%d items, plain %s/%d", j, steps[j].App, steps[j].Items, plain[i][j].App, plain[i][j].Items)
			}
		}
	})
}
