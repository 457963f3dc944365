package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The metrics server times out idle and slow connections (the review saw
// 300 idle keep-alive connections stay open).
func TestMetricsServerTimeouts(t *testing.T) {
	srv := newMetricsServer(http.NotFoundHandler(), false)
	if srv.IdleTimeout == 0 || srv.ReadTimeout == 0 || srv.ReadHeaderTimeout == 0 || srv.WriteTimeout == 0 {
		t.Errorf("timeouts: idle %v read %v header %v write %v", srv.IdleTimeout, srv.ReadTimeout, srv.ReadHeaderTimeout, srv.WriteTimeout)
	}
	if p := newMetricsServer(http.NotFoundHandler(), true); p.WriteTimeout <= 30*time.Second {
		t.Errorf("pprof's 30 s profile needs a longer write timeout than %v", p.WriteTimeout)
	}
}

// Over its bound the listener closes new connections at once, and a slot
// freed by a closed connection is used again.
func TestBoundedListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	srv.Listener = newBoundedListener(ln, 3)
	srv.Start()
	defer srv.Close()

	var held []net.Conn
	for range 3 {
		c := request(t, ln.Addr().String())
		held = append(held, c) // keep-alive: the connection stays open
	}
	extra, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := extra.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Fatalf("a fourth connection was served (n=%d, err=%v)", n, err)
	}
	extra.Close()
	held[0].Close()
	// The freed slot takes a new connection (Accept sees the close once
	// the server's read on it returns).
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, ok := tryRequest(ln.Addr().String())
		if ok {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slot of a closed connection was not reused")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range held[1:] {
		c.Close()
	}
}

func request(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, ok := tryRequest(addr)
	if !ok {
		t.Fatal("request failed")
	}
	return c
}

func tryRequest(addr string) (net.Conn, bool) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, false
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return c, true
}
