package esltest

import (
	"bufio"
	"context"
	"errors"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// start dials a call and runs connect, myevents, the PLAYBACK subscription
// and linger, as eslapp does.
func start(t *testing.T, opts CallOptions) (*testApp, *Call) {
	t.Helper()
	if opts.Media == nil {
		opts.Media = testMedia
	}
	fs := New(Options{Logf: t.Logf})
	app, call := dialApp(t, fs, opts)
	if f, _ := app.cmd("connect\n\n"); f.Kind() != "connect" {
		t.Fatalf("connect reply is %s", f.Kind())
	}
	for cmd, want := range map[string]string{
		"myevents\n\n": "+OK Events Enabled",
		"event plain PLAYBACK_START PLAYBACK_STOP\n\n": "+OK event listener enabled plain",
		"linger\n\n": "+OK will linger",
	} {
		if got := app.reply(cmd); got != want {
			t.Fatalf("%q: %q, want %q", cmd, got, want)
		}
	}
	return app, call
}

func TestBreak(t *testing.T) {
	for _, all := range []bool{false, true} {
		t.Run(map[bool]string{false: "current", true: "all"}[all], func(t *testing.T) {
			app, call := start(t, CallOptions{})
			app.send(sendmsg("playback", "/s/long.wav", "event-lock: true", "Event-UUID: u1"))
			app.until(isEvent("PLAYBACK_START"))
			if r := app.reply(sendmsg("playback", "/s/second.wav", "event-lock: true", "Event-UUID: u2")); r != "+OK" {
				t.Fatal(r)
			}
			cmd := "api uuid_break " + call.UUID()
			if all {
				cmd += " all"
			}
			app.send(cmd + "\n\n")
			got := summaries(app.until(isEvent("CHANNEL_EXECUTE_COMPLETE", "Application-UUID", "u1")))
			want := []string{"api +OK", "PLAYBACK_STOP break", "CHANNEL_EXECUTE_COMPLETE playback=FILE PLAYED"}
			if !slices.Equal(got, want) {
				t.Fatalf("got %q, want %q", got, want)
			}
			// The queued prompt plays unless "all" flushed it.
			app.send(sendmsg("set", "after=1", "Event-UUID: u3"))
			next := app.until(isEvent("CHANNEL_EXECUTE"))
			e, _ := next[len(next)-1].Event()
			wantUUID := map[bool]string{false: "u2", true: "u3"}[all]
			if e.Get("Application-UUID") != wantUUID {
				t.Fatalf("next app %s, want %s", e.Get("Application-UUID"), wantUUID)
			}
		})
	}
}

// A break that lands between dequeuing an app and its CHANNEL_EXECUTE is
// lost: the prompt then plays to its end.
func TestBreakInGapIsLost(t *testing.T) {
	app, call := start(t, CallOptions{AppStartDelay: time.Second, Media: func(string) (time.Duration, bool) {
		return 50 * time.Millisecond, true
	}})
	if r := app.reply(sendmsg("playback", "/s/a.wav", "Event-UUID: g1")); r != "+OK" {
		t.Fatal(r)
	}
	app.send("api uuid_break " + call.UUID() + "\n\n")
	got := summaries(app.until(isEvent("CHANNEL_EXECUTE_COMPLETE")))
	want := []string{"api +OK", "CHANNEL_EXECUTE playback", "PLAYBACK_START", "PLAYBACK_STOP done", "CHANNEL_EXECUTE_COMPLETE playback=FILE PLAYED"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

var hangupTail = []string{
	"CHANNEL_HANGUP", "PLAYBACK_STOP done", "CHANNEL_EXECUTE_COMPLETE playback=PLAYBACK ERROR",
	"CHANNEL_UNPARK", "CHANNEL_EXECUTE_COMPLETE socket=PLAYBACK ERROR",
	"CHANNEL_STATE CS_HANGUP", "CHANNEL_STATE CS_REPORTING", "CHANNEL_HANGUP_COMPLETE",
}

func TestCallerHangup(t *testing.T) {
	for _, tc := range []struct {
		name   string
		linger bool
		pos    LingerPosition
		want   []string
	}{
		{"nolinger", false, 0, append(slices.Clone(hangupTail), "disconnect")},
		{"linger", true, LingerAfterHangupComplete, append(slices.Clone(hangupTail), "linger")},
		{"linger_first", true, LingerBeforeHangup, append([]string{"linger"}, hangupTail...)},
		{"linger_after_cs_hangup", true, LingerAfterStateHangup,
			slices.Concat(hangupTail[:6], []string{"linger"}, hangupTail[6:])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, call := start(t, CallOptions{LingerNotice: tc.pos})
			if !tc.linger {
				app.reply("nolinger\n\n")
			}
			app.reply(sendmsg("playback", "/s/long.wav", "event-lock: true"))
			app.until(isEvent("PLAYBACK_START"))
			call.Hangup("")
			var got []string
			for len(got) < len(tc.want) {
				got = append(got, summary(app.read()))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q\nwant %q", got, tc.want)
			}
			if tc.linger {
				if r := app.reply("api uuid_getvar " + call.UUID() + " uuid\n\n"); r != noSuchChannel {
					t.Errorf("api after hangup: %q", r)
				}
				if r := app.reply("exit\n\n"); r != "+OK bye" {
					t.Fatalf("exit: %q", r)
				}
				if f := app.read(); f.Kind() != "disconnect" {
					t.Fatalf("after exit: %s", f.Kind())
				}
			}
			if _, err := ReadFrame(app.r); err == nil {
				t.Fatal("connection still open")
			}
			waitDone(t, call)
			if o := call.Outcome(); o.Kind != HungUp || o.HangupCause != "NORMAL_CLEARING" {
				t.Fatalf("outcome %+v", o)
			}
		})
	}
}

func TestCutTCP(t *testing.T) {
	app, call := start(t, CallOptions{})
	app.reply(sendmsg("playback", "/s/long.wav"))
	app.until(isEvent("PLAYBACK_START"))
	call.CutTCP()
	app.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if f, err := ReadFrame(app.r); err == nil {
		t.Fatalf("got a %s frame after CutTCP", f.Kind())
	}
	waitDone(t, call)
	if k := call.Outcome().Kind; k != Cut {
		t.Fatalf("outcome %v", k)
	}
}

func TestStallReplies(t *testing.T) {
	app, call := start(t, CallOptions{})
	call.StallReplies(true)
	app.send("api uuid_getvar " + call.UUID() + " uuid\n\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := call.WaitFor(ctx, func(c Command) bool { return c.Name == "api" }); err != nil {
		t.Fatal(err)
	}
	app.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if f, err := ReadFrame(app.r); !errors.Is(err, net.ErrClosed) && err == nil {
		t.Fatalf("stalled FreeSWITCH replied: %s", summary(f))
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("read: %v", err)
	}
	// The stalled reader buffered nothing: make a fresh reader state.
	app.r.Reset(app.conn)
	call.StallReplies(false)
	if f := app.read(); f.Kind() != "api" || string(f.Body) != call.UUID() {
		t.Fatalf("late reply %s %q", f.Kind(), f.Body)
	}
}

func TestNotFull(t *testing.T) {
	fs := New(Options{Logf: t.Logf})
	app, call := dialApp(t, fs, CallOptions{NotFull: true})
	f, _ := app.cmd("connect\n\n")
	if f.Get("Control") != "single-channel" || f.Get("Socket-Mode") != "async" {
		t.Fatalf("connect: Control %q Socket-Mode %q", f.Get("Control"), f.Get("Socket-Mode"))
	}
	for _, cmd := range []string{"api status", "bgapi status", "sendevent CUSTOM", "event plain ALL", "nixevent ALL", "noevents", "linger", "nolinger", "log info", "nolog"} {
		if r := app.reply(cmd + "\n\n"); r != "-ERR command not found" {
			t.Errorf("%s: %q", cmd, r)
		}
	}
	for cmd, want := range map[string]string{"myevents\n\n": "+OK Events Enabled", "resume\n\n": "+OK", "getvar uuid\n\n": call.UUID()} {
		if r := app.reply(cmd); r != want {
			t.Errorf("%q: %q, want %q", cmd, r, want)
		}
	}
}

// The body form of set keeps quotes, newlines and JSON verbatim (s1), also
// for a 32 KiB value, and uuid_getvar returns it unchanged.
func TestBodyFormSet(t *testing.T) {
	for _, val := range []string{
		`{"name": "O'Brien", "n": 1}`,
		"two\nlines with \"quotes\" and 'apostrophes' and \\backslash",
		strings.Repeat(`{"k":"v\u00e9 x"},`, 32<<10/18),
	} {
		app, call := start(t, CallOptions{})
		body := "wfe_result=" + val
		app.send("sendmsg\ncall-command: execute\nexecute-app-name: set\nEvent-UUID: b1\nContent-Type: text/plain\nContent-Length: " +
			itoa(len(body)) + "\n\n" + body)
		evs := app.until(isEvent("CHANNEL_EXECUTE_COMPLETE", "Application-UUID", "b1"))
		if got, _ := call.Var("wfe_result"); got != val {
			t.Fatalf("Var = %.80q, want %.80q", got, val)
		}
		if got := app.reply("api uuid_getvar " + call.UUID() + " wfe_result\n\n"); !strings.Contains(val, "\n") && got != val {
			t.Fatalf("uuid_getvar = %.80q", got)
		}
		e, _ := evs[len(evs)-1].Event()
		if e.Get("variable_wfe_result") != val {
			t.Fatalf("event variable_wfe_result = %.80q", e.Get("variable_wfe_result"))
		}
		if len(val) > 30000 && len(evs[len(evs)-1].Body) < len(val) {
			t.Fatalf("event of %d bytes cannot carry the value", len(evs[len(evs)-1].Body))
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// Expansion is code execution: an unescaped ${api()} in a set value runs;
// escaped twice it is stored verbatim (set expands once, after the
// expansion every application argument gets).
func TestSetExpansion(t *testing.T) {
	for _, tc := range []struct {
		arg, want string
		runs      bool
	}{
		{"x=${system(touch pwned)}", "", true},
		{`x=\${system(touch pwned)}`, "", true}, // one escape is used up by the app-level expansion
		{`x=\\\${system(touch pwned)}`, "${system(touch pwned)}", false},
		{`x=it\'s`, "its", false}, // \' is dropped
		{"x=O'Brien", "O'Brien", false},
	} {
		app, call := start(t, CallOptions{})
		app.reply(sendmsg("set", tc.arg, "Event-UUID: e1"))
		app.until(isEvent("CHANNEL_EXECUTE_COMPLETE", "Application-UUID", "e1"))
		got, _ := call.Var("x")
		if got != tc.want || (len(call.APIExecutions()) > 0) != tc.runs {
			t.Errorf("set %s: x=%q APIs %q; want x=%q runs=%v", tc.arg, got, call.APIExecutions(), tc.want, tc.runs)
		}
	}
}

// uuid_setvar does not expand but strips backslash escapes.
func TestUUIDSetvar(t *testing.T) {
	app, call := start(t, CallOptions{})
	for arg, want := range map[string]string{
		"${system(x)}":       "${system(x)}",
		`say \"hi\" \\ back`: `say "hi" \ back`,
	} {
		if r := app.reply("api uuid_setvar " + call.UUID() + " v " + arg + "\n\n"); r != "+OK\n" {
			t.Fatalf("uuid_setvar: %q", r)
		}
		if got, _ := call.Var("v"); got != want {
			t.Errorf("uuid_setvar %q stored %q, want %q", arg, got, want)
		}
	}
	if len(call.APIExecutions()) != 0 {
		t.Errorf("APIs ran: %q", call.APIExecutions())
	}
}

// A second sendmsg without event-lock runs nested inside a playing prompt.
func TestEventLock(t *testing.T) {
	for _, lock := range []bool{false, true} {
		app, _ := start(t, CallOptions{Media: func(string) (time.Duration, bool) { return 2 * time.Second, true }})
		var h []string
		if lock {
			h = []string{"event-lock: true"}
		}
		app.reply(sendmsg("playback", "/s/a.wav", append(h, "Event-UUID: p1")...))
		app.until(isEvent("PLAYBACK_START"))
		app.reply(sendmsg("say", "en number pronounced 42", "Event-UUID: s1"))
		got := summaries(app.until(isEvent("CHANNEL_EXECUTE_COMPLETE", "Application-UUID", "s1")))
		// Nested, the say completes while the prompt still plays.
		nested := !slices.Contains(got, "CHANNEL_EXECUTE_COMPLETE playback=FILE PLAYED")
		if nested == lock {
			t.Errorf("event-lock %v: %q", lock, got)
		}
	}
}

func TestPlayed(t *testing.T) {
	app, call := start(t, CallOptions{Vars: map[string]string{"name": "Bob's"}})
	arg := "file_string:///s/a.wav!tts://flite|kal|It's ${name} day!/s/b.wav"
	app.reply(sendmsg("playback", arg, "Event-UUID: f1"))
	app.until(isEvent("CHANNEL_EXECUTE_COMPLETE", "Application-UUID", "f1"))
	p := call.Played()
	if len(p) != 1 {
		t.Fatalf("played %+v", p)
	}
	want := Played{App: "playback", Arg: "file_string:///s/a.wav!tts://flite|kal|It's Bob's day!/s/b.wav",
		Files: []string{"/s/a.wav", "tts://flite|kal|Its Bobs day", "/s/b.wav"}, Texts: []string{"Its Bobs day"}, Status: "FILE PLAYED"}
	got := p[0]
	if got.App != want.App || got.Arg != want.Arg || !slices.Equal(got.Files, want.Files) || !slices.Equal(got.Texts, want.Texts) || got.Status != want.Status {
		t.Fatalf("played %+v\nwant %+v", got, want)
	}
}

func TestDTMFTerminator(t *testing.T) {
	app, call := start(t, CallOptions{})
	app.reply(sendmsg("playback", "/s/long.wav", "Event-UUID: d1"))
	app.until(isEvent("PLAYBACK_START"))
	call.PressDTMF('5') // not a terminator
	call.PressDTMF('*')
	got := summaries(app.until(isEvent("CHANNEL_EXECUTE_COMPLETE")))
	want := []string{"DTMF", "DTMF", "PLAYBACK_STOP break", "CHANNEL_EXECUTE_COMPLETE playback=FILE PLAYED"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if v, _ := call.Var("playback_terminator_used"); v != "*" {
		t.Fatalf("playback_terminator_used %q", v)
	}
}

func TestTransfer(t *testing.T) {
	for _, viaAPI := range []bool{false, true} {
		app, call := start(t, CallOptions{})
		app.reply(sendmsg("playback", "/s/long.wav", "event-lock: true"))
		app.until(isEvent("PLAYBACK_START"))
		if viaAPI {
			app.send("api uuid_transfer " + call.UUID() + " 9999 XML default\n\n")
		} else {
			app.send("api uuid_break " + call.UUID() + "\n\n")
			app.until(isEvent("CHANNEL_EXECUTE_COMPLETE"))
			app.send(sendmsg("transfer", "9999 XML default"))
		}
		got := summaries(app.until(isKind("linger")))
		want := []string{"CHANNEL_UNPARK", "CHANNEL_EXECUTE_COMPLETE socket=PLAYBACK ERROR", "CHANNEL_STATE CS_ROUTING", "CHANNEL_STATE CS_EXECUTE",
			"CHANNEL_EXECUTE hangup", "CHANNEL_HANGUP", "CHANNEL_EXECUTE_COMPLETE hangup=_none_", "CHANNEL_STATE CS_HANGUP",
			"CHANNEL_STATE CS_REPORTING", "CHANNEL_HANGUP_COMPLETE", "linger"}
		if viaAPI {
			want = append([]string{"api +OK", "PLAYBACK_STOP done", "CHANNEL_EXECUTE_COMPLETE playback=PLAYBACK ERROR"}, want...)
		} else {
			want = append([]string{"reply +OK", "CHANNEL_EXECUTE transfer", "CHANNEL_EXECUTE_COMPLETE transfer=_none_"}, want...)
			want[4] = "CHANNEL_EXECUTE_COMPLETE socket=_none_"
		}
		if !slices.Equal(got, want) {
			t.Errorf("via api %v:\n got %q\nwant %q", viaAPI, got, want)
		}
		app.reply("exit\n\n")
		waitDone(t, call)
		if o := call.Outcome(); o.Kind != Transferred || o.TransferDest != "9999 XML default" {
			t.Errorf("outcome %+v", o)
		}
	}
}

func TestResumeExit(t *testing.T) {
	app, call := start(t, CallOptions{})
	if r := app.reply("resume\n\n"); r != "+OK" {
		t.Fatal(r)
	}
	if r := app.reply("exit\n\n"); r != "+OK bye" {
		t.Fatal(r)
	}
	if f := app.read(); f.Kind() != "disconnect" || string(f.Body) != goodbye {
		t.Fatalf("%s %q", f.Kind(), f.Body)
	}
	waitDone(t, call)
	if o := call.Outcome(); o.Kind != Resumed || !o.ResumeReceived || !o.ExitReceived {
		t.Fatalf("outcome %+v", o)
	}
	if v, _ := call.Var("socket_resume"); v != "true" {
		t.Fatalf("socket_resume %q", v)
	}
}

func TestUnknownAppHangsUp(t *testing.T) {
	app, call := start(t, CallOptions{})
	app.reply(sendmsg("no_such_app", "x"))
	app.until(isKind("linger"))
	if o := call.Outcome(); o.HangupCause != "DESTINATION_OUT_OF_ORDER" {
		t.Fatalf("outcome %+v", o)
	}
}

func TestSendeventUniqueIDIsQueued(t *testing.T) {
	fs := New(Options{Logf: t.Logf})
	app, call := dialApp(t, fs, CallOptions{})
	app.cmd("connect\n\n")
	body := `{"x":1}`
	for _, id := range []string{"Call-UUID", "Unique-ID"} {
		r := app.reply("sendevent CUSTOM\nEvent-Subclass: eslapp::workflow_result\n" + id + ": " + call.UUID() +
			"\nContent-Length: " + itoa(len(body)) + "\n\n" + body)
		if !sendeventReply.MatchString(r) {
			t.Fatalf("reply %q", r)
		}
	}
	ev := fs.FiredEvents()
	if len(ev) != 2 || ev[0].QueuedTo != "" || ev[1].QueuedTo != call.UUID() || string(ev[0].Body) != body || ev[0].Subclass != "eslapp::workflow_result" {
		t.Fatalf("fired %+v", ev)
	}
}

func TestConnectTimeout(t *testing.T) {
	fs := New(Options{Logf: t.Logf, ConnectTimeout: 50 * time.Millisecond})
	app, call := dialApp(t, fs, CallOptions{})
	if f := app.read(); f.Kind() != "disconnect" {
		t.Fatalf("got %s", f.Kind())
	}
	waitDone(t, call)
	if k := call.Outcome().Kind; k != ConnectTimeout {
		t.Fatalf("outcome %v", k)
	}
}

// TestParallelCalls runs 200 calls at once against a small application
// that plays a prompt, sets a variable, resumes and exits.
func TestParallelCalls(t *testing.T) {
	const n = 200
	ln := listen(t)
	var wg sync.WaitGroup
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				a := &testApp{t: goroutineT{t}, conn: conn, r: bufio.NewReaderSize(conn, 1<<16)}
				a.cmd("connect\n\n")
				a.reply("myevents\n\n")
				a.reply(sendmsg("playback", "silence_stream://20", "event-lock: true", "Event-UUID: p"))
				a.until(isEvent("CHANNEL_EXECUTE_COMPLETE", "Application-UUID", "p"))
				a.reply(sendmsg("set", "wfe_branch=OnSuccess", "event-lock: true", "Event-UUID: s"))
				a.until(isEvent("CHANNEL_EXECUTE_COMPLETE", "Application-UUID", "s"))
				a.reply("resume\n\n")
				a.reply("exit\n\n")
				a.read()
			}()
		}
	}()
	fs := New(Options{NoRecordFrames: true})
	calls := make([]*Call, n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range calls {
		c, err := fs.Dial(ctx, ln.Addr().String(), CallOptions{})
		if err != nil {
			t.Fatal(err)
		}
		calls[i] = c
	}
	for _, c := range calls {
		waitDone(t, c)
		if o := c.Outcome(); o.Kind != Resumed {
			t.Fatalf("%s: outcome %+v", c.UUID(), o)
		}
		if v, _ := c.Var("wfe_branch"); v != "OnSuccess" {
			t.Fatalf("wfe_branch %q", v)
		}
	}
	ln.Close()
	wg.Wait()
	if fs.Calls() != 0 {
		t.Fatalf("%d calls still registered", fs.Calls())
	}
}

// goroutineT lets the application goroutines of TestParallelCalls fail the
// test: Fatalf reports and ends the goroutine, not the test.
type goroutineT struct{ t *testing.T }

func (g goroutineT) Helper() {}

func (g goroutineT) Fatalf(format string, args ...any) {
	g.t.Errorf(format, args...)
	runtime.Goexit()
}
