package crm

import (
	"bytes"
	"context"
	"encoding/pem"
	"github.com/eslapp/eslapp/internal/testlog"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// crmServer is an httptest CRM that counts requests and records what it
// received.
type crmServer struct {
	*httptest.Server
	hits  atomic.Int64
	conns atomic.Int64 // new TCP connections

	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, path, rawQuery string
	header                 http.Header
	body                   []byte
}

func newCRM(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int64)) *crmServer {
	t.Helper()
	s := &crmServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.mu.Lock()
		s.reqs = append(s.reqs, recorded{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), body})
		s.mu.Unlock()
		h(w, r, n)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *crmServer) recorded() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

// drop closes the connection without an answer, after the handler has
// read the request body: the request surely reached the CRM.
func drop(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

func jsonReply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func intp(n int) *int    { return &n }
func boolp(b bool) *bool { return &b }

// httpConfig is one integration "crm" at base with workflows "wf" (POST)
// and "get" (GET); mod adjusts it.
func httpConfig(base string, mod func(*IntegrationConfig)) Config {
	ic := IntegrationConfig{
		BaseURL: base,
		Workflows: map[string]WorkflowConfig{
			"wf":  {},
			"get": {Method: "GET"},
		},
	}
	if mod != nil {
		mod(&ic)
	}
	return Config{Integrations: map[string]IntegrationConfig{"crm": ic}}
}

func newService(t testing.TB, cfg Config, opts Options) *Service {
	t.Helper()
	s, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func baseRequest(workflow string) Request {
	return Request{
		ConfigID:   "crm",
		WorkflowID: workflow,
		Payload:    []byte(`{"phone":"1235550100"}`),
		Timeout:    10 * time.Second,
		CallUUID:   "2f1c6a52-0b7e-4c1e-9d0e-5a3e2b1c0d9f",
		StepID:     "lookup",
	}
}

func execute(t *testing.T, s *Service, req Request) Result {
	t.Helper()
	return s.Execute(context.Background(), req)
}

func wantBranch(t *testing.T, res Result, b Branch, status int) {
	t.Helper()
	if res.Hangup || res.Branch != b || res.Status != status {
		t.Fatalf("got branch %q status %d hangup %v err %v; want %q status %d", res.Branch, res.Status, res.Hangup, res.Err, b, status)
	}
}

type syncBuffer = testlog.Buffer

func debugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// closedAddr is an address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// fakeClock is the breaker's clock in tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTLSCRM(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		jsonReply(w, 200, `{}`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake errors are the point
	t.Cleanup(srv.Close)
	return srv
}

func writeCA(t *testing.T, srv *httptest.Server, path string) {
	t.Helper()
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, block, 0o600); err != nil {
		t.Fatal(err)
	}
}
