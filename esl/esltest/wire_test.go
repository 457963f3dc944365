package esltest

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eslapp/eslapp/esl"
)

var update = flag.Bool("update", false, "rewrite testdata/*/*.want")

// renderCommands parses every command in b and describes the result.
func renderCommands(b []byte) string {
	var sb strings.Builder
	r := bufio.NewReader(bytes.NewReader(b))
	for n := 1; ; n++ {
		cmd, err := ReadCommand(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Fprintf(&sb, "--- command %d\nerror: %v\n", n, err)
			break
		}
		fmt.Fprintf(&sb, "--- command %d\nname: %s\nline: %q\n", n, cmd.Name, cmd.Line)
		for _, h := range cmd.Headers {
			fmt.Fprintf(&sb, "header: %q = %q\n", h.Name, h.Value)
		}
		if cmd.Body != nil {
			fmt.Fprintf(&sb, "body: %q\n", cmd.Body)
		}
		if cmd.Name == "sendmsg" {
			fmt.Fprintf(&sb, "sendmsg: command=%q app=%q arg=%q uuid=%q lock=%v loops=%d\n",
				cmd.CallCommand, cmd.App, cmd.AppArg, cmd.EventUUID, cmd.EventLock, cmd.Loops)
		}
		fmt.Fprintf(&sb, "raw: %d bytes\n", len(cmd.Raw))
	}
	return sb.String()
}

func renderFrames(b []byte) string {
	var sb strings.Builder
	frames, err := ParseFrames(b)
	for i, f := range frames {
		fmt.Fprintf(&sb, "--- frame %d: %s\n", i+1, f.Kind())
		for _, h := range f.Headers {
			fmt.Fprintf(&sb, "header: %q = %q\n", h.Name, h.Value)
		}
		if f.Body != nil {
			fmt.Fprintf(&sb, "body: %d bytes\n", len(f.Body))
		}
		if f.Kind() == "event" {
			e, err := f.Event()
			if err != nil {
				fmt.Fprintf(&sb, "event error: %v\n", err)
				continue
			}
			fmt.Fprintf(&sb, "event: %s, %d headers, body %q\n", e.Get("Event-Name"), len(e.Headers), e.Body)
		}
	}
	if err != nil {
		fmt.Fprintf(&sb, "error: %v\n", err)
	}
	return sb.String()
}

// golden compares got with testdata/DIR/NAME.want (or rewrites it).
func golden(t *testing.T, dir, ext string, render func([]byte) string) {
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*."+ext))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/%s/*.%s: %v", dir, ext, err)
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), "."+ext)
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got := render(b)
			want := strings.TrimSuffix(in, "."+ext) + ".want"
			if *update {
				if err := os.WriteFile(want, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			w, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(w) {
				t.Errorf("got:\n%s\nwant:\n%s", got, w)
			}
			if strings.HasPrefix(name, "invalid_") != strings.Contains(got, "error") {
				t.Errorf("invalid_ cases must end in an error, others must not:\n%s", got)
			}
		})
	}
}

// TestReadCommand runs testdata/commands: how FreeSWITCH's read_packet
// frames what an ESL client sends.
func TestReadCommand(t *testing.T) { golden(t, "commands", "cmd", renderCommands) }

// TestReadFrame runs testdata/frames: what FreeSWITCH sends.
func TestReadFrame(t *testing.T) { golden(t, "frames", "frame", renderFrames) }

// TestTranscriptCommands parses every command a real listener sent and
// checks the commands' bytes add up to the file.
func TestTranscriptCommands(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(transcriptDir, "*.sent.raw"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		r := bufio.NewReader(bytes.NewReader(b))
		total := 0
		for {
			cmd, err := ReadCommand(r)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			total += len(cmd.Raw)
		}
		if total != len(b) {
			t.Errorf("%s: commands cover %d of %d bytes", f, total, len(b))
		}
	}
}

func seedFromDir(f *testing.F, dir, ext string) {
	files, _ := filepath.Glob(filepath.Join("testdata", dir, "*."+ext))
	for _, in := range files {
		if b, err := os.ReadFile(in); err == nil {
			f.Add(b)
		}
	}
}

// FuzzReadCommand checks ReadCommand never panics and that a command's Raw
// bytes parse back to the same command.
func FuzzReadCommand(f *testing.F) {
	seedFromDir(f, "commands", "cmd")
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		for i := 0; i < 64; i++ {
			cmd, err := ReadCommand(r)
			if err != nil {
				return
			}
			again, err := ReadCommand(bufio.NewReader(bytes.NewReader(cmd.Raw)))
			if err != nil {
				t.Fatalf("Raw %q does not parse again: %v", cmd.Raw, err)
			}
			if again.Line != cmd.Line || !bytes.Equal(again.Body, cmd.Body) || len(again.Headers) != len(cmd.Headers) {
				t.Fatalf("Raw %q parses differently", cmd.Raw)
			}
		}
	})
}

// FuzzReadFrame checks frame and event parsing never panic.
func FuzzReadFrame(f *testing.F) {
	seedFromDir(f, "frames", "frame")
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, _ := ParseFrames(b)
		for _, fr := range frames {
			_ = fr.Kind()
			_, _ = fr.Event()
		}
		_, _ = ParseEventPlain(b)
	})
}

func TestURLEncode(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"+OK\n", "%2BOK%0A"}, // connect Reply-Text (s1)
		{"sofia/internal/sipp@127.0.0.1:5072", "sofia/internal/sipp%40127.0.0.1%3A5072"}, // '/' kept
		{"Wed, 25 Nov 2026 16:03:38 GMT", "Wed,%2025%20Nov%202026%2016%3A03%3A38%20GMT"}, // ',' kept
		{"file_string:///a.wav!b.wav", "file_string%3A///a.wav!b.wav"},                   // '!' kept
		{"tts://flite|kal|It's $5 (ok)*~", "tts%3A//flite%7Ckal%7CIt's%20$5%20(ok)*~"},
		{`{"phone":"123"}`, "%7B%22phone%22%3A%22123%22%7D"}, // s7
		{"a=b&c#d;e?f[g]h^i`j\\k<l>", "a%3Db%26c%23d%3Be%3Ff%5Bg%5Dh%5Ei%60j%5Ck%3Cl%3E"},
		{"caf\u00e9\t\x7f", "caf%C3%A9%09%7F"},
		{"50%20off", "50%20off"}, // double_encode false keeps an escape
		{"%2a", "%252a"},         // only uppercase hex counts
		{"abc%2", "abc%252"},
		{"100%", "100%25"},
		{"a\x00b", "a"},
	} {
		if got := URLEncode(c.in); got != c.want {
			t.Errorf("URLEncode(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// Every value in a real frame re-encodes to itself.
	frames, _ := splitRecvFile(t, "s1_full_session")
	for _, h := range frames[0].Headers {
		if got := URLEncode(esl.URLDecode(h.Value)); got != h.Value {
			t.Errorf("%s: %q re-encodes to %q", h.Name, h.Value, got)
		}
	}
}

func splitRecvFile(t *testing.T, name string) ([]*Frame, [][]byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(transcriptDir, name+".recv.raw"))
	if err != nil {
		t.Fatal(err)
	}
	return splitRecv(t, b)
}
