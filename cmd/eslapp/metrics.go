package main

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// The metrics listener shares the process's descriptors with every call's
// socket: idle scrapers must not pile up. A connection is closed after
// metricsIdle without a request, a request must arrive within
// metricsRead, and at most maxMetricsConns are open at once — one more is
// closed as soon as it is accepted.
const (
	maxMetricsConns = 32
	metricsRead     = 10 * time.Second
	metricsIdle     = 30 * time.Second
	metricsWrite    = 30 * time.Second
	// pprof's CPU profile streams for ?seconds= (30 by default).
	pprofWrite = 120 * time.Second
)

// newMetricsServer is the /metrics (and /debug/pprof/) server, with its
// timeouts.
func newMetricsServer(h http.Handler, pprof bool) *http.Server {
	write := metricsWrite
	if pprof {
		write = pprofWrite
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       metricsRead,
		WriteTimeout:      write,
		IdleTimeout:       metricsIdle,
		MaxHeaderBytes:    16 << 10,
	}
}

// boundedListener closes connections accepted over its bound at once.
type boundedListener struct {
	net.Listener
	mu   sync.Mutex
	open int
	max  int
}

func newBoundedListener(ln net.Listener, max int) *boundedListener {
	return &boundedListener{Listener: ln, max: max}
}

func (l *boundedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.open >= l.max {
			l.mu.Unlock()
			_ = c.Close()
			continue
		}
		l.open++
		l.mu.Unlock()
		return &boundedConn{Conn: c, l: l}, nil
	}
}

type boundedConn struct {
	net.Conn
	l    *boundedListener
	once sync.Once
}

func (c *boundedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.open--
		c.l.mu.Unlock()
	})
	return err
}
