package prompts

import (
	"fmt"
	"strings"

	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/esl/esltest"
)

// This file plays rendered steps through the FreeSWITCH double's ports of
// switch_channel_expand_variables (esltest.Expander) and
// switch_separate_string (esltest.SeparateString), to check that what
// FreeSWITCH would play is exactly what the segments asked for.

// fsPlay returns what FreeSWITCH plays for steps, one line per item:
// "file PATH", "tts ENGINE|VOICE|TEXT" or "say LANG TYPE METHOD VALUE".
// It fails when the argument expands a variable or calls an API, or
// when an item does not split the way FreeSWITCH needs.
func fsPlay(steps []Step) ([]string, error) {
	var out []string
	for _, st := range steps {
		var leaks []string
		x := esltest.Expander{
			Lookup: func(name string, idx int) (string, bool) {
				leaks = append(leaks, "${"+name+"}")
				return "LEAK", true
			},
			API: func(name, args string) (string, bool) {
				leaks = append(leaks, "api "+name+" "+args)
				return "PWNED", true
			},
		}
		arg := x.Expand(st.Arg.Wire(true))
		if len(leaks) > 0 {
			return nil, fmt.Errorf("%s %q expands %q", st.App, st.Arg, leaks)
		}
		if arg != st.Arg.String() {
			return nil, fmt.Errorf("%s %q reaches the application as %q", st.App, st.Arg, arg)
		}
		switch st.App {
		case "playback":
			elems := []string{arg} // switch_ivr_play_file takes a single file whole
			if rest, ok := strings.CutPrefix(arg, "file_string://"); ok {
				elems = esltest.SeparateString(rest, '!', 128)
			}
			if len(elems) != st.Items {
				return nil, fmt.Errorf("playback %q splits into %d items, the step says %d", arg, len(elems), st.Items)
			}
			for _, e := range elems {
				if rest, ok := strings.CutPrefix(e, "tts://"); ok {
					f := esltest.SeparateString(rest, '|', 3)
					if len(f) != 3 {
						return nil, fmt.Errorf("tts item %q splits into %d fields", e, len(f))
					}
					out = append(out, "tts "+strings.Join(f, "|"))
					continue
				}
				out = append(out, "file "+e)
			}
		case "say":
			f := esltest.SeparateString(arg, ' ', 5)
			if len(f) != 4 {
				return nil, fmt.Errorf("say %q splits into %d fields", arg, len(f))
			}
			out = append(out, "say "+strings.Join(f, " "))
		default:
			return nil, fmt.Errorf("unexpected application %q", st.App)
		}
	}
	return out, nil
}

// wantPlay is what segs should play, item by item, written like fsPlay's
// output: files at their rendered path, TTS text normalised (empty text
// left out), say values normalised.
func wantPlay(r *Renderer, segs []Resolved) ([]string, error) {
	cfg := r.Config()
	var out []string
	for _, s := range segs {
		switch s.Kind {
		case KindFile:
			p, err := r.FilePath(s.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, "file "+p)
		case KindTTS:
			if t := esl.NormalizeSpeech(s.Value); t != "" {
				out = append(out, "tts "+cfg.TTSEngine+"|"+cfg.TTSVoice+"|"+t)
			}
		default:
			v, reason := checkValue(s.Kind, s.Value)
			if reason != "" {
				return nil, fmt.Errorf("%s %q: %s", s.Kind, s.Value, reason)
			}
			typ, method := "number", "pronounced"
			switch s.Kind {
			case KindCurrency:
				typ = "currency"
			case KindDigits:
				method = "iterated"
			}
			out = append(out, fmt.Sprintf("say %s %s %s %s", cfg.Language, typ, method, v))
		}
	}
	return out, nil
}
