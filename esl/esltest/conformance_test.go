package esltest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eslapp/eslapp/esl"
)

// The conformance tests replay the commands a real listener sent to
// FreeSWITCH 1.10.12 (NAME.sent.raw) to the double, in the order of
// NAME.both.raw, and compare every frame the double sends with the frame
// FreeSWITCH sent (NAME.recv.raw): kind, header names and order, reply
// texts, api bodies, event names, the Application-* and state headers, the
// URL-encoding of values that are equal, and the framing rules.

const transcriptDir = "testdata/transcripts"

type segment struct {
	send  bool
	data  []byte
	frame *Frame
}

func readTranscript(t *testing.T, name, suffix string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(transcriptDir, name+"."+suffix+".raw"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// splitRecv cuts recv.raw into frames, keeping each frame's bytes.
func splitRecv(t *testing.T, b []byte) ([]*Frame, [][]byte) {
	t.Helper()
	r := bytes.NewReader(b)
	br := bufio.NewReader(r)
	var frames []*Frame
	var raws [][]byte
	off := 0
	for {
		f, err := ReadFrame(br)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("recv frame %d: %v", len(frames), err)
		}
		end := len(b) - r.Len() - br.Buffered()
		frames = append(frames, f)
		raws = append(raws, b[off:end])
		off = end
	}
	if off != len(b) {
		t.Fatalf("recv: %d bytes left over", len(b)-off)
	}
	return frames, raws
}

// splitSent cuts sent.raw into commands with ReadCommand.
func splitSent(t *testing.T, b []byte) [][]byte {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(b))
	var out [][]byte
	n := 0
	for {
		cmd, err := ReadCommand(br)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b[n:n+len(cmd.Raw)])
		n += len(out[len(out)-1])
	}
	return out
}

// loadSegments interleaves commands and frames in the order of both.raw.
func loadSegments(t *testing.T, name string) []segment {
	t.Helper()
	both := readTranscript(t, name, "both")
	frames, raws := splitRecv(t, readTranscript(t, name, "recv"))
	cmds := splitSent(t, readTranscript(t, name, "sent"))
	var segs []segment
	for len(both) > 0 {
		switch {
		case len(cmds) > 0 && bytes.HasPrefix(both, cmds[0]):
			segs = append(segs, segment{send: true, data: cmds[0]})
			both, cmds = both[len(cmds[0]):], cmds[1:]
		case len(raws) > 0 && bytes.HasPrefix(both, raws[0]):
			segs = append(segs, segment{data: raws[0], frame: frames[0]})
			both, raws, frames = both[len(raws[0]):], raws[1:], frames[1:]
		default:
			t.Fatalf("%s: both.raw does not continue with a frame or a command", name)
		}
	}
	return segs
}

type scenario struct {
	name         string
	opts         CallOptions
	callerHangup bool // the caller sends BYE (s3, s4, s4b)
	allVarNames  bool // the connect frame's variables match s1's template exactly
}

var scenarios = []scenario{
	{name: "s1_full_session", allVarNames: true},
	{name: "s2_break_then_transfer", opts: CallOptions{LingerNotice: LingerAfterStateHangup}},
	{name: "s3_caller_hangup_nolinger", callerHangup: true},
	{name: "s4_caller_hangup_linger", callerHangup: true},
	{name: "s4b_caller_hangup_linger_early_notice", callerHangup: true, opts: CallOptions{LingerNotice: LingerBeforeHangup}},
	{name: "s5_errors"},
	{name: "s6_say"},
	{name: "s7_resume", allVarNames: true, opts: CallOptions{DestinationNumber: "7002",
		Vars: map[string]string{"wfe_config_id": "demo-crm", "wfe_payload": `{"phone":"123"}`}}},
	{name: "s8_no_full", opts: CallOptions{DestinationNumber: "7003", NotFull: true}},
	{name: "s9_uuid_transfer"},
}

// notModelled are frames of the extension 9999 that s2 and s9 transfer to;
// the double models that extension as its final hangup only.
func notModelled(e *Event) bool {
	if e == nil {
		return false
	}
	switch e.Get("Application") {
	case "answer":
		return true
	case "set":
		return e.Get("Application-Data") == "open=true"
	case "playback":
		return strings.HasSuffix(e.Get("Application-Data"), "tone3s.wav")
	}
	return false
}

