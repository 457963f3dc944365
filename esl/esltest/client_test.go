package esltest

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// testApp is a tiny scripted outbound-socket application: a listener the
// double dials, and helpers to send commands and read frames.
type testApp struct {
	t    tb
	ln   net.Listener
	conn net.Conn
	r    *bufio.Reader
}

// tb is the part of testing.TB the app helpers use.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialApp makes fs dial a fresh listener and returns both ends.
func dialApp(t testing.TB, fs *FreeSWITCH, opts CallOptions) (*testApp, *Call) {
	t.Helper()
	ln := listen(t)
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			accepted <- conn
		}
		close(accepted)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, err := fs.Dial(ctx, ln.Addr().String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	conn := <-accepted
	if conn == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() {
		// End the call before the test does, so nothing logs after it.
		conn.Close()
		select {
		case <-call.Done():
		case <-time.After(10 * time.Second):
			t.Errorf("call %s did not end", call.UUID())
		}
	})
	return &testApp{t: t, ln: ln, conn: conn, r: bufio.NewReaderSize(conn, 1<<16)}, call
}

func (a *testApp) send(s string) {
	a.t.Helper()
	if _, err := a.conn.Write([]byte(s)); err != nil {
		a.t.Fatalf("send %q: %v", s, err)
	}
}

// read reads the next frame, failing after a generous deadline.
func (a *testApp) read() *Frame {
	a.t.Helper()
	a.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	f, err := ReadFrame(a.r)
	if err != nil {
		a.t.Fatalf("read frame: %v", err)
	}
	return f
}

// cmd sends a command and returns the reply frame (command/reply or
// api/response), skipping and returning any events that came first.
func (a *testApp) cmd(s string) (*Frame, []*Event) {
	a.t.Helper()
	a.send(s)
	var evs []*Event
	for {
		f := a.read()
		switch f.Kind() {
		case "reply", "api", "connect":
			return f, evs
		case "event":
			e, err := f.Event()
			if err != nil {
				a.t.Fatalf("%v", err)
			}
			evs = append(evs, e)
		default:
			a.t.Fatalf("unexpected %s frame while waiting for the reply to %q", f.Kind(), s)
		}
	}
}

func (a *testApp) reply(s string) string {
	a.t.Helper()
	f, _ := a.cmd(s)
	if f.Kind() == "api" {
		return string(f.Body)
	}
	return f.Get("Reply-Text")
}

// until reads frames until one satisfies match; it returns every frame read.
func (a *testApp) until(match func(*Frame, *Event) bool) []*Frame {
	a.t.Helper()
	var out []*Frame
	for {
		f := a.read()
		out = append(out, f)
		var e *Event
		if f.Kind() == "event" {
			var err error
			if e, err = f.Event(); err != nil {
				a.t.Fatalf("%v", err)
			}
		}
		if match(f, e) {
			return out
		}
	}
}

func isEvent(name string, kv ...string) func(*Frame, *Event) bool {
	return func(f *Frame, e *Event) bool {
		if e == nil || e.Get("Event-Name") != name {
			return false
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if e.Get(kv[i]) != kv[i+1] {
				return false
			}
		}
		return true
	}
}

func isKind(kind string) func(*Frame, *Event) bool {
	return func(f *Frame, _ *Event) bool { return f.Kind() == kind }
}

// summary is a one-line description of a frame for sequence comparisons.
func summary(f *Frame) string {
	switch f.Kind() {
	case "reply":
		return "reply " + f.Get("Reply-Text")
	case "api":
		return "api " + strings.TrimSuffix(string(f.Body), "\n")
	case "event":
		e, err := f.Event()
		if err != nil {
			return "bad event"
		}
		s := e.Get("Event-Name")
		if app := e.Get("Application"); app != "" {
			s += " " + app
		}
		if r := e.Get("Application-Response"); r != "" {
			s += "=" + r
		}
		if st := e.Get("Playback-Status"); st != "" {
			s += " " + st
		}
		if e.Get("Event-Name") == "CHANNEL_STATE" {
			s += " " + e.Get("Channel-State")
		}
		return s
	}
	return f.Kind()
}

func summaries(fs []*Frame) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = summary(f)
	}
	return out
}

func sendmsg(app, arg string, extra ...string) string {
	s := "sendmsg\ncall-command: execute\nexecute-app-name: " + app + "\n"
	if arg != "" {
		s += "execute-app-arg: " + arg + "\n"
	}
	for _, h := range extra {
		s += h + "\n"
	}
	return s + "\n"
}

// testMedia gives the transcript files short lengths.
func testMedia(path string) (time.Duration, bool) {
	switch {
	case strings.HasSuffix(path, "does_not_exist.wav"):
		return 0, false
	case strings.HasSuffix(path, "long.wav"):
		return time.Hour, true
	case strings.HasSuffix(path, "hold.wav"):
		return 60 * time.Millisecond, true
	}
	return defaultMediaShort(path)
}

func defaultMediaShort(path string) (time.Duration, bool) {
	d, ok := defaultMedia(path)
	if d == time.Second {
		d = 20 * time.Millisecond
	}
	return d, ok
}

func short(string) time.Duration { return 20 * time.Millisecond }

func waitDone(t testing.TB, c *Call) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("call did not end")
	}
}
