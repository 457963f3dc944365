package esl

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"
)

// replaySession starts a Session against a replayed transcript.
func replaySession(t *testing.T, scenario string) *Session {
	t.Helper()
	segs := loadTranscript(t, scenario)
	return pipeSession(t, transcriptAppIDs(t, segs), func(c net.Conn) { replayFS(c, segs) })
}

func waitDone(t *testing.T, s *Session, want error) {
	t.Helper()
	select {
	case <-s.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("call context not done")
	}
	if cause := context.Cause(s.Context()); !errors.Is(cause, want) {
		t.Fatalf("call ended with %v, want %v", cause, want)
	}
}

func eventNames(s *Session) []string {
	var names []string
	for ev, ok := s.events().Next(); ok; ev, ok = s.events().Next() {
		names = append(names, ev.Name)
	}
	return names
}

const longWav = "/usr/share/freeswitch/sounds/en/us/callie/eslapp/long.wav"

// s2: uuid_break all on a playback reports FILE PLAYED; the transfer runs,
// and the socket stays attached to the call in its new extension.
func TestReplayBreakThenTransfer(t *testing.T) {
	s := replaySession(t, "s2_break_then_transfer")
	ctx := context.Background()
	must(t, s.Subscribe(ctx))
	must(t, s.Linger(ctx))
	play, err := s.Start(ctx, "playback", Fixed(longWav), ExecOptions{})
	must(t, err)
	<-play.Started()
	must(t, s.Break(ctx, true))
	res, err := play.Wait(ctx)
	if err != nil || res.Response != "FILE PLAYED" {
		t.Errorf("broken playback: %+v, %v", res, err)
	}
	if err := s.Transfer(ctx, "9999", "XML", "default"); err != nil {
		t.Errorf("transfer: %v", err)
	}
	waitDone(t, s, ErrHangup) // 9999 plays a tone and hangs up
	must(t, s.Exit(ctx))
	if names := eventNames(s); !slices.Contains(names, "CHANNEL_HANGUP_COMPLETE") || names[len(names)-1] != "CHANNEL_HANGUP_COMPLETE" {
		t.Errorf("events after exit: %v", names)
	}
}

// s3: the caller hangs up without linger: the playback ends with PLAYBACK
// ERROR and ErrHangup, FreeSWITCH closes the socket, Exit sends nothing.
func TestReplayHangupWithoutLinger(t *testing.T) {
	s := replaySession(t, "s3_caller_hangup_nolinger")
	ctx := context.Background()
	must(t, s.Subscribe(ctx))
	res, err := s.Execute(ctx, "playback", Fixed(longWav))
	if !errors.Is(err, ErrHangup) || res.Response != "PLAYBACK ERROR" {
		t.Errorf("playback: %+v, %v; want PLAYBACK ERROR and ErrHangup", res, err)
	}
	waitDone(t, s, ErrHangup)
	must(t, s.Exit(ctx))
}

// s4 and s4b: with linger the notice may come before or after the hangup
// events; either way the call ends once and exit gets "+OK bye".
func TestReplayHangupWithLinger(t *testing.T) {
	for _, scenario := range []string{"s4_caller_hangup_linger", "s4b_caller_hangup_linger_early_notice"} {
		t.Run(scenario, func(t *testing.T) {
			s := replaySession(t, scenario)
			ctx := context.Background()
			must(t, s.Subscribe(ctx))
			must(t, s.Linger(ctx))
			play, err := s.Start(ctx, "playback", Fixed(longWav), ExecOptions{})
			must(t, err)
			if _, err := play.Wait(ctx); !errors.Is(err, ErrHangup) {
				t.Errorf("playback err = %v, want ErrHangup", err)
			}
			waitDone(t, s, ErrHangup)
			must(t, s.Exit(ctx))
			if names := eventNames(s); names[len(names)-1] != "CHANNEL_HANGUP_COMPLETE" {
				t.Errorf("events: %v", names)
			}
		})
	}
}

// s5: FreeSWITCH's refusals arrive as *ReplyError with its text.
func TestReplayErrors(t *testing.T) {
	s := replaySession(t, "s5_errors")
	ctx := context.Background()
	must(t, s.Subscribe(ctx))
	must(t, s.Linger(ctx))
	wantReply := func(err error, text string) {
		t.Helper()
		var re *ReplyError
		if !errors.As(err, &re) || re.Text != text {
			t.Errorf("err = %v, want ReplyError %q", err, text)
		}
	}
	_, err := s.send(ctx, s.Call, "sendmsg", "sendmsg 11111111-2222-3333-4444-555555555555\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: short.wav")
	wantReply(err, "invalid session id [11111111-2222-3333-4444-555555555555]")
	_, err = s.API(ctx, "uuid_break", APIArg("00000000-0000-0000-0000-000000000000"))
	wantReply(err, "No such channel!")
	_, err = s.API(ctx, "no_such_command", APIArgs{})
	wantReply(err, "no_such_command Command not found!")
	res, err := s.Execute(ctx, "playback", Fixed("/usr/share/freeswitch/sounds/en/us/callie/eslapp/does_not_exist.wav"))
	if err != nil || res.Response != "FILE NOT FOUND" || !res.PlaybackStarted.IsZero() {
		t.Errorf("missing file: %+v, %v", res, err)
	}
	_, err = s.send(ctx, s.Call, "myevents", "myevents") // a second myevents
	wantReply(err, "aready enabled.")
	if _, err := s.Execute(ctx, "hangup", AppArg{}); !errors.Is(err, ErrHangup) {
		t.Errorf("hangup: %v", err)
	}
	waitDone(t, s, ErrHangup)
	must(t, s.Exit(ctx))
}