func TestConformance(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			replay(t, sc)
		})
	}
}

func replay(t *testing.T, sc scenario) {
	segs := loadSegments(t, sc.name)
	connect, err := segs[1].frame.Event()
	if err != nil {
		t.Fatal(err)
	}
	opts := sc.opts
	opts.UUID = connect.Get("Unique-ID")
	opts.Media = testMedia
	opts.SayDuration, opts.SpeakDuration = short, short
	// FreeSWITCH takes about 20 ms from queueing a message to running it.
	// In s1 the listener sent the playback right after set's +OK, inside
	// that gap; a longer gap keeps the replay's order on a slow machine.
	opts.AppStartDelay = 20 * time.Millisecond
	if sc.name == "s1_full_session" {
		opts.AppStartDelay = 500 * time.Millisecond
	}
	opts.AfterTransfer = 10 * time.Millisecond
	fs := New(Options{Logf: t.Logf, CoreUUID: connect.Get("Core-UUID")})
	app, call := dialApp(t, fs, opts)

	hungUp := false
	for i, seg := range segs {
		if seg.send {
			app.send(string(seg.data))
			continue
		}
		exp := seg.frame
		var expEv *Event
		if exp.Kind() == "event" {
			expEv, _ = exp.Event()
		}
		if notModelled(expEv) {
			continue
		}
		if sc.callerHangup && !hungUp && (exp.Kind() == "linger" || (expEv != nil && expEv.Get("Event-Name") == "CHANNEL_HANGUP")) {
			call.Hangup("NORMAL_CLEARING")
			hungUp = true
		}
		got := app.read()
		if !compareFrame(t, i, exp, got, sc) {
			t.Fatalf("frame %d: stopping at the first difference", i)
		}
	}
	app.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if f, err := ReadFrame(app.r); err == nil {
		t.Errorf("extra frame after the transcript's last: %s", summary(f))
	}
	waitDone(t, call)
	if ex := call.APIExecutions(); len(ex) != 0 {
		t.Errorf("API executions: %q", ex)
	}
}

var socketPort = regexp.MustCompile(`^127\.0\.0\.1:\d+ async`)

