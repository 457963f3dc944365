package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"
)

// faultCRM is the CRM of a load run: it answers each request according to
// a fault mix and records, per call, when it answered.
type faultCRM struct {
	srv      *http.Server
	ln       net.Listener
	mix      []fault
	stepTime time.Duration // the step timeout the calls use

	mu       sync.Mutex
	answered map[string]time.Time // call UUID -> when the response was written
	requests int
	kinds    map[string]int
}

// fault is one kind of CRM behaviour and its share of requests.
type fault struct {
	name   string
	weight int
}

var mixes = map[string][]fault{
	"none": {{"ok", 1}},
	"full": {
		{"ok", 60}, {"500", 8}, {"503", 5}, {"reset", 5}, {"malformed", 5},
		{"timeout", 5}, {"404", 4}, {"slow-ok", 8},
	},
}

func newFaultCRM(mix []fault, stepTime time.Duration, okDelay time.Duration) (*faultCRM, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &faultCRM{ln: ln, mix: mix, stepTime: stepTime, answered: map[string]time.Time{}, kinds: map[string]int{}}
	c.srv = &http.Server{Handler: c.handler(okDelay), ReadHeaderTimeout: 10 * time.Second}
	// HTTP/1.1, and HTTP/2 without TLS for clients that ask for it (h2c).
	c.srv.Protocols = new(http.Protocols)
	c.srv.Protocols.SetHTTP1(true)
	c.srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

func (c *faultCRM) URL() string { return "http://" + c.ln.Addr().String() }

func (c *faultCRM) pick() string {
	total := 0
	for _, f := range c.mix {
		total += f.weight
	}
	n := rand.IntN(total)
	for _, f := range c.mix {
		if n < f.weight {
			return f.name
		}
		n -= f.weight
	}
	return c.mix[0].name
}

func (c *faultCRM) handler(okDelay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		call := r.Header.Get("X-Request-Id")
		kind := c.pick()
		c.mu.Lock()
		c.requests++
		c.kinds[kind]++
		c.mu.Unlock()
		wait := func(d time.Duration) bool {
			select {
			case <-time.After(d):
				return true
			case <-r.Context().Done():
				return false
			}
		}
		answer := func(status int, body string) {
			w.Header().Set("Content-Type", "application/json")
			if status == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", "0")
			}
			c.mu.Lock()
			c.answered[call] = time.Now()
			c.mu.Unlock()
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}
		switch kind {
		case "ok":
			if wait(okDelay) {
				answer(200, fmt.Sprintf(`{"found":true,"contact":{"id":"C-%d","name":"Caller"}}`, rand.IntN(1e6)))
			}
		case "slow-ok":
			if wait(okDelay + time.Duration(rand.Int64N(int64(c.stepTime/2)))) {
				answer(200, `{"found":false}`)
			}
		case "500":
			if wait(okDelay) {
				answer(500, `{"error":"internal"}`)
			}
		case "503":
			if wait(okDelay) {
				answer(503, `{"error":"busy"}`)
			}
		case "404":
			if wait(okDelay) {
				answer(404, `{"error":"no such workflow"}`)
			}
		case "malformed":
			if wait(okDelay) {
				answer(200, `{"found": tru`)
			}
		case "timeout":
			wait(3 * c.stepTime)
		case "reset":
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					if tc, ok := conn.(*net.TCPConn); ok {
						_ = tc.SetLinger(0) // RST, not FIN
					}
					_ = conn.Close()
				}
				return
			}
			// HTTP/2: reset the stream.
			panic(http.ErrAbortHandler)
		}
	})
}

// answeredAt is when the CRM answered the call's last request.
func (c *faultCRM) answeredAt(call string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.answered[call]
	return t, ok
}

func (c *faultCRM) close() { _ = c.srv.Close() }
