package prompts

import (
	"errors"
	"fmt"
	"github.com/eslapp/eslapp/conf"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/eslapp/eslapp/esl"
)

// renderCase parses, resolves and renders a golden case and checks the
// result through the FreeSWITCH double.
func renderCase(t *testing.T, c *goldenCase) string {
	prefixes, err := NewPrefixes(c.prefixes)
	if err != nil {
		return fmt.Sprintf("prefix error: %v\n", err)
	}
	r, err := NewRenderer(RenderConfig{SoundsDir: c.dir, Prefixes: prefixes})
	if err != nil {
		return fmt.Sprintf("config error: %v\n", err)
	}
	q, err := r.Parse(c.seq)
	if err != nil {
		return "parse error " + describeErr(err) + "\n"
	}
	segs, err := q.Resolve(mapResolver(c.vars))
	if err != nil {
		return "resolve error " + describeErr(err) + "\n"
	}
	steps, err := r.Render(segs)
	if err != nil {
		return "render error " + describeErr(err) + "\n"
	}
	checkPlays(t, r, segs, steps)
	var b strings.Builder
	items, _ := fsPlay(steps)
	for _, st := range steps {
		fmt.Fprintf(&b, "%s %s\n", st.App, quote(st.Arg.String()))
		if st.App == "playback" {
			for _, it := range items[:st.Items] {
				fmt.Fprintf(&b, "  plays %s\n", quote(it))
			}
		}
		items = items[st.Items:]
	}
	if len(steps) == 0 {
		b.WriteString("(nothing to play)\n")
	}
	return b.String()
}

// quote shows s in backquotes, verbatim, or Go-quoted when it holds
// characters a backquoted string cannot.
func quote(s string) string {
	if strconv.CanBackquote(s) {
		return "`" + s + "`"
	}
	return strconv.Quote(s)
}

// checkPlays fails t unless FreeSWITCH would play exactly what segs ask.
func checkPlays(t *testing.T, r *Renderer, segs []Resolved, steps []Step) {
	t.Helper()
	got, err := fsPlay(steps)
	if err != nil {
		t.Fatalf("FreeSWITCH double: %v", err)
	}
	want, err := wantPlay(r, segs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FreeSWITCH plays\n  %q\nwant\n  %q", got, want)
	}
}

// TestRenderGolden runs testdata/render.golden: sequence and variables →
// applications, and what the FreeSWITCH double makes of each playback.
func TestRenderGolden(t *testing.T) {
	runGolden(t, "testdata/render.golden", renderCase)
}

