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
	"strings"
	"testing"
	"time"
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
		if _, _, err := scanFrameHeader(b); !errors.Is(err, ErrMalformedFrame) {
			t.Errorf("%s: err = %v, want ErrMalformedFrame", name, err)
		}
	}
}

// Every frame FreeSWITCH sent in the transcripts scans, with the length and
// type net/textproto reads from it.
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

// checkLikeTextproto asserts that net/textproto, the reference reader of
// "Name: value" blocks, sees the same header block, type and length.
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
		if got := URLDecode(in); got != want {
			t.Errorf("URLDecode(%q) = %q, want %q", in, got, want)
		}
	}
}

// The frame reader returns the frames a whole-stream scan finds, whatever
// the read sizes.
func TestFrameReaderStream(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(transcriptDir, "*.recv.raw"))
	if len(files) < 9 {
		t.Fatalf("%d transcripts", len(files))
	}
	for _, file := range files {
		stream, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var want []Frame
		for b := stream; len(b) > 0; {
			h, ok, err := scanFrameHeader(b)
			if !ok || err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			n := h.headerLen + h.contentLength
			want = append(want, Frame{Header: trimBlank(b[:h.headerLen]), Body: b[h.headerLen:n], ContentType: h.contentType, ContentLength: h.contentLength, Disposition: h.disposition})
			b = b[n:]
		}
		for _, chunk := range []int{1, 7, 100, 4096, 1 << 20} {
			fr := NewFrameReader(&chunkConn{data: stream, chunk: chunk})
			for i, w := range want {
				f, err := fr.Next()
				if err != nil {
					t.Fatalf("%s/%d: frame %d: %v", filepath.Base(file), chunk, i, err)
				}
				if f.ContentType != w.ContentType || f.Disposition != w.Disposition || !bytes.Equal(f.Header, w.Header) || !bytes.Equal(f.Body, w.Body) {
					t.Fatalf("%s/%d: frame %d differs: %q/%q", filepath.Base(file), chunk, i, f.ContentType, w.ContentType)
				}
			}
			if _, err := fr.Next(); err != io.EOF {
				t.Fatalf("%s/%d: after the last frame: %v, want io.EOF", filepath.Base(file), chunk, err)
			}
		}
	}
}

