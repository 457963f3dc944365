package prompts

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-audio/wav"
)

// wavSpec describes a wav file to write for a test.
type wavSpec struct {
	format         uint16 // 1 PCM, 3 float
	channels, bits int
	rate           int
	frames         int   // sample frames of audio written
	declare        int64 // data chunk size written in the header; -1: the real size
	listFirst      bool  // put a LIST chunk before fmt
}

func pcm(rate, frames int) wavSpec {
	return wavSpec{format: 1, channels: 1, bits: 16, rate: rate, frames: frames, declare: -1}
}

func (w wavSpec) bytes() []byte {
	frame := w.channels * w.bits / 8
	data := make([]byte, w.frames*frame)
	for i := range data {
		data[i] = byte(i * 7)
	}
	declared := int64(len(data))
	if w.declare >= 0 {
		declared = w.declare
	}
	var b bytes.Buffer
	le := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(uint32(0)) // patched below
	b.WriteString("WAVE")
	if w.listFirst {
		b.WriteString("LIST")
		le(uint32(12))
		b.WriteString("INFOISFT")
		le(uint32(0))
	}
	b.WriteString("fmt ")
	le(uint32(16))
	le(w.format)
	le(uint16(w.channels))
	le(uint32(w.rate))
	le(uint32(w.rate * frame))
	le(uint16(frame))
	le(uint16(w.bits))
	b.WriteString("data")
	le(uint32(declared))
	b.Write(data)
	out := b.Bytes()
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

func writeFile(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func reasons(s *Sound) []Reason {
	var rs []Reason
	for _, p := range s.Problems {
		rs = append(rs, p.Reason)
	}
	return rs
}

func TestCatalogWavFiles(t *testing.T) {
	dir := t.TempDir()
	stereo := pcm(8000, 800)
	stereo.channels = 2
	bits8 := pcm(8000, 800)
	bits8.bits = 8
	bits24 := pcm(16000, 800)
	bits24.bits = 24
	float := pcm(8000, 800)
	float.format, float.bits = 3, 32
	truncated := pcm(8000, 800)
	truncated.declare = 16000
	odd := pcm(8000, 800)
	odd.declare = 1599
	list := pcm(8000, 8000)
	list.listFirst = true
	cases := []struct {
		name   string
		data   []byte
		want   []Reason
		length time.Duration
	}{
		{"good.wav", pcm(8000, 8000).bytes(), nil, time.Second},
		{"exact.wav", pcm(8000, 12345).bytes(), nil, 1543125 * time.Microsecond},
		{"good48.wav", pcm(48000, 4800).bytes(), nil, 100 * time.Millisecond},
		{"list.wav", list.bytes(), nil, time.Second},
		{"stereo.wav", stereo.bytes(), []Reason{ReasonChannels}, 0},
		{"8bit.wav", bits8.bytes(), []Reason{ReasonBitDepth}, 0},
		{"24bit.wav", bits24.bytes(), []Reason{ReasonBitDepth}, 0},
		{"float.wav", float.bytes(), []Reason{ReasonNotPCM, ReasonBitDepth}, 0},
		{"cd.wav", pcm(44100, 441).bytes(), []Reason{ReasonRate}, 0},
		{"truncated.wav", truncated.bytes(), []Reason{ReasonTruncated}, 0},
		{"halfsample.wav", odd.bytes()[:len(odd.bytes())-1], []Reason{ReasonTruncated}, 0},
		{"cut.wav", pcm(8000, 800).bytes()[:30], []Reason{ReasonTruncated}, 0},
		{"zero.wav", nil, []Reason{ReasonEmpty}, 0},
		{"nodata.wav", pcm(8000, 0).bytes(), []Reason{ReasonEmpty}, 0},
		{"text.wav", []byte("this is not a wav file at all\n"), []Reason{ReasonNotWAV}, 0},
		{"tiny.wav", []byte("RIFF"), []Reason{ReasonNotWAV}, 0},
		{"mp3.wav", []byte("ID3\x03\x00\x00\x00\x00\x00\x00more bytes here"), []Reason{ReasonNotWAV}, 0},
	}
	c := NewCatalog()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, filepath.Join(dir, tc.name), tc.data)
			s := c.Sound(p)
			if got := reasons(s); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("reasons %v, want %v (%v)", got, tc.want, s.Problems)
			}
			if tc.want == nil {
				if !s.Known || s.Length != tc.length || len(s.Variants) != 1 {
					t.Fatalf("length %v known %v variants %d, want %v", s.Length, s.Known, len(s.Variants), tc.length)
				}
				return
			}
			if s.Known || s.Err() == nil {
				t.Fatalf("a bad file is Known=%v Err=%v", s.Known, s.Err())
			}
			var se *SoundError
			if !errors.As(s.Err(), &se) || se.Path != p {
				t.Errorf("Err() = %v, want a *SoundError for %s", s.Err(), p)
			}
		})
	}
}

