package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeWav writes a PCM wav of silence.
func writeWav(t *testing.T, path string, channels, bits, rate, frames int) {
	t.Helper()
	data := frames * channels * bits / 8
	b := make([]byte, 44+data)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+data))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], uint16(channels))
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(rate*channels*bits/8))
	binary.LittleEndian.PutUint16(b[32:], uint16(channels*bits/8))
	binary.LittleEndian.PutUint16(b[34:], uint16(bits))
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(data))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A flow whose sequences play a stereo wav, a missing wav and a segment
// with an unknown prefix: three errors, each with file, line, flow and
// action.
func TestCheckReportsBadSounds(t *testing.T) {
	dir := t.TempDir()
	sounds := filepath.Join(dir, "sounds")
	if err := os.Mkdir(sounds, 0o755); err != nil {
		t.Fatal(err)
	}
	writeWav(t, filepath.Join(sounds, "stereo.wav"), 2, 16, 8000, 800)
	writeWav(t, filepath.Join(sounds, "ok.wav"), 1, 16, 8000, 800)
	path := filepath.Join(dir, "eslapp.toml")
	writeFile(t, path, `[sounds]
dir = "`+sounds+`"
[prompts]
hold_music = "ok.wav"

[flows.f]
start = "a"

[flows.f.actions.a]
type = "play"
sequence = '"ok.wav" "stereo.wav"'
next = "b"

[flows.f.actions.b]
type = "play"
sequence = '"missing.wav"'
next = "c"

[flows.f.actions.c]
type = "play"
sequence = '"ok.wav" "@odd"'
next = "d"

[flows.f.actions.d]
type = "continue"
`)
	code, _, errOut := runCmd(t, "check", "-config", path)
	if code == 0 {
		t.Fatal("check passed")
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	want := []struct{ prefix, contains string }{
		{path + ":11: flows.f.actions.a.sequence: ", "stereo.wav"},
		{path + ":16: flows.f.actions.b.sequence: ", "missing.wav"},
		{path + ":21: flows.f.actions.c.sequence: ", "prefix"},
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), errOut)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w.prefix) || !strings.Contains(lines[i], w.contains) {
			t.Errorf("line %d: %s\nwant %s...%s", i, lines[i], w.prefix, w.contains)
		}
	}
}
