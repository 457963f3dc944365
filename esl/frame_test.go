package esl

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/percipia/eslgo"
)

func readCases(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "frames", dir, "*.raw"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases in %s: %v", dir, err)
	}
	cases := make(map[string][]byte)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cases[filepath.Base(f)] = b
	}
	return cases
}

func TestScanFrameHeader(t *testing.T) {
	for name, b := range readCases(t, "valid") {
		h, ok, err := scanFrameHeader(b)
		if err != nil || !ok {
			t.Errorf("%s: ok=%v err=%v", name, ok, err)
			continue
		}
		if h.headerLen+h.contentLength != len(b) {
			t.Errorf("%s: frame of %d+%d bytes, file has %d", name, h.headerLen, h.contentLength, len(b))
		}
		// A header block cut anywhere is incomplete, not an error.
		for i := range h.headerLen {
			if _, ok, err := scanFrameHeader(b[:i]); ok || err != nil {
				t.Errorf("%s cut at %d: ok=%v err=%v", name, i, ok, err)
			}
		}
	}
	for name, b := range readCases(t, "invalid") {
		if _, _, err := scanFrameHeader(b); !errors.Is(err, errFrame) {
			t.Errorf("%s: err = %v, want errFrame", name, err)
		}
	}
}

// Every frame FreeSWITCH sent in the transcripts scans, with the length and
// type eslgo reads from it.
func TestScanFrameHeaderTranscripts(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(transcriptDir, "*.recv.raw"))
	if len(files) == 0 {
		t.Fatal("no transcripts")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for len(b) > 0 {
			h, ok, err := scanFrameHeader(b)
			if err != nil || !ok {
				t.Fatalf("%s: ok=%v err=%v at %q", f, ok, err, b[:min(60, len(b))])
			}
			checkLikeTextproto(t, b, h)
			b = b[h.headerLen+h.contentLength:]
		}
	}
}

// checkLikeTextproto asserts that net/textproto, which eslgo reads frames
// with, sees the same header block, type and length.
func checkLikeTextproto(t testing.TB, b []byte, h frameHeader) {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(b[:h.headerLen]))
	hdr, err := textproto.NewReader(br).ReadMIMEHeader()
	if err != nil {
		t.Fatalf("textproto rejects a block the scanner accepted: %v\n%q", err, b[:h.headerLen])
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Fatalf("textproto ended the header block %d bytes before the scanner", len(rest))
	}
	if got := hdr.Get("Content-Type"); got != h.contentType {
		t.Fatalf("Content-Type: textproto %q, scanner %q", got, h.contentType)
	}
	want := 0
	if v := hdr.Get("Content-Length"); v != "" {
		want, _ = strconv.Atoi(v)
	}
	if want != h.contentLength {
		t.Fatalf("Content-Length: textproto %d, scanner %d", want, h.contentLength)
	}
}

func FuzzScanFrameHeader(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		for _, b := range readCases(f, dir) {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok, err := scanFrameHeader(b)
		if err != nil || !ok {
			return
		}
		if h.headerLen > len(b) || h.contentLength < 0 {
			t.Fatalf("impossible frame %+v for %d bytes", h, len(b))
		}
		if len(b) < h.headerLen+h.contentLength {
			b = append(b, make([]byte, h.headerLen+h.contentLength-len(b))...)
		}
		checkLikeTextproto(t, b, h)
	})
}

func FuzzParseChannelData(f *testing.F) {
	b, err := os.ReadFile(filepath.Join(transcriptDir, "s7_resume.recv.raw"))
	if err != nil {
		f.Fatal(err)
	}
	h, _, _ := scanFrameHeader(b)
	f.Add(b[:h.headerLen], "wfe_payload")
	f.Add([]byte("Content-Type: command/reply\nUnique-ID: x\nvariable_a: %zz%4\n\n"), "a")
	f.Fuzz(func(t *testing.T, block []byte, name string) {
		d, err := ParseChannelData(block)
		if err != nil {
			return
		}
		if d.UUID() == "" {
			t.Fatal("parsed channel data without a UUID")
		}
		_, _ = d.Var(name)
		d.Vars(func(string, string) bool { return true })
	})
}

func TestURLDecode(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "",
		"plain":                  "plain",
		"%7B%22phone%22%3A%7D":   `{"phone":}`,
		"100%":                   "100%",
		"%zz":                    "%zz",
		"%2":                     "%2",
		"a%20b%0Ac":              "a b\nc",
		"%E2%82%AC":              "€",
		"Wed,%2025%20Nov%202026": "Wed, 25 Nov 2026",
	} {
		if got := urlDecode(in); got != want {
			t.Errorf("urlDecode(%q) = %q, want %q", in, got, want)
		}
	}
}

