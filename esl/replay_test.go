package esl

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/eslapp/eslapp/internal/testlog"
)

// transcriptDir holds raw bytes captured from FreeSWITCH 1.10.12 (see its
// README). They are shared with the esltest double's conformance tests.
const transcriptDir = "esltest/testdata/transcripts"

// segment is one step of a recorded session: bytes FreeSWITCH sent, or a
// command the recorded listener sent.
type segment struct {
	fromFS bool
	data   []byte
}

// splitFrames cuts a stream of ESL frames (header block, blank line, body of
// Content-Length bytes) into frames.
func splitFrames(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var frames [][]byte
	for len(b) > 0 {
		h, ok, err := scanFrameHeader(b)
		if err != nil || !ok {
			t.Fatalf("transcript frame at %q: ok=%v err=%v", b[:min(len(b), 40)], ok, err)
		}
		n := h.headerLen + h.contentLength
		frames = append(frames, b[:n])
		b = b[n:]
	}
	return frames
}

// splitCommands cuts what a listener sent into commands: a command line and
// headers, a blank line, and a body when there is a Content-Length.
func splitCommands(t testing.TB, b []byte) [][]byte {
	t.Helper()
	r := newCommandReader(bytes.NewReader(b))
	var cmds [][]byte
	for {
		cmd, err := r.next()
		if err != nil {
			return cmds
		}
		cmds = append(cmds, cmd)
	}
}

// loadTranscript returns a scenario's segments in the order they happened,
// rebuilt from NAME.both.raw with the frame boundaries of NAME.recv.raw and
// NAME.sent.raw.
func loadTranscript(t testing.TB, name string) []segment {
	t.Helper()
	read := func(suffix string) []byte {
		b, err := os.ReadFile(filepath.Join(transcriptDir, name+"."+suffix+".raw"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	both, recv, sent := read("both"), read("recv"), read("sent")
	fsFrames, cmds := splitFrames(t, recv), splitCommands(t, sent)
	var segs []segment
	for len(both) > 0 {
		switch {
		case len(cmds) > 0 && bytes.HasPrefix(both, cmds[0]):
			segs = append(segs, segment{data: cmds[0]})
			both, cmds = both[len(cmds[0]):], cmds[1:]
		case len(fsFrames) > 0 && bytes.HasPrefix(both, fsFrames[0]):
			segs = append(segs, segment{fromFS: true, data: fsFrames[0]})
			both, fsFrames = both[len(fsFrames[0]):], fsFrames[1:]
		default:
			t.Fatalf("%s: both.raw does not continue with the next frame of either side", name)
		}
	}
	return segs
}

// replayFS plays FreeSWITCH's side of a transcript on conn: it writes what
// FreeSWITCH wrote and, where the recorded listener sent a command, reads
// one command from eslapp instead. It returns the commands eslapp sent.
// After the last segment it closes the connection, as FreeSWITCH did.
func replayFS(conn net.Conn, segs []segment) <-chan [][]byte {
	got := make(chan [][]byte, 1)
	go func() {
		defer conn.Close()
		var cmds [][]byte
		defer func() { got <- cmds }()
		r := newCommandReader(conn)
		for _, s := range segs {
			if s.fromFS {
				if _, err := conn.Write(s.data); err != nil {
					return
				}
				continue
			}
			cmd, err := r.next()
			if err != nil {
				return
			}
			cmds = append(cmds, cmd)
		}
	}()
	return got
}

// commandReader reads the commands eslapp sends (the session ends them with
// "\r\n\r\n"), the way FreeSWITCH's read_packet frames them.
type commandReader struct {
	r   io.Reader
	buf []byte
}

func newCommandReader(r io.Reader) *commandReader { return &commandReader{r: r} }

func (c *commandReader) next() ([]byte, error) {
	for {
		// Blank lines between commands carry nothing.
		c.buf = bytes.TrimLeft(c.buf, "\r\n")
		if i := bytes.Index(c.buf, []byte("\n\n")); i >= 0 || bytes.Contains(c.buf, []byte("\r\n\r\n")) {
			end := i + 2
			if j := bytes.Index(c.buf, []byte("\r\n\r\n")); j >= 0 && (i < 0 || j < i) {
				end = j + 4
			}
			head := c.buf[:end]
			n := 0
			for _, line := range bytes.Split(head, []byte("\n")) {
				if v, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r"), []byte("Content-Length: ")); ok {
					n, _ = strconv.Atoi(string(v))
				}
			}
			if len(c.buf) >= end+n {
				cmd := bytes.Clone(c.buf[:end+n])
				c.buf = c.buf[end+n:]
				return cmd, nil
			}
		}
		chunk := make([]byte, 4096)
		k, err := c.r.Read(chunk)
		c.buf = append(c.buf, chunk[:k]...)
		if k == 0 && err != nil {
			return nil, err
		}
	}
}

// pipeSession connects a Session to a scripted FreeSWITCH over a loopback
// TCP connection and returns both ends.
func pipeSession(t *testing.T, appIDs []string, fs func(net.Conn)) *Session {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		fs(c)
	}()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	cfg := sessionConfig{commandTimeout: 2 * time.Second, logger: testLogger(t)}
	if appIDs != nil {
		cfg.appIDs = func() string {
			id := appIDs[0]
			appIDs = appIDs[1:]
			return id
		}
	}
	s, err := newSession(context.Background(), nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.events() // keep the events, for the tests to read
	return s
}

// testLogger collects the session's log and prints it when the test fails.
func testLogger(t testing.TB) *slog.Logger { return testlog.Logger(t) }

// transcriptAppIDs lists the Application-UUID of every CHANNEL_EXECUTE in a
// scenario, in order: the IDs a replayed Session must give its apps.
func transcriptAppIDs(t testing.TB, segs []segment) []string {
	t.Helper()
	var ids []string
	for _, s := range segs {
		if !s.fromFS || !bytes.Contains(s.data, []byte("\nEvent-Name: CHANNEL_EXECUTE\n")) {
			continue
		}
		for _, line := range bytes.Split(s.data, []byte("\n")) {
			if v, ok := bytes.CutPrefix(line, []byte("Application-UUID: ")); ok {
				ids = append(ids, string(v))
			}
		}
	}
	return append(ids, "no-more-ids-in-transcript")
}
