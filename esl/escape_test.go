package esl_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/esl/esltest"
)

// hostile are values outside data can hold: FreeSWITCH references and API
// calls, its escapes, its list and field separators, line breaks, NUL.
var hostile = []string{
	"", "plain", "O'Brien", `say "hi"`,
	"${system(touch pwned)}", "$${hostname}", `\${x}`, `\\`, `\'`, `\`, `$`, `$$`, `$$$`, `$${`, `${`, `$\{x}`, `$\\{x}`,
	"a!b", "a|b", "tts://flite|kal|injected", "{}", "^^|x|y", "^^!a!b",
	"line1\nline2", "\n\nsendmsg\ncall-command: hangup\n\n", "tab\there", "\r\n",
	"\xff\xfe invalid utf-8", "Zoë ☎", strings.Repeat("x", 64<<10),
	`\n\s\t`, `'quoted'`, `''`, `\\\$`, `${a}\\`, "%20", `${uuid}`, "${var:0:3}",
}

// expander expands like FreeSWITCH and fails the test on any API call.
func expander(t testing.TB) *esltest.Expander {
	return &esltest.Expander{
		Lookup: func(name string, _ int) (string, bool) { return "EXPANDED(" + name + ")", true },
		API: func(name, args string) (string, bool) {
			t.Errorf("FreeSWITCH would run API %s(%s)", name, args)
			return "", false
		},
	}
}

func TestArgumentSurvivesExpansion(t *testing.T) {
	x := expander(t)
	for _, v := range hostile {
		arg := esl.Fixed(v)
		if got := x.Expand(arg.Wire(true)); got != v {
			t.Errorf("%.40q: application sees %.40q", v, got)
		}
		if got := arg.Wire(false); got != v {
			t.Errorf("%.40q without expansion: sent %.40q", v, got)
		}
	}
}

// set expands its value once more: a value must come out of both passes
// as it went in.
func TestSetArgSurvivesBothExpansions(t *testing.T) {
	x := expander(t)
	for _, v := range hostile {
		if strings.IndexByte(v, 0) >= 0 {
			continue
		}
		arg, err := esl.SetArg("result", v)
		if err != nil {
			t.Fatalf("%.40q: %v", v, err)
		}
		for _, pre := range []bool{true, false} {
			seen := arg.Wire(pre)
			if pre {
				seen = x.Expand(seen)
			}
			name, val, _ := strings.Cut(seen, "=")
			if got := x.Expand(val); name != "result" || got != v {
				t.Errorf("%.40q (pre-expansion %v): stored %s=%.40q", v, pre, name, got)
			}
		}
	}
	if _, err := esl.SetArg("bad name", "x"); err == nil {
		t.Error("SetArg accepted a name with a space")
	}
	var unsafe *esl.UnsafeValueError
	if _, err := esl.SetArg("v", "a\x00b"); !errors.As(err, &unsafe) {
		t.Errorf("NUL: %v", err)
	}
}

// Text spoken with TTS inside a file_string list stays one element, in its
// place, and is spoken as normalised.
func TestTTSTextStaysOneElement(t *testing.T) {
	x := expander(t)
	file, _ := esl.File("/sounds/hold.wav")
	for _, v := range hostile {
		tts, err := esl.TTS("flite", "kal", v)
		if esl.NormalizeSpeech(v) == "" {
			if err == nil {
				t.Errorf("%.40q: TTS accepted text with nothing to say", v)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%.40q: %v", v, err)
		}
		arg, err := esl.PlaybackArg(file, tts, file)
		if err != nil {
			t.Fatal(err)
		}
		seen := x.Expand(arg.Wire(true))
		list, ok := strings.CutPrefix(seen, "file_string://")
		if !ok {
			t.Fatalf("%.40q: %q", v, seen)
		}
		parts := esltest.SeparateString(list, '!', 128)
		if len(parts) != 3 || parts[0] != "/sounds/hold.wav" || parts[2] != "/sounds/hold.wav" {
			t.Fatalf("%.40q: file_string parts %q", v, parts)
		}
		spec, ok := strings.CutPrefix(parts[1], "tts://")
		if !ok {
			t.Fatalf("%.40q: element %q", v, parts[1])
		}
		fields := esltest.SeparateString(spec, '|', 3)
		if len(fields) != 3 || fields[0] != "flite" || fields[1] != "kal" || fields[2] != esl.NormalizeSpeech(v) {
			t.Errorf("%.40q: tts fields %q", v, fields)
		}
		// A lone TTS item is played without a list.
		one, _ := esl.PlaybackArg(tts)
		spec, _ = strings.CutPrefix(x.Expand(one.Wire(true)), "tts://")
		if f := esltest.SeparateString(spec, '|', 3); len(f) != 3 || f[2] != esl.NormalizeSpeech(v) {
			t.Errorf("%.40q alone: tts fields %q", v, f)
		}
	}
}

func TestNormalizeSpeech(t *testing.T) {
	for in, want := range map[string]string{
		"  Hello,\n\nworld!  ": "Hello, world!",
		"a\x00b\tc\r\nd":       "a b c d",
		"\xffbad":              "bad",
		"Zoë":                  "Zoë",
		"\u2028x\u00a0y":       "x y",
		"\n\t ":                "",
	} {
		if got := esl.NormalizeSpeech(in); got != want {
			t.Errorf("NormalizeSpeech(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSayAndTransferArgsRefuseNonsense(t *testing.T) {
	for _, v := range []string{"12.50", "-3", "1,234", "42", "+7"} {
		if _, err := esl.SayArg("en", esl.SayCurrency, esl.SayPronounced, v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	for _, v := range append([]string{"abc", "1 2", "1.2.3", "", "-", "12'5", "${x}"}, hostile...) {
		if v == "plain" || v == "" && false {
			continue
		}
		if _, err := esl.SayArg("en", esl.SayCurrency, esl.SayPronounced, v); err == nil && v != "" {
			t.Errorf("SayArg accepted %.40q", v)
		}
	}
	if a, err := esl.TransferArg("1000", "", "default"); err != nil || a.String() != "1000 XML default" {
		t.Errorf("TransferArg: %q %v", a, err)
	}
	for _, v := range hostile {
		if _, err := esl.TransferArg(v, "XML", "default"); err == nil && v != "plain" && v != "{}" {
			t.Errorf("TransferArg accepted %.40q", v)
		}
	}
}

func FuzzArgumentEscaping(f *testing.F) {
	for _, v := range hostile {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		x := expander(t)
		if strings.IndexByte(v, 0) >= 0 {
			if _, err := esl.SetArg("v", v); err == nil {
				t.Fatal("SetArg accepted a NUL")
			}
			return
		}
		if got := x.Expand(esl.Fixed(v).Wire(true)); got != v {
			t.Fatalf("application sees %q", got)
		}
		arg, err := esl.SetArg("v", v)
		if err != nil {
			t.Fatal(err)
		}
		_, val, _ := strings.Cut(x.Expand(arg.Wire(true)), "=")
		if got := x.Expand(val); got != v {
			t.Fatalf("set stores %q", got)
		}
		tts, err := esl.TTS("flite", "kal", v)
		if err != nil {
			return
		}
		file, _ := esl.File("a.wav")
		pa, _ := esl.PlaybackArg(tts, file)
		list, _ := strings.CutPrefix(x.Expand(pa.Wire(true)), "file_string://")
		parts := esltest.SeparateString(list, '!', 128)
		if len(parts) != 2 || parts[1] != "a.wav" {
			t.Fatalf("parts %q", parts)
		}
		fields := esltest.SeparateString(strings.TrimPrefix(parts[0], "tts://"), '|', 3)
		if len(fields) != 3 || fields[2] != esl.NormalizeSpeech(v) || !utf8.ValidString(fields[2]) {
			t.Fatalf("fields %q", fields)
		}
	})
}