// A frame cut short is io.ErrUnexpectedEOF; one over the limits is refused
// before its bytes are read.
func TestFrameReaderErrors(t *testing.T) {
	for name, c := range map[string]struct {
		in         string
		maxH, maxB int
		want       error
	}{
		"cut header":   {"Content-Type: command/reply\nReply", 1 << 10, 1 << 10, io.ErrUnexpectedEOF},
		"cut body":     {"Content-Type: api/response\nContent-Length: 10\n\n+OK", 1 << 10, 1 << 10, io.ErrUnexpectedEOF},
		"header limit": {"Content-Type: command/reply\nX: " + strings.Repeat("a", 2000) + "\n\n", 1 << 10, 1 << 10, ErrFrameTooLarge},
		"body limit":   {"Content-Type: api/response\nContent-Length: 4096\n\n", 1 << 10, 1 << 10, ErrFrameTooLarge},
		"no name":      {": x\n\n", 1 << 10, 1 << 10, ErrMalformedFrame},
	} {
		fr := NewFrameReader(strings.NewReader(c.in))
		fr.SetLimits(c.maxH, c.maxB)
		if _, err := fr.Next(); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// A header block dripped a few bytes per read is scanned once: each call
// looks only at the bytes that arrived since the last (a rescan from the
// start, or from the start of a long line, made a 1 MB block dripped in
// 512-byte reads cost a second of CPU).
func TestHeaderScannerLooksAtEachByteOnce(t *testing.T) {
	block := []byte("Content-Type: command/reply\nX-Long: " + strings.Repeat("a", 256<<10) + "\n" +
		strings.Repeat("X-Short: b\n", 10000) + "\n")
	var sc headerScanner
	examined := 0
	for n := 512; ; n += 512 {
		n = min(n, len(block))
		examined += n - (sc.pos + sc.seen) // what IndexByte may look at in this call
		done, err := sc.scan(block[:n], 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			break
		}
	}
	if sc.h.headerLen != len(block) || examined > len(block) {
		t.Fatalf("header of %d bytes: %d bytes examined", sc.h.headerLen, examined)
	}
	// And the reader gets the same frame through 512-byte reads.
	fr := NewFrameReader(&chunkConn{data: block, chunk: 512})
	fr.SetLimits(1<<20, 0)
	if f, err := fr.Next(); err != nil || f.ContentType != contentReply {
		t.Fatalf("%v %q", err, f.ContentType)
	}
}

// BenchmarkDrippedHeader reads a 1 MB header block arriving 512 bytes at a
// time (what a hostile peer can send before connect completes).
func BenchmarkDrippedHeader(b *testing.B) {
	block := []byte("Content-Type: command/reply\n" + strings.Repeat("X-H: "+strings.Repeat("a", 100)+"\n", 10000) + "\n")
	b.SetBytes(int64(len(block)))
	for b.Loop() {
		fr := NewFrameReader(&chunkConn{data: block, chunk: 512})
		fr.SetLimits(2<<20, 0)
		if _, err := fr.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

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

// parseEvent reads, for every event of the transcripts, the value a full
// textproto parse with URL decoding gives for each header Event has.
func TestParseEventAgreesWithTextproto(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(transcriptDir, "*.raw"))
	seen := 0
	for _, f := range files {
		if !strings.HasSuffix(f, "recv.raw") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for len(b) > 0 {
			h, _, _ := scanFrameHeader(b)
			n := h.headerLen + h.contentLength
			if h.contentType == contentEventPlain {
				seen++
				full, err := textprotoHeaders(b[h.headerLen:n])
				if err != nil {
					t.Fatal(err)
				}
				ev, err := parseEvent(b[h.headerLen:n], time.Time{})
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				for name, got := range map[string]string{
					"Event-Name": ev.Name, "Unique-ID": ev.UniqueID, "Application-UUID": ev.AppUUID,
					"Application": ev.App, "Application-Response": ev.AppResponse, "Playback-Status": ev.PlaybackStatus,
					"Hangup-Cause": ev.HangupCause, "DTMF-Digit": ev.DTMFDigit, "Event-Subclass": ev.Subclass,
					"Event-Sequence": strconv.FormatUint(ev.Sequence, 10),
				} {
					want := URLDecode(full.Get(name))
					if name == "Event-Sequence" && want == "" {
						want = "0"
					}
					if got != want {
						t.Errorf("%s: %s = %q, want %q", filepath.Base(f), name, got, want)
					}
				}
			}
			b = b[n:]
		}
	}
	if seen < 50 {
		t.Fatalf("only %d events in the transcripts", seen)
	}
}

// textprotoHeaders parses an event body's headers as net/textproto does.
func textprotoHeaders(body []byte) (textproto.MIMEHeader, error) {
	return textproto.NewReader(bufio.NewReader(bytes.NewReader(body))).ReadMIMEHeader()
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

// A variable filter drops the variables a call does not read and keeps
// the rest of the channel data; it looks the call's inputs up first.
func TestChannelDataFilter(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(transcriptDir, "s7_resume.recv.raw"))
	if err != nil {
		t.Fatal(err)
	}
	h, _, _ := scanFrameHeader(raw)
	block := raw[:h.headerLen]
	full, err := ParseChannelData(block)
	if err != nil {
		t.Fatal(err)
	}
	var seenPayload string
	d, err := parseChannelData(block, func(lookup func(string) (string, bool)) func(string) bool {
		seenPayload, _ = lookup("wfe_payload")
		return func(name string) bool { return strings.HasPrefix(name, "wfe_") }
	}, false, contentReply)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := full.Var("wfe_payload")
	if seenPayload != payload || payload == "" {
		t.Errorf("the filter looked up wfe_payload = %q, want %q", seenPayload, payload)
	}
	if v, ok := d.Var("sip_from_user"); ok {
		t.Errorf("sip_from_user kept: %q", v)
	}
	if v, _ := d.Var("wfe_payload"); v != payload {
		t.Errorf("wfe_payload = %q, want %q", v, payload)
	}
	if d.UUID() == "" || d.Header("Caller-Caller-ID-Number") == "" || d.Header("Control") != "full" {
		t.Errorf("headers lost: %q %q %q", d.UUID(), d.Header("Caller-Caller-ID-Number"), d.Header("Control"))
	}
	if len(d.raw) >= len(full.raw)/2 {
		t.Errorf("kept %d of %d bytes", len(d.raw), len(full.raw))
	}
}
