package prompts

import (
	"errors"
	"fmt"
	"github.com/eslapp/eslapp/conf"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "8000", "hold.wav"), pcm(8000, 8000).bytes())
	stereo := pcm(8000, 800)
	stereo.channels = 2
	writeFile(t, filepath.Join(dir, "stereo.wav"), stereo.bytes())
	writeFile(t, filepath.Join(dir, "music.mp3"), []byte("ID3"))
	cfg := RenderConfig{SoundsDir: dir}
	cat := NewCatalog()

	seq := `"hold.wav" "%Hi {name}" "missing.wav" "stereo.wav" "{file}.wav" "music.mp3" "@x" "12.50" "#1.5" "unterminated`
	got := Check(seq, cfg, cat)
	want := []struct {
		sev  Severity
		col  int
		text string
	}{
		{SeverityError, 77, "unknown prefix '@'"},
		{SeverityError, 82, `write "$ {var}" instead`},
		{SeverityError, 90, `number "1.5": not a whole number`},
		{SeverityError, 97, "unterminated quote"},
		{SeverityError, 25, "column 25: " + filepath.Join(dir, "missing.wav") + ": missing: looked for"},
		{SeverityError, 39, "column 39: " + filepath.Join(dir, "stereo.wav") + ": not mono: 2 channels"},
		{SeverityWarning, 65, "music.mp3: not checked: needs mod_shout"},
	}
	if len(got) != len(want) {
		for _, p := range got {
			t.Log(p.Severity, p)
		}
		t.Fatalf("%d problems, want %d", len(got), len(want))
	}
	for i, w := range want {
		p := got[i]
		if p.Severity != w.sev || p.Column != w.col || p.Line != 1 || !strings.Contains(p.String(), w.text) {
			t.Errorf("problem %d: %v %d:%d %q; want %v column %d containing %q", i, p.Severity, p.Line, p.Column, p.String(), w.sev, w.col, w.text)
		}
	}
	var se *SoundError
	if !errors.As(got[4].Err, &se) || se.Reason != ReasonMissing || got[4].Path != filepath.Join(dir, "missing.wav") {
		t.Errorf("missing file problem: %+v", got[4])
	}

	if got := Check(`"hold.wav" "%Hello {name}"`, cfg, cat); len(got) != 0 {
		t.Errorf("a good sequence: %v", got)
	}
	if got := Check(`"missing.wav"`, cfg, nil); len(got) != 0 {
		t.Errorf("without a catalog sounds are not checked: %v", got)
	}
	var fe *conf.FieldError
	if got := Check(`"hold.wav"`, RenderConfig{SoundsDir: "relative"}, cat); len(got) != 1 || !errors.As(got[0].Err, &fe) || conf.KeyString(fe.Key) != "sounds.dir" {
		t.Errorf("bad config: %v", got)
	}
}

// ExampleCheck shows the lines `eslapp check` can print.
func ExampleCheck() {
	cfg := RenderConfig{SoundsDir: "/nonexistent/sounds"}
	for _, p := range Check(`"%Please hold" "hold.wav" "${balance}" "12.50"`, cfg, NewCatalog()) {
		fmt.Printf("flows.demo.actions.lookup.sequence: %s: %s\n", p.Severity, p)
	}
	// Output:
	// flows.demo.actions.lookup.sequence: error: column 40: segment "12.50" is a number, not a sound file; in dialplan XML FreeSWITCH expands ${var} before eslapp reads the sequence; write "$ {var}" instead (white space after the prefix, or "{var}" for a file) so that eslapp reads the variable itself
	// flows.demo.actions.lookup.sequence: error: column 16: /nonexistent/sounds/hold.wav: missing: looked for /nonexistent/sounds/48000/hold.wav, /nonexistent/sounds/32000/hold.wav, /nonexistent/sounds/16000/hold.wav, /nonexistent/sounds/8000/hold.wav, /nonexistent/sounds/hold.wav
}
