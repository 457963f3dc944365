package esl

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eslapp/eslapp/internal/testlog"
)

// FuzzSession drives a whole session with arbitrary bytes from the peer:
// whatever FreeSWITCH (or anything connecting as it) sends, the session
// never panics (its read loop would recover, so panics are looked for in
// its log), every command and application wait returns, and once the peer
// is gone the call's context ends. Seeds: every transcript's stream.
//
//	go test -run XXX -fuzz FuzzSession -fuzztime 60s ./esl
func FuzzSession(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(transcriptDir, "*.recv.raw"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		// The connect reply and the frames after it; whole transcripts
		// (up to 130 KB) make each run of the fuzzer slow.
		f.Add(b[:min(len(b), 16<<10)])
	}
	f.Add([]byte("Content-Type: command/reply\nReply-Text: +OK\n\n"))
	f.Add([]byte("Content-Type: api/response\nContent-Length: 3\n\n+OK"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		var logBuf testlog.Buffer
		log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		server, peer := net.Pipe()
		go func() {
			// FreeSWITCH's side: read what eslapp writes, send the stream.
			go func() { _, _ = io.Copy(io.Discard, peer) }()
			_, _ = peer.Write(stream)
			_ = peer.Close()
		}()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s, err := newSession(context.Background(), server, sessionConfig{
				commandTimeout: 20 * time.Millisecond, logger: log, maxConnect: 64 << 10, maxFrame: 256 << 10,
			})
			if err != nil {
				return
			}
			ctx := context.Background()
			s.events()
			_ = s.Subscribe(ctx, "PLAYBACK_START", "PLAYBACK_STOP")
			a, err := s.Start(ctx, "playback", Fixed("/tmp/hold.wav"), ExecOptions{Within: 30 * time.Millisecond})
			_ = s.Break(ctx, true)
			_ = s.SetVars(ctx, []Var{{Name: "wfe_branch", Value: "OnSuccess"}, {Name: "r", Value: `{"a":"${x}"}`}})
			_, _ = s.API(ctx, "uuid_getvar", APIArgsOf(s.UUID(), "r"))
			_, _ = s.SendEvent(ctx, "eslapp::workflow_result", []EventHeader{{"Call-UUID", s.UUID()}}, []byte("{}"))
			_ = s.Resume(ctx)
			if err == nil {
				_, _ = a.Wait(ctx)
			}
			_ = s.Exit(ctx)
			select {
			case <-s.Context().Done():
			case <-time.After(5 * time.Second):
				t.Error("the call's context did not end after the peer was gone")
			}
			for q := s.events(); ; {
				if _, ok := q.Next(); !ok {
					break
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("the session did not finish")
		}
		if strings.Contains(logBuf.String(), "panic") {
			t.Fatalf("a panic was recovered:\n%s", logBuf.String())
		}
	})
}