var sendeventReply = regexp.MustCompile(`^\+OK [0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// compared are the event headers whose values must match the transcript.
var compared = []string{
	"Event-Name", "Application", "Application-Data", "Application-Response",
	"Playback-Status", "Playback-File-Path", "Channel-State", "Channel-Call-State",
	"Channel-State-Number", "Answer-State", "Hangup-Cause", "Unique-ID", "Channel-Name",
	"Caller-Destination-Number", "Caller-Context", "Caller-RDNIS", "Caller-Caller-ID-Name",
	"FreeSWITCH-Hostname", "FreeSWITCH-IPv4", "FreeSWITCH-IPv6", "Core-UUID",
	"Event-Calling-File", "Event-Calling-Function", "Event-Calling-Line-Number",
	"Event-Subclass", "Socket-Mode", "Control", "Reply-Text", "Content-Type",
}

func compareFrame(t *testing.T, i int, exp, got *Frame, sc scenario) bool {
	t.Helper()
	ok := true
	fail := func(format string, args ...any) {
		t.Errorf("frame %d (%s): "+format, append([]any{i, summary(exp)}, args...)...)
		ok = false
	}
	if exp.Kind() != got.Kind() {
		fail("got a %s frame: %s", got.Kind(), summary(got))
		return false
	}
	switch exp.Kind() {
	case "reply":
		if !slices.Equal(names(exp.Headers), names(got.Headers)) {
			fail("reply headers %v, want %v", names(got.Headers), names(exp.Headers))
		}
		want, have := exp.Get("Reply-Text"), got.Get("Reply-Text")
		if sendeventReply.MatchString(want) {
			if !sendeventReply.MatchString(have) {
				fail("Reply-Text %q, want +OK and a UUID", have)
			}
		} else if want != have {
			fail("Reply-Text %q, want %q", have, want)
		}
	case "api":
		if !slices.Equal(names(exp.Headers), names(got.Headers)) || exp.Get("Content-Length") != got.Get("Content-Length") {
			fail("api headers %v, want %v", got.Headers, exp.Headers)
		}
		if !bytes.Equal(exp.Body, got.Body) {
			fail("api body %q, want %q", got.Body, exp.Body)
		}
	case "linger", "disconnect":
		if !slices.Equal(exp.Headers, got.Headers) || !bytes.Equal(exp.Body, got.Body) {
			fail("notice %v %q, want %v %q", got.Headers, got.Body, exp.Headers, exp.Body)
		}
	case "connect", "event":
		if exp.Kind() == "event" {
			if got.Headers[0].Name != "Content-Length" || got.Headers[1] != (Header{"Content-Type", "text/event-plain"}) || len(got.Headers) != 2 {
				fail("event framing %v", got.Headers)
			}
		} else if got.Body != nil || got.Has("Content-Length") {
			fail("connect reply has a Content-Length")
		}
		ee, _ := exp.Event()
		ge, err := got.Event()
		if err != nil {
			fail("%v", err)
			return false
		}
		en, gn := nonVarNames(ee), nonVarNames(ge)
		if exp.Kind() == "connect" && sc.allVarNames {
			en, gn = ee.Names(), ge.Names()
		}
		if !slices.Equal(en, gn) {
			fail("header names differ:\n got %v\nwant %v", gn, en)
		}
		for _, h := range compared {
			// The socket app's argument names the listener: the transcripts'
			// is 127.0.0.1:8084, the test's has a random port.
			got := socketPort.ReplaceAllString(ge.Get(h), "127.0.0.1:8084 async")
			if ee.Get(h) != got {
				fail("%s = %q, want %q", h, got, ee.Get(h))
			}
		}
		if u := ee.Get("Application-UUID"); strings.HasPrefix(u, "5e1f0c5a-") && u != ge.Get("Application-UUID") {
			fail("Application-UUID %q, want %q", ge.Get("Application-UUID"), u)
		}
		hasVars := slices.ContainsFunc(ge.Names(), isVarName)
		if hasVars != slices.ContainsFunc(ee.Names(), isVarName) {
			fail("variables present: %v", hasVars)
		}
		compareEncoding(t, i, exp, got, fail)
	}
	return ok
}

// compareEncoding checks that a header both frames have with the same
// decoded value is encoded the same way.
func compareEncoding(t *testing.T, i int, exp, got *Frame, fail func(string, ...any)) {
	er, gr := rawLines(exp), rawLines(got)
	for name, raw := range er {
		g, ok := gr[name]
		if ok && esl.URLDecode(g) == esl.URLDecode(raw) && g != raw {
			fail("%s encoded %q, want %q", name, g, raw)
		}
	}
}

func rawLines(f *Frame) map[string]string {
	m := map[string]string{}
	if f.Kind() == "connect" {
		for _, h := range f.Headers {
			m[h.Name] = h.Value
		}
		return m
	}
	for _, l := range strings.Split(string(f.Body), "\n") {
		if n, v, ok := strings.Cut(l, ": "); ok {
			m[n] = v
		}
	}
	return m
}

func names(h []Header) []string {
	out := make([]string, len(h))
	for i, x := range h {
		out[i] = x.Name
	}
	return out
}

func isVarName(n string) bool { return strings.HasPrefix(n, "variable_") }

func nonVarNames(e *Event) []string {
	var out []string
	for _, n := range e.Names() {
		if !isVarName(n) {
			out = append(out, n)
		}
	}
	return out
}

// TestTranscriptFraming checks the transcripts themselves against the rules
// the double follows, so the rules are written down where they come from.
func TestTranscriptFraming(t *testing.T) {
	for _, sc := range scenarios {
		frames, _ := splitRecv(t, readTranscript(t, sc.name, "recv"))
		for i, f := range frames {
			switch f.Kind() {
			case "event":
				if f.Headers[0].Name != "Content-Length" {
					t.Errorf("%s frame %d: event does not start with Content-Length", sc.name, i)
				}
				if _, err := f.Event(); err != nil {
					t.Errorf("%s frame %d: %v", sc.name, i, err)
				}
			case "reply":
				if f.Has("Content-Length") {
					t.Errorf("%s frame %d: command/reply with Content-Length", sc.name, i)
				}
			case "connect":
				if f.Get("Reply-Text") != "%2BOK%0A" {
					t.Errorf("%s: connect Reply-Text %q", sc.name, f.Get("Reply-Text"))
				}
			}
		}
	}
}