// TestSeedExample is the CXone help page's example: one playback (TTS and
// the file) followed by a currency say of the variable.
func TestSeedExample(t *testing.T) {
	r, err := NewRenderer(RenderConfig{SoundsDir: "/usr/share/eslapp/sounds"})
	if err != nil {
		t.Fatal(err)
	}
	q, err := r.Parse(`"%Your account balance is" "silence.wav"  "${accountBalance}"`)
	if err != nil {
		t.Fatal(err)
	}
	if got := q.Refs(); !reflect.DeepEqual(got, []string{"accountBalance"}) {
		t.Fatalf("Refs() = %q", got)
	}
	steps, err := r.Play(q, mapResolver(map[string]string{"accountBalance": "1,234.5"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ app, arg string }{
		{"playback", "file_string://tts://flite|kal|Your account balance is!/usr/share/eslapp/sounds/silence.wav"},
		{"say", "en currency pronounced 1234.50"},
	}
	if len(steps) != len(want) {
		t.Fatalf("%d steps, want %d: %+v", len(steps), len(want), steps)
	}
	for i, w := range want {
		if steps[i].App != w.app || steps[i].Arg.String() != w.arg {
			t.Errorf("step %d = %s %q, want %s %q", i, steps[i].App, steps[i].Arg, w.app, w.arg)
		}
	}
	if steps[0].Kind != KindTTS || steps[0].Items != 2 || !reflect.DeepEqual(steps[0].Files, []string{"/usr/share/eslapp/sounds/silence.wav"}) {
		t.Errorf("playback step %+v", steps[0])
	}
	if steps[1].Kind != KindCurrency {
		t.Errorf("say step kind %v", steps[1].Kind)
	}
}

// hostileValues are values a CRM or a caller may send.
var hostileValues = []string{
	"Bob! \"x\" {y}|z\n\nsendmsg",
	"${system(touch /tmp/pwned)}",
	"$${x}", "\\${x}", "$\\{x}", "'", "''", "'a'b'", "\\", "\\\\", "\\'", "\\n", "a\\!b",
	"^^|x|y", "^^!a!b", "!", "!!", "|", "||", "|a|b|c",
	"a\x00b", "\xff\xfe", "tts://flite|kal|x", "file_string://a.wav!b.wav", "say:hi",
	"x\r\ny", "\t", " lead and trail ", "%Hi", "\"", "{name}", "}{", "\u2028line",
}

// TestHostileValuesKeepShape feeds hostile values into every kind of
// segment: a TTS segment plays them as text in exactly the applications
// and items a plain name gives; other kinds either play them as one item
// or refuse them with a *ValueError. Nothing is ever expanded.
func TestHostileValuesKeepShape(t *testing.T) {
	r, err := NewRenderer(RenderConfig{SoundsDir: "/snd"})
	if err != nil {
		t.Fatal(err)
	}
	seqs := []string{
		`"%Hello {name}, welcome"`,
		`"%{name}"`,
		`"hold.wav" "%Hello {name}" "silence_stream://200" "$ {balance}" "%Goodbye {name}"`,
		`"{name}.wav" "%x"`,
		`"$ {name}"`, `"# {name}"`, `"& {name}"`,
	}
	for _, seq := range seqs {
		q, err := r.Parse(seq)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := r.Play(q, mapResolver(map[string]string{"name": "42", "balance": "1"}))
		if err != nil {
			t.Fatalf("%s with a plain value: %v", seq, err)
		}
		for _, v := range hostileValues {
			t.Run(fmt.Sprintf("%s/%q", seq, v), func(t *testing.T) {
				segs, err := q.Resolve(mapResolver(map[string]string{"name": v, "balance": "1"}))
				if err != nil {
					t.Fatal(err)
				}
				steps, err := r.Render(segs)
				var ve *ValueError
				if err != nil {
					if !errors.As(err, &ve) {
						t.Fatalf("Render: %T %v, want a *ValueError", err, err)
					}
					if strings.Contains(seq, "%") && !strings.Contains(seq, ".wav\" \"%x") {
						t.Fatalf("TTS text refused: %v", err)
					}
					return
				}
				checkPlays(t, r, segs, steps)
				if esl.NormalizeSpeech(v) == "" && seq == `"%{name}"` {
					return // nothing to say: no application
				}
				if len(steps) != len(plain) {
					t.Fatalf("%d applications, a plain value gives %d", len(steps), len(plain))
				}
				for i := range steps {
					if steps[i].App != plain[i].App || steps[i].Items != plain[i].Items {
						t.Errorf("step %d: %s with %d items, a plain value gives %s with %d",
							i, steps[i].App, steps[i].Items, plain[i].App, plain[i].Items)
					}
					if strings.ContainsAny(steps[i].Arg.String(), "\r\n\x00") {
						t.Errorf("step %d argument holds a raw control character: %q", i, steps[i].Arg)
					}
				}
			})
		}
	}
}

// TestHostileNameSameAsPlain is the brief's case in so many words.
func TestHostileNameSameAsPlain(t *testing.T) {
	r, _ := NewRenderer(RenderConfig{SoundsDir: "/snd"})
	q, err := r.Parse(`"%Welcome back {name}" "hold.wav"`)
	if err != nil {
		t.Fatal(err)
	}
	shape := func(name string) (int, int, []string) {
		segs, err := q.Resolve(mapResolver(map[string]string{"name": name}))
		if err != nil {
			t.Fatal(err)
		}
		steps, err := r.Render(segs)
		if err != nil {
			t.Fatal(err)
		}
		checkPlays(t, r, segs, steps)
		items := 0
		for _, s := range steps {
			items += s.Items
		}
		played, _ := fsPlay(steps)
		return len(steps), items, played
	}
	ps, pi, _ := shape("Bob")
	hs, hi, played := shape("Bob! \"x\" {y}|z\n\nsendmsg")
	if ps != 1 || pi != 2 || hs != ps || hi != pi {
		t.Fatalf("plain: %d apps %d items; hostile: %d apps %d items", ps, pi, hs, hi)
	}
	if want := `tts flite|kal|Welcome back Bob! "x" {y}|z sendmsg`; played[0] != want {
		t.Errorf("spoken %q, want %q", played[0], want)
	}
}

func TestRenderSplitsLongPlaylists(t *testing.T) {
	r, _ := NewRenderer(RenderConfig{SoundsDir: "/snd"})
	segs := make([]Resolved, 130)
	for i := range segs {
		segs[i] = Resolved{Kind: KindFile, Value: fmt.Sprintf("f%d.wav", i)}
	}
	steps, err := r.Render(segs)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || steps[0].Items != 128 || steps[1].Items != 2 {
		t.Fatalf("steps: %d (%d, %d items)", len(steps), steps[0].Items, steps[len(steps)-1].Items)
	}
	checkPlays(t, r, segs, steps)
}

func TestRenderErrors(t *testing.T) {
	r, _ := NewRenderer(RenderConfig{SoundsDir: "/snd"})
	cases := []struct {
		seg     Resolved
		unsafe  bool // wraps an *esl.UnsafeValueError
		message string
	}{
		{Resolved{Kind: KindCurrency, Value: "$abc", Line: 1, Column: 7}, false, `column 7: currency "$abc": not an amount`},
		{Resolved{Kind: KindCurrency, Value: ""}, false, "not an amount"},
		{Resolved{Kind: KindNumber, Value: "-3"}, false, "not a whole number"},
		{Resolved{Kind: KindDigits, Value: "12#"}, false, "'*' and '#'"},
		{Resolved{Kind: KindDigits, Value: strings.Repeat("1", 33)}, false, "33 digits; at most 32"},
		{Resolved{Kind: KindFile, Value: "a\nb.wav"}, false, "control characters"},
		{Resolved{Kind: KindFile, Value: "../../etc/passwd"}, false, "out of the sounds directory"},
		{Resolved{Kind: KindFile, Value: "  "}, false, "empty file name"},
		{Resolved{Kind: KindFile, Value: "phrase:x"}, false, "':' in a relative file name"},
		{Resolved{Kind: KindFile, Value: "^^!a.wav"}, false, "not a usable file name"},
		{Resolved{Kind: 0, Value: "x"}, false, "no renderer"},
	}
	for _, c := range cases {
		_, err := r.Render([]Resolved{{Kind: KindTTS, Value: "before"}, c.seg})
		var ve *ValueError
		if !errors.As(err, &ve) {
			t.Errorf("%+v: %v, want *ValueError", c.seg, err)
			continue
		}
		var ue *esl.UnsafeValueError
		if errors.As(err, &ue) != c.unsafe {
			t.Errorf("%+v: %v: unsafe=%v", c.seg, err, !c.unsafe)
		}
		if !strings.Contains(err.Error(), c.message) {
			t.Errorf("%+v: %q does not contain %q", c.seg, err, c.message)
		}
	}
	// A TTS error must not print the text: it may be a caller's name.
	_, err := Render([]Resolved{{Kind: KindTTS, Value: "Secret Name"}}, RenderConfig{TTSEngine: "bad engine"})
	if err == nil || strings.Contains(err.Error(), "Secret") {
		t.Errorf("bad engine: %v", err)
	}
	var fe *conf.FieldError
	if !errors.As(err, &fe) || conf.KeyString(fe.Key) != "tts.engine" {
		t.Errorf("bad engine: %v, want a *conf.FieldError at tts.engine", err)
	}
}

func TestResolveErrors(t *testing.T) {
	q, err := Parse(`"hold.wav" "%Hi {name}"`, Prefixes{})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	_, err = q.Resolve(ResolverFunc(func(string) (string, error) { return "", boom }))
	var ve *ValueError
	if !errors.As(err, &ve) || !errors.Is(err, boom) || ve.Ref != "name" || ve.Column != 12 {
		t.Errorf("resolver failure: %v (%+v)", err, ve)
	}
	if _, err := q.Resolve(nil); !errors.As(err, &ve) {
		t.Errorf("nil resolver: %v", err)
	}
	long := strings.Repeat("x", MaxValueLen)
	if _, err := q.Resolve(mapResolver(map[string]string{"name": long})); !errors.As(err, &ve) || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("long value: %v", err)
	}
	if _, err := (&Sequence{}).Resolve(nil); err != nil {
		t.Errorf("empty sequence: %v", err)
	}
}

func TestRenderConfig(t *testing.T) {
	r, err := NewRenderer(RenderConfig{SoundsDir: "/snd/"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.Config()
	if cfg.SoundsDir != "/snd" || cfg.TTSEngine != "flite" || cfg.TTSVoice != "kal" || cfg.Language != "en" {
		t.Errorf("defaults: %+v", cfg)
	}
	for key, bad := range map[string]RenderConfig{
		"sounds.dir": {SoundsDir: "sounds"}, "sounds.dir ": {SoundsDir: "/a/../b"}, "sounds.dir  ": {SoundsDir: "/a\nb"},
		"tts.engine": {TTSEngine: "fl ite"}, "tts.voice": {TTSVoice: "k|al"}, "prompts.language": {Language: "en us"},
	} {
		_, err := NewRenderer(bad)
		var fe *conf.FieldError
		if !errors.As(err, &fe) || conf.KeyString(fe.Key) != strings.TrimSpace(key) {
			t.Errorf("NewRenderer(%+v) = %v, want a *conf.FieldError at %s", bad, err, key)
		}
	}
	// Language and voice are used as configured.
	r, _ = NewRenderer(RenderConfig{TTSEngine: "polly", TTSVoice: "Joanna", Language: "en:en"})
	steps, err := r.Render([]Resolved{{Kind: KindTTS, Value: "hi"}, {Kind: KindNumber, Value: "7"}})
	if err != nil {
		t.Fatal(err)
	}
	if steps[0].Arg.String() != "tts://polly|Joanna|hi" || steps[1].Arg.String() != "en:en number pronounced 7" {
		t.Errorf("steps %q %q", steps[0].Arg, steps[1].Arg)
	}
	// Without a sounds directory relative names stay relative.
	r, _ = NewRenderer(RenderConfig{})
	if p, _ := r.FilePath("./ivr/hold.wav"); p != "ivr/hold.wav" {
		t.Errorf("FilePath = %q", p)
	}
}

func TestNormalizers(t *testing.T) {
	cases := []struct {
		kind      Kind
		in, want  string
		wantError bool
	}{
		{KindCurrency, "12.50", "12.50", false},
		{KindCurrency, "$12.50", "12.50", false},
		{KindCurrency, "12.5", "12.50", false},
		{KindCurrency, "12", "12", false},
		{KindCurrency, "12.", "12", false},
		{KindCurrency, "1,234.56", "1234.56", false},
		{KindCurrency, "1,234,567", "1234567", false},
		{KindCurrency, "-3", "-3", false},
		{KindCurrency, "-$3.5", "-3.50", false},
		{KindCurrency, "$-3.5", "-3.50", false},
		{KindCurrency, "+7", "7", false},
		{KindCurrency, ".5", "0.50", false},
		{KindCurrency, "007.10", "7.10", false},
		{KindCurrency, "-0.00", "0.00", false},
		{KindCurrency, "12.500", "12.50", false},
		{KindCurrency, " 12.50 ", "12.50", false},
		{KindCurrency, "999,999,999.99", "999999999.99", false},
		{KindCurrency, "$abc", "", true},
		{KindCurrency, "12,50", "", true},
		{KindCurrency, "1,2345", "", true},
		{KindCurrency, ",123", "", true},
		{KindCurrency, "12.505", "", true},
		{KindCurrency, "1.2.3", "", true},
		{KindCurrency, "--3", "", true},
		{KindCurrency, "$", "", true},
		{KindCurrency, ".", "", true},
		{KindCurrency, "€12", "", true},
		{KindCurrency, "1234567890", "", true},
		{KindCurrency, "12 50", "", true},
		{KindNumber, "42", "42", false},
		{KindNumber, "1,234", "1234", false},
		{KindNumber, "000", "0", false},
		{KindNumber, "999999999", "999999999", false},
		{KindNumber, "1000000000", "", true},
		{KindNumber, "-3", "", true},
		{KindNumber, "1.5", "", true},
		{KindNumber, "", "", true},
		{KindDigits, "12345", "12345", false},
		{KindDigits, "0042", "0042", false},
		{KindDigits, "555-0100", "5550100", false},
		{KindDigits, "4111 1111", "41111111", false},
		{KindDigits, "*72", "", true},
		{KindDigits, "12a", "", true},
		{KindDigits, "- -", "", true},
	}
	for _, c := range cases {
		got, reason := checkValue(c.kind, c.in)
		if (reason != "") != c.wantError || got != c.want {
			t.Errorf("%s %q = %q, %q; want %q (error %v)", c.kind, c.in, got, reason, c.want, c.wantError)
		}
		if reason == "" && c.kind != KindFile {
			typ := esl.SayNumber
			if c.kind == KindCurrency {
				typ = esl.SayCurrency
			}
			if _, err := esl.SayArg("en", typ, esl.SayPronounced, got); err != nil {
				t.Errorf("%s %q: esl.SayArg refuses %q: %v", c.kind, c.in, got, err)
			}
		}
	}
}