// TestCatalogLengthIsExact shows why the length comes from the data
// chunk: go-audio's Duration counts the header bytes too.
func TestCatalogLengthIsExact(t *testing.T) {
	p := writeFile(t, filepath.Join(t.TempDir(), "one.wav"), pcm(8000, 8000).bytes())
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := wav.NewDecoder(f).Duration()
	if err != nil {
		t.Fatal(err)
	}
	if got := NewCatalog().Sound(p).Length; got != time.Second || d == time.Second {
		t.Errorf("catalog %v, go-audio Duration %v; want exactly 1s from the catalog", got, d)
	}
}

func TestCatalogRateDirectories(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "8000", "hold.wav"), pcm(8000, 16000).bytes())
	writeFile(t, filepath.Join(dir, "16000", "hold.wav"), pcm(16000, 32001).bytes())
	writeFile(t, filepath.Join(dir, "16000", "wrong.wav"), pcm(8000, 800).bytes())
	writeFile(t, filepath.Join(dir, "8000", "drift.wav"), pcm(8000, 8000).bytes())
	writeFile(t, filepath.Join(dir, "16000", "drift.wav"), pcm(16000, 17000).bytes())
	writeFile(t, filepath.Join(dir, "plain.wav"), pcm(16000, 1600).bytes())
	c := NewCatalog()

	s := c.Sound(filepath.Join(dir, "hold.wav"))
	if len(s.Problems) != 0 || len(s.Variants) != 2 || !s.Known {
		t.Fatalf("hold: %+v", s)
	}
	if s.Variants[0].RateDir != 16000 || s.Variants[1].RateDir != 8000 {
		t.Errorf("variants in FreeSWITCH's fallback order (48000, 32000, 16000, 8000): %+v", s.Variants)
	}
	if want := 2*time.Second + 62500*time.Nanosecond; s.Length != want {
		t.Errorf("length %v, want the longest variant %v", s.Length, want)
	}

	if got := reasons(c.Sound(filepath.Join(dir, "wrong.wav"))); !reflect.DeepEqual(got, []Reason{ReasonRateDir}) {
		t.Errorf("8 kHz file in 16000/: %v", got)
	}
	if s := c.Sound(filepath.Join(dir, "drift.wav")); !reflect.DeepEqual(reasons(s), []Reason{ReasonLengths}) || s.Err() != nil || !s.Known {
		t.Errorf("variants of different lengths: %v", s.Problems)
	}
	if s := c.Sound(filepath.Join(dir, "plain.wav")); len(s.Problems) != 0 || s.Variants[0].RateDir != 0 {
		t.Errorf("a file without rate directories: %+v", s)
	}
	s = c.Sound(filepath.Join(dir, "absent.wav"))
	if got := reasons(s); !reflect.DeepEqual(got, []Reason{ReasonMissing}) {
		t.Fatalf("missing: %v", got)
	}
	for _, where := range []string{"48000/absent.wav", "8000/absent.wav", dir + "/absent.wav"} {
		if !strings.Contains(s.Problems[0].Detail, where) {
			t.Errorf("missing: %q does not say it looked in %s", s.Problems[0].Detail, where)
		}
	}
}

