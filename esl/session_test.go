package esl_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/esl/esltest"
)

// oneCall runs handler for a single call from the double and returns the
// call once the handler has returned.
func oneCall(t *testing.T, cfg esl.ServerConfig, opts esltest.CallOptions, handler func(ctx context.Context, s *esl.Session)) *esltest.Call {
	t.Helper()
	done := make(chan struct{})
	_, addr := startServer(t, esl.RunnerConfig{Handler: onSession(func(ctx context.Context, s *esl.Session) {
		defer close(done)
		handler(ctx, s)
	})}, cfg)
	c := dial(t, newFS(t), addr, opts)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("handler did not return; commands %v", commandNames(c))
	}
	return c
}

// A value with blank lines, quotes, JSON, ${...} and 32 KiB arrives as one
// variable, byte for byte, and FreeSWITCH evaluates nothing in it.
func TestSetVarArbitraryValue(t *testing.T) {
	big, _ := json.Marshal(map[string]string{"notes": strings.Repeat(`x"y'z\n`, 32<<10/8)})
	values := map[string]string{
		"blank_lines": "first\n\nsendmsg\ncall-command: hangup\n\nexit\n\n",
		"quotes":      `He said "hi" and 'bye' \o/`,
		"json":        `{"name":"O'Brien","n":1,"list":[{"id":"a!b|c"}]}`,
		"expansion":   `${system(touch /tmp/pwned)} $${hostname} \${x} \\ \' ${uuid}`,
		"big":         string(big),
		"crlf":        "a\r\nb\r\n\r\nc",
		"unicode":     "Zoë ☎ \xff\xfe",
	}
	var errs []error
	c := oneCall(t, esl.ServerConfig{}, esltest.CallOptions{}, func(ctx context.Context, s *esl.Session) {
		if err := s.Subscribe(ctx); err != nil {
			errs = append(errs, err)
			return
		}
		for name, v := range values {
			if err := s.SetVar(ctx, "t_"+name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	})
	for _, err := range errs {
		t.Error(err)
	}
	for name, want := range values {
		got, ok := c.Var("t_" + name)
		if !ok || got != want {
			t.Errorf("%s: stored %d bytes %.60q, want %d bytes %.60q", name, len(got), got, len(want), want)
		}
	}
	if ex := c.APIExecutions(); len(ex) != 0 {
		t.Errorf("FreeSWITCH ran %v", ex)
	}
	sets := 0
	for _, cmd := range c.Commands() {
		if cmd.App == "set" {
			sets++
		}
	}
	if sets != len(values) {
		t.Errorf("%d set commands for %d values: a value split a command", sets, len(values))
	}
}

func TestSetVarRefusesNUL(t *testing.T) {
	var err error
	oneCall(t, esl.ServerConfig{}, esltest.CallOptions{}, func(ctx context.Context, s *esl.Session) {
		_ = s.Subscribe(ctx)
		err = s.SetVar(ctx, "v", "a\x00b")
	})
	var unsafe *esl.UnsafeValueError
	if !errors.As(err, &unsafe) {
		t.Fatalf("err = %v, want UnsafeValueError", err)
	}
}

// The same value survives when the channel has pre-execution expansion
// switched off (only set's own expansion runs then).
func TestSetVarWithExpansionDisabled(t *testing.T) {
	want := `${system(x)} \\ \$ $${hostname}`
	c := oneCall(t, esl.ServerConfig{}, esltest.CallOptions{Vars: map[string]string{"app_disable_expand_variables": "true"}},
		func(ctx context.Context, s *esl.Session) {
			_ = s.Subscribe(ctx)
			if err := s.SetVar(ctx, "v", want); err != nil {
				t.Error(err)
			}
		})
	if got, _ := c.Var("v"); got != want || len(c.APIExecutions()) != 0 {
		t.Fatalf("stored %q (api: %v), want %q", got, c.APIExecutions(), want)
	}
}

// The caller hangs up during a playback: the app ends with ErrHangup, the
// call's context ends, and eslapp sends nothing more but exit (with linger;
// without it FreeSWITCH has already closed the socket).
func TestHangupDuringApp(t *testing.T) {
	for _, linger := range []bool{false, true} {
		t.Run(fmt.Sprintf("linger=%v", linger), func(t *testing.T) {
			var appErr, ctxCause error
			var c *esltest.Call
			c = oneCall(t, esl.ServerConfig{}, esltest.CallOptions{Media: func(string) (time.Duration, bool) { return time.Hour, true }},
				func(ctx context.Context, s *esl.Session) {
					_ = s.Subscribe(ctx)
					if linger {
						_ = s.Linger(ctx)
					}
					play, err := s.Start(ctx, "playback", esl.Fixed("/tmp/long.wav"), esl.ExecOptions{})
					if err != nil {
						t.Error(err)
						return
					}
					<-play.Started()
					fsCall(t, s).Hangup("NORMAL_CLEARING")
					_, appErr = play.Wait(context.Background())
					<-ctx.Done()
					ctxCause = context.Cause(ctx)
				})
			if !errors.Is(appErr, esl.ErrHangup) || !errors.Is(ctxCause, esl.ErrHangup) {
				t.Fatalf("app err %v, call cause %v; want ErrHangup", appErr, ctxCause)
			}
			out := waitCall(t, c)
			names := commandNames(c)
			i := len(names) - 1
			for i >= 0 && names[i] != "sendmsg playback" {
				i--
			}
			after := strings.Join(names[i+1:], ",")
			// Without linger FreeSWITCH may close the socket before exit
			// goes out; with linger it waits for it.
			if out.Kind != esltest.HungUp || linger && after != "exit" || !linger && after != "exit" && after != "" {
				t.Fatalf("outcome %v, commands %v", out.Kind, names)
			}
		})
	}
}

// fsCall finds the double's side of a session.
func fsCall(t *testing.T, s *esl.Session) *esltest.Call {
	t.Helper()
	c, ok := sharedFS.Call(s.UUID())
	if !ok {
		t.Fatalf("no call %s in the double", s.UUID())
	}
	return c
}

// A TCP connection that drops without a disconnect notice ends the call at
// once (cause ErrDisconnected), well within the command timeout.
func TestTCPDropEndsCall(t *testing.T) {
	start := time.Now()
	var cause error
	var waited time.Duration
	oneCall(t, esl.ServerConfig{CommandTimeout: 3 * time.Second}, esltest.CallOptions{}, func(ctx context.Context, s *esl.Session) {
		_ = s.Subscribe(ctx)
		fsCall(t, s).CutTCP()
		t0 := time.Now()
		<-ctx.Done()
		waited = time.Since(t0)
		cause = context.Cause(ctx)
	})
	if !errors.Is(cause, esl.ErrDisconnected) {
		t.Fatalf("cause = %v, want ErrDisconnected", cause)
	}
	if waited >= 3*time.Second {
		t.Fatalf("call ended %v after the drop, not within the command timeout", waited)
	}
	t.Logf("drop noticed after %v (test ran %v)", waited, time.Since(start))
}

// When FreeSWITCH does not answer a command in time, the command fails with
// ErrCommandTimeout and the connection is closed (a late reply would answer
// the next command).
func TestCommandTimeoutClosesConnection(t *testing.T) {
	var err, next error
	c := oneCall(t, esl.ServerConfig{CommandTimeout: 300 * time.Millisecond}, esltest.CallOptions{}, func(ctx context.Context, s *esl.Session) {
		_ = s.Subscribe(ctx)
		fsCall(t, s).StallReplies(true)
		err = s.SetVar(ctx, "v", "1")
		next = s.Resume(ctx)
	})
	if !errors.Is(err, esl.ErrCommandTimeout) {
		t.Fatalf("err = %v, want ErrCommandTimeout", err)
	}
	if !errors.Is(next, esl.ErrDisconnected) {
		t.Fatalf("next command: %v, want ErrDisconnected", next)
	}
	if out := waitCall(t, c); out.Kind != esltest.AppClosed {
		t.Fatalf("outcome %v, want the connection closed by eslapp", out.Kind)
	}
}

// Many apps in a row: every completion is matched to its app, and the
// events reach the session in Event-Sequence order.
func TestExecuteMatchesCompletionsInOrder(t *testing.T) {
	oneCall(t, esl.ServerConfig{}, esltest.CallOptions{
		Media: func(string) (time.Duration, bool) { return 5 * time.Millisecond, true },
	}, func(ctx context.Context, s *esl.Session) {
		events := esl.SessionEvents(s)
		if err := s.Subscribe(ctx, "PLAYBACK_START", "PLAYBACK_STOP"); err != nil {
			t.Error(err)
			return
		}
		var apps []*esl.App
		for i := range 30 {
			arg := esl.Fixed(fmt.Sprintf("/tmp/f%d.wav", i))
			a, err := s.Start(ctx, "playback", arg, esl.ExecOptions{EventLock: true})
			if err != nil {
				t.Error(err)
				return
			}
			apps = append(apps, a)
		}
		var prevEnd time.Time
		for i, a := range apps {
			res, err := a.Wait(ctx)
			if err != nil || res.Response != "FILE PLAYED" || res.PlaybackStatus != "done" {
				t.Errorf("app %d: %+v %v", i, res, err)
			}
			if res.Ended.Before(prevEnd) {
				t.Errorf("app %d ended before app %d", i, i-1)
			}
			prevEnd = res.Ended
		}
		var last uint64
		n := 0
		for ev, ok := events.Next(); ok; ev, ok = events.Next() {
			if ev.Sequence <= last {
				t.Errorf("event %s #%d after #%d", ev.Name, ev.Sequence, last)
			}
			last = ev.Sequence
			n++
		}
		if n < 30*4 {
			t.Errorf("saw %d events for 30 playbacks", n)
		}
	})
}

// SetVars carries many values, hostile ones included, in one multiset, and
// sets the ones multiset would trim on their own.
func TestSetVarsMultiset(t *testing.T) {
	vars := []esl.Var{
		{"wfe_branch", "OnSuccess"},
		{"result", `{"name":"O'Brien | ${system(x)}","note":"a\\nb"}`},
		{"pipes", `a|b\|c^^|d`},
		{"quotes", `'single' "double"`},
		{"trailing", "ends in space "},
		{"newline", "two\nlines"},
		{"empty", ""},
		{"expansion", `$${hostname} \${x} \\ \'`},
	}
	var err error
	c := oneCall(t, esl.ServerConfig{}, esltest.CallOptions{Vars: map[string]string{"empty": "was set"}}, func(ctx context.Context, s *esl.Session) {
		_ = s.Subscribe(ctx)
		err = s.SetVars(ctx, vars)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vars {
		got, ok := c.Var(v.Name)
		if v.Value == "" {
			if ok {
				t.Errorf("%s not unset: %q", v.Name, got)
			}
			continue
		}
		if got != v.Value {
			t.Errorf("%s = %q, want %q", v.Name, got, v.Value)
		}
	}
	if len(c.APIExecutions()) != 0 {
		t.Errorf("FreeSWITCH ran %v", c.APIExecutions())
	}
	waitCall(t, c)
	if names := strings.Join(commandNames(c), ","); names != "connect,myevents,sendmsg multiset,sendmsg set,exit" {
		t.Errorf("commands: %s", names)
	}
}
