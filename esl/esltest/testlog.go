package esltest

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
)

// TestLogger returns a logger that collects everything at debug level and
// prints it only if the test fails. Calls outlive their test by a little
// (eslgo's goroutines), so it never writes to tb after the test.
func TestLogger(tb testing.TB) *slog.Logger {
	var buf SyncBuffer
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Log("eslapp log:\n" + buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers, for logs in
// tests.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