func TestCatalogOtherFormatsAndStreams(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "music.mp3"), []byte("ID3"))
	writeFile(t, filepath.Join(dir, "8000", "beep.ulaw"), []byte{0xff, 0xff})
	c := NewCatalog()
	cases := []struct {
		path  string
		want  []Reason
		known time.Duration // 0: not known
	}{
		{filepath.Join(dir, "music.mp3"), []Reason{ReasonUnchecked}, 0},
		{filepath.Join(dir, "beep.ulaw"), []Reason{ReasonUnchecked}, 0},
		{filepath.Join(dir, "absent.mp3"), []Reason{ReasonMissing}, 0},
		{filepath.Join(dir, "x.xyz"), []Reason{ReasonFormat}, 0},
		{filepath.Join(dir, "noext"), []Reason{ReasonNoExtension}, 0},
		{dir, []Reason{ReasonNoExtension}, 0},
		{"silence_stream://500", nil, 500 * time.Millisecond},
		{"silence_stream://250,1400", nil, 250 * time.Millisecond},
		{"silence_stream://-1", nil, 0},
		{"tone_stream://%(100,0,440)", nil, 0},
		{"local_stream://moh", nil, 0},
		{"https://example.com/a.mp3", []Reason{ReasonRemote}, 0},
		{"gopher://x", []Reason{ReasonFormat}, 0},
		{"ivr/hold.wav", []Reason{ReasonRelative}, 0},
	}
	for _, tc := range cases {
		s := c.Sound(tc.path)
		if got := reasons(s); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: reasons %v, want %v (%v)", tc.path, got, tc.want, s.Problems)
		}
		if s.Known != (tc.known > 0) || s.Length != tc.known {
			t.Errorf("%s: length %v known %v, want %v", tc.path, s.Length, s.Known, tc.known)
		}
		for _, p := range s.Problems {
			if p.Warning() != p.Reason.Warning() || (p.Reason == ReasonUnchecked || p.Reason == ReasonRemote || p.Reason == ReasonRelative) != p.Warning() {
				t.Errorf("%s: %v warning=%v", tc.path, p.Reason, p.Warning())
			}
		}
	}
}

func TestCatalogLength(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "8000", "a.wav"), pcm(8000, 8000).bytes())
	writeFile(t, filepath.Join(dir, "b.wav"), pcm(16000, 8000).bytes())
	r, err := NewRenderer(RenderConfig{SoundsDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := NewCatalog()
	length := func(seq string) (time.Duration, bool) {
		q, err := r.Parse(seq)
		if err != nil {
			t.Fatal(err)
		}
		steps, err := r.Play(q, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Length(steps)
	}
	cases := []struct {
		seq   string
		d     time.Duration
		exact bool
	}{
		{`"a.wav" "b.wav" "silence_stream://250"`, 1750 * time.Millisecond, true},
		{`"a.wav" "%Hello" "b.wav"`, 1500 * time.Millisecond, false},
		{`"a.wav" "$12" "b.wav"`, 1500 * time.Millisecond, false},
		{`"a.wav" "missing.wav"`, time.Second, false},
		{`"local_stream://moh"`, 0, false},
		{``, 0, true},
	}
	for _, tc := range cases {
		if d, exact := length(tc.seq); d != tc.d || exact != tc.exact {
			t.Errorf("Length(%s) = %v, %v; want %v, %v", tc.seq, d, exact, tc.d, tc.exact)
		}
	}
}

func TestCatalogCacheAndConcurrency(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, filepath.Join(dir, "x.wav"), pcm(8000, 8000).bytes())
	c := NewCatalog()
	steps := []Step{{App: "playback", Kind: KindFile, Files: []string{p, p, "silence_stream://100"}, Items: 3}}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if d, exact := c.Length(steps); d != 2100*time.Millisecond || !exact {
					t.Errorf("Length = %v, %v", d, exact)
					return
				}
			}
		}()
	}
	wg.Wait()
	first := c.Sound(p)
	writeFile(t, p, pcm(8000, 4000).bytes())
	if c.Sound(p) != first {
		t.Error("the cached result was not reused")
	}
	c.Forget()
	if s := c.Sound(p); s.Length != 500*time.Millisecond {
		t.Errorf("after Forget: %v", s.Length)
	}
}

// TestShippedSounds checks the prompts in sounds/ that generate.sh makes.
func TestShippedSounds(t *testing.T) {
	dir, err := filepath.Abs("../sounds")
	if err != nil {
		t.Fatal(err)
	}
	c := NewCatalog()
	for _, name := range []string{"hold.wav", "apology.wav", "transferring.wav", "holdmusic.wav"} {
		s := c.Sound(filepath.Join(dir, name))
		if len(s.Problems) != 0 || len(s.Variants) != 2 || !s.Known {
			t.Errorf("%s: %d variants, problems %v", name, len(s.Variants), s.Problems)
			continue
		}
		for _, v := range s.Variants {
			if v.Rate != v.RateDir || v.Channels != 1 || v.Bits != 16 {
				t.Errorf("%s: %+v", v.File, v)
			}
		}
		if name == "holdmusic.wav" && s.Length != 10*time.Second {
			t.Errorf("holdmusic.wav lasts %v, want 10s", s.Length)
		}
		if s.Length < time.Second || s.Length > 12*time.Second {
			t.Errorf("%s lasts %v", name, s.Length)
		}
	}
}