// wireConn hands eslgo every frame but the notices, whatever the read
// sizes, reports the notices in place, and counts the events.
func TestWireConnStream(t *testing.T) {
	for _, scenario := range []string{"s1_full_session", "s4b_caller_hangup_linger_early_notice", "s3_caller_hangup_nolinger"} {
		stream, err := os.ReadFile(filepath.Join(transcriptDir, scenario+".recv.raw"))
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		events, notices, replies := 0, 0, 0
		for b := stream; len(b) > 0; {
			h, _, _ := scanFrameHeader(b)
			n := h.headerLen + h.contentLength
			switch h.contentType {
			case contentDisconnect:
				notices++
			case contentEventPlain:
				events++
				slim, _, err := slimEvent(nil, b[h.headerLen:n])
				if err != nil {
					t.Fatal(err)
				}
				want.Write(slim)
			case contentReply:
				if replies == 0 {
					want.Write(connectOK)
				} else {
					want.Write(b[:n])
				}
				replies++
			default:
				want.Write(b[:n])
			}
			b = b[n:]
		}
		for _, chunk := range []int{1, 7, 100, 4096, 1 << 20} {
			obs := &recordingObserver{}
			c := newWireConn(&chunkConn{data: stream, chunk: chunk}, obs)
			got, err := io.ReadAll(&limitedReader{r: c, n: chunk})
			if !errors.Is(err, io.EOF) && err != nil {
				t.Fatalf("%s/%d: %v", scenario, chunk, err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("%s/%d: eslgo got %d bytes, want %d", scenario, chunk, len(got), want.Len())
			}
			if int(c.eventsHanded.Load()) != events || len(obs.notices) != notices || obs.end == nil || obs.block == nil {
				t.Fatalf("%s/%d: events %d/%d notices %d/%d closed %v", scenario, chunk, c.eventsHanded.Load(), events, len(obs.notices), notices, obs.end)
			}
		}
	}
}

type recordingObserver struct {
	mu      sync.Mutex
	block   []byte
	notices []string
	end     error
}

func (o *recordingObserver) connectBlock(b []byte) { o.block = b }
func (o *recordingObserver) notice(d string)       { o.notices = append(o.notices, d) }
func (o *recordingObserver) closed(err error)      { o.end = err }

// chunkConn is a net.Conn that returns data at most chunk bytes at a time.
type chunkConn struct {
	net.Conn
	data  []byte
	chunk int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.chunk)], c.data)
	c.data = c.data[n:]
	return n, nil
}

func (c *chunkConn) SetReadDeadline(time.Time) error { return nil }

// limitedReader reads from r at most n bytes per call, as a small bufio
// buffer would.
type limitedReader struct {
	r io.Reader
	n int
}

func (l *limitedReader) Read(p []byte) (int, error) { return l.r.Read(p[:min(len(p), l.n)]) }

// A slimmed event reads, through eslgo's own parser, with the same values
// for every header eslapp uses, and keeps the event's body.
func TestSlimEventKeepsWhatEslappReads(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(transcriptDir, "*.recv.raw"))
	seen := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for len(b) > 0 {
			h, _, _ := scanFrameHeader(b)
			n := h.headerLen + h.contentLength
			if h.contentType == contentEventPlain {
				seen++
				full, err := readPlainEventForTest(b[h.headerLen:n])
				if err != nil {
					t.Fatal(err)
				}
				slim, _, err := slimEvent(nil, b[h.headerLen:n])
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				sh, ok, err := scanFrameHeader(slim)
				if !ok || err != nil || sh.headerLen+sh.contentLength != len(slim) {
					t.Fatalf("slim frame: ok=%v err=%v", ok, err)
				}
				small, err := readPlainEventForTest(slim[sh.headerLen:])
				if err != nil {
					t.Fatalf("eslgo cannot read a slim event: %v\n%q", err, slim)
				}
				for name := range eventKeep {
					if full.GetHeader(name) != small.GetHeader(name) {
						t.Errorf("%s: %s %q became %q", f, name, full.GetHeader(name), small.GetHeader(name))
					}
				}
				if !bytes.Equal(full.Body, small.Body) {
					t.Errorf("%s: event body changed", f)
				}
			}
			b = b[n:]
		}
	}
	// The CUSTOM event with a body that FreeSWITCH fired in s1.
	obs, err := os.ReadFile(filepath.Join(transcriptDir, "s1_full_session.inbound_observer.recv.raw"))
	if err != nil {
		t.Fatal(err)
	}
	for b := obs; len(b) > 0; {
		h, _, _ := scanFrameHeader(b)
		n := h.headerLen + h.contentLength
		if h.contentType == contentEventPlain {
			slim, _, err := slimEvent(nil, b[h.headerLen:n])
			if err != nil {
				t.Fatal(err)
			}
			sh, _, _ := scanFrameHeader(slim)
			ev, err := readPlainEventForTest(slim[sh.headerLen:])
			if err != nil || ev.GetHeader("Event-Subclass") != "eslapp::workflow_result" || !bytes.Contains(ev.Body, []byte(`"branch":"OnSuccess"`)) {
				t.Fatalf("CUSTOM event: %v %q %q", err, ev.GetHeader("Event-Subclass"), ev.Body)
			}
			seen++
		}
		b = b[n:]
	}
	if seen < 50 {
		t.Fatalf("only %d events in the transcripts", seen)
	}
}

// readPlainEventForTest parses an event body the way eslgo's readPlainEvent
// does (textproto headers, then Content-Length bytes of body).
func readPlainEventForTest(body []byte) (*eslgo.Event, error) {
	r := bufio.NewReader(bytes.NewReader(body))
	hdr, err := textproto.NewReader(r).ReadMIMEHeader()
	if err != nil {
		return nil, err
	}
	ev := &eslgo.Event{Headers: hdr}
	if v := hdr.Get("Content-Length"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, err
		}
		ev.Body = make([]byte, n)
		if _, err := io.ReadFull(r, ev.Body); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

func BenchmarkChannelDataVar(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join(transcriptDir, "s7_resume.recv.raw"))
	if err != nil {
		b.Fatal(err)
	}
	h, _, _ := scanFrameHeader(raw)
	d, err := ParseChannelData(raw[:h.headerLen])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		d.Var("wfe_config_id")
		d.Var("wfe_grace_ms") // missing: the slow path
	}
}
