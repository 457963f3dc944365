// Package testlog is the tests' one collecting logger: everything at debug
// level, printed only when the test fails. It is for tests only: no
// production code imports it.
package testlog

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
)

// Logger returns a logger that collects everything at debug level and
// prints it only if the test fails. Calls outlive their test by a little,
// so it never writes to tb after the test.
func Logger(tb testing.TB) *slog.Logger {
	var buf Buffer
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Log("eslapp log:\n" + buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Buffer is a bytes.Buffer safe for concurrent writers, for logs in tests.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
