package esl

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// TestReplayFullSession drives a Session through the commands of transcript
// s1 against FreeSWITCH's recorded bytes: channel data, replies, completion
// matching by Application-UUID, api output, the hangup and the linger notice.
func TestReplayFullSession(t *testing.T) {
	segs := loadTranscript(t, "s1_full_session")
	s := pipeSession(t, []string{
		"d5f2d91e-4364-45f6-8cb1-ffc6720bc4af", // set playback_terminators
		"5e1f0c5a-7d3b-4c8e-9a61-0000000000a1", // file_string playback
		"63d97bf5-5f9a-4bbf-b24d-1206f78268e1", // tts playback
		"9366ac67-d2ef-4d83-a93b-f2d41dd4a67b", // body-form set
		"bd4774c6-ed7c-4ecf-be9a-fa779f4c2a63", // hangup
	}, func(c net.Conn) { replayFS(c, segs) })
	ctx := context.Background()

	if got, want := s.UUID(), "46b6c45a-f375-46bd-bb45-07c79fa76302"; got != want {
		t.Fatalf("UUID = %q, want %q", got, want)
	}
	for name, want := range map[string]string{
		"current_application":      "socket",
		"current_application_data": "127.0.0.1:8084 async full",
		"sip_from_uri":             "sipp@127.0.0.1:5072",
		"rfc2822_date":             "Wed, 25 Nov 2026 16:03:38 +0000", // case-insensitive fallback
	} {
		if got, ok := s.Data().Var(name); !ok || got != want {
			t.Errorf("Var(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	if !s.Full() {
		t.Error("Full() = false for Control: full")
	}

	if err := s.Subscribe(ctx, "PLAYBACK_START", "PLAYBACK_STOP", "CUSTOM", "eslapp::workflow_result"); err != nil {
		t.Fatal(err)
	}
	if err := s.Linger(ctx); err != nil {
		t.Fatal(err)
	}
	set, err := s.Start(ctx, "set", Fixed("playback_terminators=none"), ExecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	play, err := s.Start(ctx, "playback", Fixed("file_string:///usr/share/freeswitch/sounds/en/us/callie/eslapp/hold.wav!/usr/share/freeswitch/sounds/en/us/callie/eslapp/short.wav"), ExecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := set.Wait(ctx); err != nil || res.Response != "_none_" {
		t.Errorf("set: %+v, %v", res, err)
	}
	res, err := play.Wait(ctx)
	if err != nil || res.Response != "FILE PLAYED" || res.PlaybackStatus != "done" || res.PlaybackStarted.IsZero() {
		t.Errorf("playback: %+v, %v", res, err)
	}
	if res, err := s.Execute(ctx, "playback", Fixed("tts://flite|kal|Your balance is ready")); err != nil || res.Response != "FILE PLAYED" {
		t.Errorf("tts playback: %+v, %v", res, err)
	}
	if res, err := s.Execute(ctx, "set", Fixed(`wfe_result={"name": "O'Brien", "n": 1}`)); err != nil || res.Response != "_none_" {
		t.Errorf("body-form set: %+v, %v", res, err)
	}
	out, err := s.API(ctx, "uuid_getvar", APIArgsOf(s.UUID(), "wfe_result"))
	if err != nil || out != `{"name": "O'Brien", "n": 1}` {
		t.Errorf("uuid_getvar = %q, %v", out, err)
	}
	if id, err := s.SendEvent(ctx, "eslapp::workflow_result",
		[]EventHeader{{"Call-UUID", s.UUID()}, {"Workflow-Branch", "OnSuccess"}},
		[]byte(`{"callUuid":"46b6c45a-f375-46bd-bb45-07c79fa76302","branch":"OnSuccess","result":{"name":"O'Brien","n":1}}`),
	); err != nil || id != "8286ecdf-771e-48d3-908d-87f4188f5086" {
		t.Errorf("SendEvent = %q, %v", id, err)
	}
	_, err = s.Execute(ctx, "hangup", AppArg{})
	if !errors.Is(err, ErrHangup) {
		t.Errorf("hangup app: err = %v, want ErrHangup", err)
	}
	select {
	case <-s.Context().Done():
		if !errors.Is(context.Cause(s.Context()), ErrHangup) {
			t.Errorf("call context cause = %v, want ErrHangup", context.Cause(s.Context()))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("call context not cancelled after the hangup")
	}
	if err := s.Exit(ctx); err != nil {
		t.Errorf("Exit: %v", err)
	}

	// The owner saw every event once, in Event-Sequence order.
	var names []string
	var last uint64
	for ev, ok := s.events().Next(); ok; ev, ok = s.events().Next() {
		if ev.Sequence <= last {
			t.Errorf("event %s seq %d after %d", ev.Name, ev.Sequence, last)
		}
		last = ev.Sequence
		names = append(names, ev.Name)
	}
	want := "CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_EXECUTE PLAYBACK_START PLAYBACK_STOP CHANNEL_EXECUTE_COMPLETE " +
		"CHANNEL_EXECUTE PLAYBACK_START PLAYBACK_STOP CHANNEL_EXECUTE_COMPLETE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE " +
		"CHANNEL_EXECUTE CHANNEL_HANGUP CHANNEL_EXECUTE_COMPLETE CHANNEL_UNPARK CHANNEL_EXECUTE_COMPLETE " +
		"CHANNEL_STATE CHANNEL_STATE CHANNEL_HANGUP_COMPLETE"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("events:\n got %s\nwant %s", got, want)
	}
}