// s6: say and speak complete with _none_.
func TestReplaySay(t *testing.T) {
	s := replaySession(t, "s6_say")
	ctx := context.Background()
	must(t, s.Subscribe(ctx))
	must(t, s.Linger(ctx))
	for _, c := range [][2]string{
		{"say", "en currency pronounced 12.50"},
		{"say", "en number iterated 12345"},
		{"say", "en number pronounced 42"},
		{"speak", "flite|kal|Thank you"},
	} {
		if res, err := s.Execute(ctx, c[0], Fixed(c[1])); err != nil || res.Response != "_none_" {
			t.Errorf("%s %s: %+v, %v", c[0], c[1], res, err)
		}
	}
	if _, err := s.Execute(ctx, "hangup", AppArg{}); !errors.Is(err, ErrHangup) {
		t.Errorf("hangup: %v", err)
	}
	must(t, s.Exit(ctx))
}

// s7: set, resume, exit: the dialplan continues; no hangup is seen.
func TestReplayResume(t *testing.T) {
	s := replaySession(t, "s7_resume")
	ctx := context.Background()
	if v, _ := s.Data().Var("wfe_payload"); v != `{"phone":"123"}` {
		t.Errorf("wfe_payload = %q", v)
	}
	must(t, s.Subscribe(ctx))
	must(t, s.Linger(ctx))
	if res, err := s.Execute(ctx, "set", Fixed("wfe_branch=OnSuccess")); err != nil || res.Response != "_none_" {
		t.Errorf("set: %+v, %v", res, err)
	}
	must(t, s.Resume(ctx))
	must(t, s.Exit(ctx))
	if s.HungUp() {
		t.Error("HungUp after resume and exit")
	}
	if cause := context.Cause(s.Context()); !errors.Is(cause, ErrDisconnected) {
		t.Errorf("call context cause after exit = %v", cause)
	}
}

// s8: "socket ... async" without full: api, event and linger are refused
// with ErrNotFull, applications still run.
func TestReplayNotFull(t *testing.T) {
	s := replaySession(t, "s8_no_full")
	ctx := context.Background()
	if s.Full() {
		t.Error("Full() = true for Control: single-channel")
	}
	must(t, s.Subscribe(ctx))
	if _, err := s.API(ctx, "status", APIArgs{}); !errors.Is(err, ErrNotFull) {
		t.Errorf("api: %v, want ErrNotFull", err)
	}
	if _, err := s.send(ctx, s.Call, "event", "event plain CUSTOM x::y"); !errors.Is(err, ErrNotFull) {
		t.Errorf("event: %v, want ErrNotFull", err)
	}
	if err := s.Linger(ctx); !errors.Is(err, ErrNotFull) {
		t.Errorf("linger: %v, want ErrNotFull", err)
	}
	if res, err := s.Execute(ctx, "playback", Fixed("/usr/share/freeswitch/sounds/en/us/callie/eslapp/short.wav")); err != nil || res.Response != "FILE PLAYED" {
		t.Errorf("playback: %+v, %v", res, err)
	}
	if _, err := s.Execute(ctx, "hangup", AppArg{}); !errors.Is(err, ErrHangup) {
		t.Errorf("hangup: %v", err)
	}
	waitDone(t, s, ErrHangup)
	must(t, s.Exit(ctx))
}

// s9: api uuid_transfer cuts the playback with PLAYBACK ERROR, without a
// hangup.
func TestReplayUUIDTransfer(t *testing.T) {
	s := replaySession(t, "s9_uuid_transfer")
	ctx := context.Background()
	must(t, s.Subscribe(ctx))
	must(t, s.Linger(ctx))
	play, err := s.Start(ctx, "playback", Fixed(longWav), ExecOptions{})
	must(t, err)
	<-play.Started()
	if _, err := s.API(ctx, "uuid_transfer", APIArgsOf(s.UUID(), "9999", "XML", "default")); err != nil {
		t.Fatal(err)
	}
	if res, err := play.Wait(ctx); err != nil || res.Response != "PLAYBACK ERROR" {
		t.Errorf("playback: %+v, %v", res, err)
	}
	waitDone(t, s, ErrHangup)
	must(t, s.Exit(ctx))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
