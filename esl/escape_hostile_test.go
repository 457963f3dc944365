package esl_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/esl/esltest"
)

// Sink-level tables for the issue "no outside value is ever evaluated by
// FreeSWITCH": every hostile value through every builder in escape.go, then
// through what FreeSWITCH does to the bytes (esltest.Expander for
// switch_channel_expand_variables, esltest.SeparateString for
// switch_separate_string), must come out as the application would use it,
// or be refused. The expander fails the test on any ${api(...)}.

// hostileSink extends escape_test.go's hostile list with the issue's own
// list and the shapes that stress each splitter.
var hostileSink = append(append([]string(nil), hostile...),
	`$${hostname}\!"x"`, "${system touch pwned}", "${${x}}", `\\${x}`, `\\\${x}`, `$\\{x}`,
	"a!b!tts://flite|kal|injected", "^^", "^^!", "^^|", "|", "!", "||", "!!", `\!`, `\|`,
	"ends in space ", " starts with space", "tab at end\t", "ARRAY::a|:b", "{voice=rms}hi",
	"\x00", "a\x00b", "${a}\x00${system(x)}", "\xed\xa0\x80", strings.Repeat(`${system(x)}!|'\`, 4096),
	"say en number pronounced 1", "1000 XML default", "-", "+", "12.50", "1,234",
)

// multiset runs mod_dptools' multiset on an application argument that
// FreeSWITCH has already expanded once: the "^^X" delimiter switch, the
// split (switch_separate_string), and base_set (which expands each value
// once more) per part. It returns the variables as set.
func multiset(x *esltest.Expander, arg string) map[string]string {
	vars := map[string]string{}
	delim := byte(' ')
	if strings.HasPrefix(arg, "^^") && len(arg) > 2 {
		delim, arg = arg[2], arg[3:]
	}
	for _, part := range esltest.SeparateString(arg, delim, 256) {
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			name, val, _ = strings.Cut(part, ",")
		}
		if val != "" {
			val = x.Expand(val)
		}
		vars[name] = val
	}
	return vars
}

// set runs base_set on an argument FreeSWITCH has already expanded once.
func set(x *esltest.Expander, arg string) (string, string) {
	name, val, _ := strings.Cut(arg, "=")
	return name, x.Expand(val)
}

// TestHostileSetAndMultiset: result, error, mapped and set variables reach
// FreeSWITCH through SetArg or MultisetArg. Each value is stored verbatim,
// with expansion on the channel and with app_disable_expand_variables, or
// (a NUL, which no C string holds) refused before anything is sent.
func TestHostileSetAndMultiset(t *testing.T) {
	x := expander(t)
	for _, expandOn := range []bool{true, false} {
		var vars []esl.Var
		want := map[string]string{}
		for i, v := range hostileSink {
			name := "v" + strconv.Itoa(i)
			arg, err := esl.SetArg(name, v)
			if strings.IndexByte(v, 0) >= 0 {
				if err == nil {
					t.Errorf("%.40q: SetArg accepted a NUL", v)
				}
				if _, _, err := esl.MultisetArg([]esl.Var{{Name: name, Value: v}}); err == nil {
					t.Errorf("%.40q: MultisetArg accepted a NUL", v)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%.40q: %v", v, err)
			}
			seen := arg.Wire(expandOn)
			if expandOn {
				seen = x.Expand(seen)
			}
			if n, got := set(x, seen); n != name || got != v {
				t.Errorf("set %.40q (expansion %v): stored %s=%.40q", v, expandOn, n, got)
			}
			vars = append(vars, esl.Var{Name: name, Value: v})
			want[name] = v
		}
		arg, rest, err := esl.MultisetArg(vars)
		if err != nil {
			t.Fatal(err)
		}
		seen := arg.Wire(expandOn)
		if expandOn {
			seen = x.Expand(seen)
		}
		got := multiset(x, seen)
		for _, r := range rest {
			a, err := esl.SetArg(r.Name, r.Value)
			if err != nil {
				t.Fatal(err)
			}
			s := a.Wire(expandOn)
			if expandOn {
				s = x.Expand(s)
			}
			n, v := set(x, s)
			got[n] = v
		}
		for name, v := range want {
			if got[name] != v {
				t.Errorf("multiset (expansion %v) %s: want %.40q, stored %.40q", expandOn, name, v, got[name])
			}
		}
		if len(got) != len(want) {
			t.Errorf("multiset (expansion %v) set %d variables, want %d", expandOn, len(got), len(want))
		}
	}
}

// TestHostilePlayItems: TTS text and file elements keep the list's shape
// (one element per item, in order) and the text is what the engine is given,
// normalised; a say value that is not a number and a transfer word that is
// not a name are refused.
func TestHostilePlayItems(t *testing.T) {
	x := expander(t)
	hold, _ := esl.File("/sounds/hold.wav")
	for _, v := range hostileSink {
		tts, err := esl.TTS("flite", "kal", v)
		if esl.NormalizeSpeech(v) == "" {
			if err == nil {
				t.Errorf("%.40q: TTS accepted nothing to say", v)
			}
		} else if err != nil {
			t.Errorf("%.40q: %v", v, err)
		} else {
			for n := 1; n <= 3; n++ {
				items := []esl.PlayItem{tts, hold, tts}[:n]
				arg, err := esl.PlaybackArg(items...)
				if err != nil {
					t.Fatal(err)
				}
				for _, expandOn := range []bool{true, false} {
					seen := arg.Wire(expandOn)
					if expandOn {
						seen = x.Expand(seen)
					}
					files := []string{seen}
					if list, ok := strings.CutPrefix(seen, "file_string://"); ok {
						files = esltest.SeparateString(list, '!', 128)
					} else if n > 1 {
						t.Fatalf("%.40q: %d items not a file_string: %.60q", v, n, seen)
					}
					if len(files) != n {
						t.Fatalf("%.40q (%d items, expansion %v): %d elements %.80q", v, n, expandOn, len(files), files)
					}
					for i, f := range files {
						if i == 1 {
							if f != "/sounds/hold.wav" {
								t.Errorf("%.40q: element 1 is %.60q", v, f)
							}
							continue
						}
						spec, ok := strings.CutPrefix(f, "tts://")
						fields := esltest.SeparateString(spec, '|', 3)
						if !ok || len(fields) != 3 || fields[0] != "flite" || fields[1] != "kal" || fields[2] != esl.NormalizeSpeech(v) {
							t.Errorf("%.40q (%d items, expansion %v): element %d fields %.80q", v, n, expandOn, i, fields)
						}
					}
				}
			}
		}
		if _, err := esl.File(v); err == nil && (v != strings.TrimSpace(v) || strings.HasPrefix(v, "^^") || strings.ContainsAny(v, "\x00\n\r\t")) {
			t.Errorf("File accepted %.40q", v)
		}
		if _, err := esl.SayArg("en", esl.SayNumber, esl.SayPronounced, v); err == nil {
			if f := esltest.SeparateString("en number pronounced "+v, ' ', 5); len(f) != 4 || f[3] != v {
				t.Errorf("SayArg accepted %.40q, which say reads as %q", v, f)
			}
		}
		if a, err := esl.TransferArg(v, "XML", "default"); err == nil {
			if f := esltest.SeparateString(x.Expand(a.Wire(true)), ' ', 4); len(f) != 3 || f[0] != v {
				t.Errorf("TransferArg accepted %.40q, which transfer reads as %q", v, f)
			}
		}
	}
}

// feedTTS is switch_core_speech_feed_tts (src/switch_core_speech.c,
// 1.10.12): leading spaces are skipped and a leading "{...}" block is taken
// as engine parameters "name=val,name=val" (switch_find_end_paren), not
// spoken. mod_ssml's tts_file_open passes the third field of tts://
// to it ("module|voice|{param1=val1,param2=val2}TTS document").
func feedTTS(text string) (params, spoken string) {
	text = strings.TrimLeft(text, " ")
	if !strings.HasPrefix(text, "{") {
		return "", text
	}
	depth := 0
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return text[1:i], text[i+1:]
			}
		}
	}
	return text[1:], "" // no end: FreeSWITCH refuses the text
}

// TestRegressionTTSTextCannotSetEngineParameters: Regression (found by the security review). Text that starts
// with '{' (a caller name, a CRM field) is read by
// switch_core_speech_feed_tts as TTS engine parameters: "{voice=rms}Hi"
// switches the voice, and with mod_unimrcp any parameter goes to the MRCP
// server. esl.TTS must neutralise a leading '{' (an empty "{}" block in
// front of it does: feed_tts strips it and speaks the rest verbatim).
func TestRegressionTTSTextCannotSetEngineParameters(t *testing.T) {
	x := expander(t)
	hold, _ := esl.File("/sounds/hold.wav")
	for _, v := range []string{"{voice=rms}Hello", "{}", "  {a=b,c=d} text", "{x", "{{}}"} {
		tts, err := esl.TTS("flite", "kal", v)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		for _, items := range [][]esl.PlayItem{{tts}, {hold, tts}} {
			arg, _ := esl.PlaybackArg(items...)
			seen := x.Expand(arg.Wire(true))
			f := seen
			if list, ok := strings.CutPrefix(seen, "file_string://"); ok {
				f = esltest.SeparateString(list, '!', 128)[1]
			}
			fields := esltest.SeparateString(strings.TrimPrefix(f, "tts://"), '|', 3)
			params, spoken := feedTTS(fields[2])
			if params != "" || spoken != esl.NormalizeSpeech(v) {
				t.Errorf("%q (%d items): the engine gets parameters %q and speaks %q", v, len(items), params, spoken)
			}
		}
	}
}

// switchTrue is switch_true from src/include/switch_utils.h (1.10.12):
// yes, on, true, t, enabled, active, allow (any case), or
// switch_is_number(expr) && atoi(expr); atoi is (int)strtol.
func switchTrue(s string) bool {
	switch strings.ToLower(s) {
	case "yes", "on", "true", "t", "enabled", "active", "allow":
		return true
	}
	p := s
	if p != "" && (p[0] == '+' || p[0] == '-') {
		p = p[1:] // switch_is_number skips one sign
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '.' && (p[i] < '0' || p[i] > '9') {
			return false
		}
	}
	// atoi: sign and digits; strtol saturates at the long range, and the
	// cast to int keeps the low 32 bits.
	neg := s != "" && s[0] == '-'
	var v int64
	for i := len(s) - len(p); i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := int64(s[i] - '0')
		switch {
		case neg && v < (-1<<63+d)/10:
			v = -1 << 63
		case !neg && v > (1<<63-1-d)/10:
			v = 1<<63 - 1
		case neg:
			v = v*10 - d
		default:
			v = v*10 + d
		}
	}
	return int32(v) != 0
}

// TestRegressionIsTrueIsSwitchTrue: Regression (found by the security review). Session.Start skips the escaping
// for the first expansion when esl.IsTrue(app_disable_expand_variables)
// says FreeSWITCH will not expand. Where IsTrue says true and switch_true
// says false, FreeSWITCH expands unescaped outside data: "enable" is not in
// switch_true's list, and atoi("4294967296") is 0. The double's switchTrue
// (esltest/command.go) has the same "enable", so whole-call tests cannot
// see it.
func TestRegressionIsTrueIsSwitchTrue(t *testing.T) {
	for _, v := range []string{"true", "TRUE", "t", "yes", "on", "enabled", "active", "allow", "1", "+1", "-1", "007",
		"enable", "4294967296", "1.5", "0", "", "false", "no", "1e3", " 1", "0x1", "2147483648"} {
		if got, want := esl.IsTrue(v), switchTrue(v); got != want {
			t.Errorf("IsTrue(%q) = %v, FreeSWITCH's switch_true says %v", v, got, want)
		}
	}
	// What it costs: the argument eslapp sends when it believes expansion
	// is off, expanded by FreeSWITCH, which does not believe it.
	x := &esltest.Expander{API: func(name, args string) (string, bool) {
		t.Errorf("with app_disable_expand_variables=enable FreeSWITCH runs %s(%s)", name, args)
		return "", false
	}}
	arg, _ := esl.SetArg("workflowResultOutput", `{"name":"${system(touch pwned)}"}`)
	set(x, x.Expand(arg.Wire(!esl.IsTrue("enable"))))
}

// uuid_setvar's argument round-trips through switch_separate_string (the
// double's port) for every value UUIDSetVarArgs takes.
func FuzzUUIDSetVarArgs(f *testing.F) {
	for _, v := range []string{`{"a":"b c"}`, `a\b`, `'q' "d"`, `${system(x)} $${h}`, `a  b\ c`, `x\`, `^^|a|b`} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		const uuid = "0f8fad5b-d9cb-469f-a165-70867728950e"
		args, err := esl.UUIDSetVarArgs(uuid, "late", v)
		if err != nil {
			return
		}
		argv := esltest.SeparateString(args.String(), ' ', 3)
		if len(argv) != 3 || argv[0] != uuid || argv[1] != "late" || argv[2] != v {
			t.Fatalf("%q: uuid_setvar would read %q", v, argv)
		}
	})
}
