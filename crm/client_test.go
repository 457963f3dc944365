package crm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestExecuteSuccessSendsContract(t *testing.T) {
	crm := newCRM(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		jsonReply(w, 200, "{\n  \"found\": true,\n  \"name\": \"Ada\"\n}\n")
	})
	env := map[string]string{"CRM_TOKEN": "tok-123"}
	s := newService(t, httpConfig(crm.URL+"/api/v2", func(ic *IntegrationConfig) {
		ic.Headers = map[string]string{"Authorization": "Bearer ${env:CRM_TOKEN}", "X-Tenant": "acme"}
		ic.Workflows["wf"] = WorkflowConfig{Headers: map[string]string{"X-Workflow": "search"}}
	}), Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})

	res := execute(t, s, baseRequest("wf"))
	wantBranch(t, res, OnSuccess, 200)
	if string(res.Body) != `{"found":true,"name":"Ada"}` || res.Attempts != 1 || res.Err != nil {
		t.Fatalf("result %+v", res)
	}
	got := crm.recorded()[0]
	checks := map[string]string{
		"Content-Type":    "application/json",
		"Accept":          "application/json",
		"Authorization":   "Bearer tok-123",
		"X-Tenant":        "acme",
		"X-Workflow":      "search",
		"X-Request-Id":    "2f1c6a52-0b7e-4c1e-9d0e-5a3e2b1c0d9f",
		"Idempotency-Key": idempotencyKey(baseRequest("wf")),
	}
	for k, want := range checks {
		if v := got.header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	if got.method != "POST" || got.path != "/api/v2/wf" || string(got.body) != `{"phone":"1235550100"}` {
		t.Errorf("request %s %s %s", got.method, got.path, got.body)
	}
}

func TestPathVarsCannotLeaveThePath(t *testing.T) {
	crm := newCRM(t, func(w http.ResponseWriter, r *http.Request, _ int64) { jsonReply(w, 200, `{}`) })
	s := newService(t, httpConfig(crm.URL, func(ic *IntegrationConfig) {
		ic.Workflows["contact"] = WorkflowConfig{Method: "GET", Path: "/contacts/{phone}/card"}
	}), Options{})
	vars := func(v string) func(string) (string, bool) {
		return func(name string) (string, bool) { return v, name == "phone" }
	}
	req := baseRequest("contact")
	req.PathVars = vars("../../admin?x=1#frag @evil.example/%2e%2e")
	wantBranch(t, execute(t, s, req), OnSuccess, 200)
	got := crm.recorded()[0]
	if want := "/contacts/..%2F..%2Fadmin%3Fx=1%23frag%20@evil.example%2F%252e%252e/card"; got.path != want || got.rawQuery != "" {
		t.Errorf("path %q query %q, want %q", got.path, got.rawQuery, want)
	}
	if got.body != nil && len(got.body) != 0 {
		t.Errorf("GET sent a body: %q", got.body)
	}
	for _, v := range []string{"..", ".", ""} {
		req.PathVars = vars(v)
		wantBranch(t, execute(t, s, req), OnInvalidInput, 0)
	}
	req.PathVars = nil
	if res := execute(t, s, req); res.Branch != OnInvalidInput || !strings.Contains(res.Err.Message, "{phone}") {
		t.Errorf("missing var: %+v", res.Err)
	}
	if n := crm.hits.Load(); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
}

// A POST that reached the CRM is never sent twice, whatever happened to it.
func TestPostReachedIsNeverResent(t *testing.T) {
	cases := map[string]func(http.ResponseWriter, *http.Request, int64){
		"500":          func(w http.ResponseWriter, _ *http.Request, _ int64) { jsonReply(w, 500, `{"error":"boom"}`) },
		"502":          func(w http.ResponseWriter, _ *http.Request, _ int64) { w.WriteHeader(502) },
		"dropped":      func(w http.ResponseWriter, _ *http.Request, _ int64) { drop(w) },
		"half answer":  halfAnswer,
		"invalid JSON": func(w http.ResponseWriter, _ *http.Request, _ int64) { jsonReply(w, 200, `{"ticket":`) },
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			crm := newCRM(t, h)
			s := newService(t, httpConfig(crm.URL, func(ic *IntegrationConfig) { ic.Retries = intp(3) }), Options{})
			res := execute(t, s, baseRequest("wf"))
			if res.Branch != OnError || res.Attempts != 1 {
				t.Errorf("branch %q attempts %d err %v", res.Branch, res.Attempts, res.Err)
			}
			if n := crm.hits.Load(); n != 1 {
				t.Errorf("CRM received the POST %d times", n)
			}
		})
	}
}

// halfAnswer sends headers and half the promised body, then closes.
func halfAnswer(w http.ResponseWriter, _ *http.Request, _ int64) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ticket\":")
	buf.Flush()
	conn.Close()
}

// net/http replays requests on a reused keep-alive connection that the
// server closed without answering, if it thinks they are idempotent; the
// Idempotency-Key header must not make it replay our POST.
func TestPostNotReplayedOnReusedConnection(t *testing.T) {
	crm := newCRM(t, func(w http.ResponseWriter, _ *http.Request, n int64) {
		if n == 1 {
			jsonReply(w, 200, `{}`)
			return
		}
		drop(w) // body read, then the connection closes without an answer
	})
	s := newService(t, httpConfig(crm.URL, nil), Options{})
	wantBranch(t, execute(t, s, baseRequest("wf")), OnSuccess, 200)
	res := execute(t, s, baseRequest("wf"))
	if res.Branch != OnError {
		t.Fatalf("second call: %+v", res)
	}
	if n := crm.hits.Load(); n != 2 {
		t.Errorf("CRM received %d requests, want 2 (the dropped POST was replayed)", n)
	}
	if c := crm.conns.Load(); c != 1 {
		t.Logf("connections: %d (the test wants the second POST on a reused one)", c)
	}
}

func TestGetRetriedAfter5xxAndReset(t *testing.T) {
	crm := newCRM(t, func(w http.ResponseWriter, _ *http.Request, n int64) {
		switch n {
		case 1:
			w.WriteHeader(500)
		case 2:
			drop(w)
		default:
			jsonReply(w, 200, `{"ok":true}`)
		}
	})
	s := newService(t, httpConfig(crm.URL, nil), Options{})
	res := execute(t, s, baseRequest("get"))
	wantBranch(t, res, OnSuccess, 200)
	// net/http itself may replay the GET on a fresh connection after the
	// drop, so the client can count fewer attempts than the server.
	if res.Attempts < 2 || crm.hits.Load() != 3 {
		t.Errorf("attempts %d, hits %d", res.Attempts, crm.hits.Load())
	}
	// Retries are bounded: 500 forever gives the last status.
	bad := newCRM(t, func(w http.ResponseWriter, _ *http.Request, _ int64) { w.WriteHeader(500) })
	s = newService(t, httpConfig(bad.URL, nil), Options{})
	res = execute(t, s, baseRequest("get"))
	wantBranch(t, res, OnError, 500)
	if res.Attempts != DefaultRetries+1 || bad.hits.Load() != DefaultRetries+1 {
		t.Errorf("attempts %d hits %d", res.Attempts, bad.hits.Load())
	}
}

func TestPostRetriedWhenConnectionRefused(t *testing.T) {
	s := newService(t, httpConfig("http://"+closedAddr(t), nil), Options{})
	res := execute(t, s, baseRequest("wf"))
	wantBranch(t, res, OnError, 0)
	if res.Attempts != DefaultRetries+1 || !strings.Contains(res.Err.Message, "refused") {
		t.Errorf("attempts %d message %q", res.Attempts, res.Err.Message)
	}
}

func TestRetryAfterAndIdempotencyKey(t *testing.T) {
	for _, tc := range []struct {
		name, retryAfter string
		status           int
	}{
		{"503 seconds", "1", 503},
		{"429 seconds", "0", 429},
		{"503 HTTP date in the past", "Mon, 02 Jan 2006 15:04:05 GMT", 503},
		{"503 without Retry-After", "", 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			crm := newCRM(t, func(w http.ResponseWriter, _ *http.Request, n int64) {
				if n < 3 {
					if tc.retryAfter != "" {
						w.Header().Set("Retry-After", tc.retryAfter)
					}
					w.WriteHeader(tc.status)
					return
				}
				jsonReply(w, 201, `{"ticket":"T-1"}`)
			})
			s := newService(t, httpConfig(crm.URL, nil), Options{})
			res := execute(t, s, baseRequest("wf"))
			wantBranch(t, res, OnSuccess, 201)
			reqs := crm.recorded()
			if len(reqs) != 3 || res.Attempts != 3 {
				t.Fatalf("%d requests, %d attempts", len(reqs), res.Attempts)
			}
			key := reqs[0].header.Get("Idempotency-Key")
			for i, r := range reqs {
				if k := r.header.Get("Idempotency-Key"); k != key || k == "" {
					t.Errorf("attempt %d key %q, first %q", i+1, k, key)
				}
				if string(r.body) != `{"phone":"1235550100"}` {
					t.Errorf("attempt %d body %q", i+1, r.body)
				}
			}
		})
	}
}

func TestIdempotencyKeyDerivation(t *testing.T) {
	a := baseRequest("wf")
	b := a
	b.StepID = "lookup#2"
	c := a
	c.CallUUID = "other"
	if idempotencyKey(a) != idempotencyKey(a) {
		t.Error("key not stable")
	}
	if idempotencyKey(a) == idempotencyKey(b) || idempotencyKey(a) == idempotencyKey(c) {
		t.Error("key does not depend on call and step")
	}
	anon := Request{ConfigID: "crm", WorkflowID: "wf"}
	if idempotencyKey(anon) == idempotencyKey(anon) {
		t.Error("anonymous requests share a key")
	}
}

// A Retry-After past the deadline is not waited for: the 503 stands.
func TestRetryAfterPastDeadlineGivesLastStatus(t *testing.T) {
	crm := newCRM(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(503)
	})
	s := newService(t, httpConfig(crm.URL, nil), Options{})
	req := baseRequest("wf")
	req.Timeout = 3 * time.Second
	res := execute(t, s, req)
	wantBranch(t, res, OnError, 503) // not OnTimeout: nothing waited for the deadline
	if res.Attempts != 1 {
		t.Errorf("attempts %d", res.Attempts)
	}
}

func TestBadResponses(t *testing.T) {
	big := strings.Repeat("x", 10<<20)
	cases := []struct {
		name   string
		h      func(http.ResponseWriter, *http.Request, int64)
		status int
		msg    string
	}{
		{"malformed JSON", func(w http.ResponseWriter, _ *http.Request, _ int64) { jsonReply(w, 200, `{"a":}`) }, 200, "not valid JSON"},
		{"10 MiB with length", func(w http.ResponseWriter, _ *http.Request, _ int64) {
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			w.Write([]byte(big))
		}, 200, "max_response_bytes"},
		{"10 MiB chunked", func(w http.ResponseWriter, _ *http.Request, _ int64) {
			for i := 0; i < 10; i++ {
				w.Write([]byte(big[:1<<20]))
				http.NewResponseController(w).Flush()
			}
		}, 200, "max_response_bytes"},
		{"404 not configured", func(w http.ResponseWriter, _ *http.Request, _ int64) { http.NotFound(w, nil) }, 404, "404 Not Found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			crm := newCRM(t, tc.h)
			s := newService(t, httpConfig(crm.URL, nil), Options{})
			res := execute(t, s, baseRequest("get"))
			wantBranch(t, res, OnError, tc.status)
			if !strings.Contains(res.Err.Message, tc.msg) {
				t.Errorf("message %q", res.Err.Message)
			}
			if n := crm.hits.Load(); n != 1 {
				t.Errorf("%d requests: a bad answer must not be retried", n)
			}
		})
	}
}

func TestInvalidWorkflowStatus(t *testing.T) {
	crm := newCRM(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
		jsonReply(w, 404, `{"error":"no such workflow"}`)
	})
	s := newService(t, httpConfig(crm.URL, func(ic *IntegrationConfig) { ic.InvalidWorkflowStatus = []int{404} }), Options{})
	res := execute(t, s, baseRequest("wf"))
	wantBranch(t, res, OnInvalidWorkflow, 404)
	if string(res.Body) != `{"error":"no such workflow"}` {
		t.Errorf("body %s", res.Body)
	}
}

func TestRedirects(t *testing.T) {
	other := newCRM(t, func(w http.ResponseWriter, _ *http.Request, _ int64) { jsonReply(w, 200, `{}`) })
	crm := newCRM(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		switch r.URL.Path {
		case "/loop", "/wf", "/get":
			if r.URL.Path == "/loop" || r.Header.Get("X-Case") == "loop" {
				http.Redirect(w, r, "/loop", http.StatusTemporaryRedirect)
				return
			}
			switch r.Header.Get("X-Case") {
			case "other":
				http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
			case "same-307":
				http.Redirect(w, r, "/moved", http.StatusTemporaryRedirect)
			case "same-302":
				http.Redirect(w, r, "/moved", http.StatusFound)
			}
		case "/moved":
			jsonReply(w, 200, fmt.Sprintf(`{"method":%q}`, r.Method))
		}
	})
	run := func(wf, kase string) Result {
		s := newService(t, httpConfig(crm.URL, func(ic *IntegrationConfig) {
			ic.Headers = map[string]string{"X-Case": kase}
		}), Options{})
		return execute(t, s, baseRequest(wf))
	}

	res := run("get", "other")
	wantBranch(t, res, OnError, 302)
	if !strings.Contains(res.Err.Message, "another origin") || other.hits.Load() != 0 || res.Attempts != 1 {
		t.Errorf("message %q, other host hit %d times, attempts %d", res.Err.Message, other.hits.Load(), res.Attempts)
	}
	res = run("get", "loop")
	wantBranch(t, res, OnError, 307)
	if !strings.Contains(res.Err.Message, "more than 3") {
		t.Errorf("loop message %q", res.Err.Message)
	}
	res = run("wf", "same-307") // same origin, same method: followed with the body
	wantBranch(t, res, OnSuccess, 200)
	if string(res.Body) != `{"method":"POST"}` {
		t.Errorf("307 body %s", res.Body)
	}
	res = run("wf", "same-302") // would turn the POST into a GET
	wantBranch(t, res, OnError, 302)
}

// The acceptance scenario: CRM answers after 5 s, timeout 1,000 ms.
func TestTimeoutCancelsRequest(t *testing.T) {
	cancelled := make(chan struct{}, 1)
	crm := newCRM(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(5 * time.Second):
			jsonReply(w, 200, `{}`)
		}
	})
	s := newService(t, httpConfig(crm.URL, nil), Options{})
	req := baseRequest("wf")
	req.Timeout = 1000 * time.Millisecond
	res := execute(t, s, req)
	wantBranch(t, res, OnTimeout, 0)
	if res.Latency < 900*time.Millisecond || res.Latency > 4500*time.Millisecond {
		t.Errorf("latency %v, want about 1s", res.Latency)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the CRM never saw its request cancelled")
	}
}

func TestHangupCancelsRequest(t *testing.T) {
	started := make(chan struct{})
	cancelled := make(chan struct{}, 1)
	crm := newCRM(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		close(started)
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(20 * time.Second):
		}
	})
	s := newService(t, httpConfig(crm.URL, nil), Options{})
	ctx, cancel := context.WithCancelCause(context.Background())
	errHangup := errors.New("caller hung up")
	go func() {
		<-started
		cancel(errHangup)
	}()
	res := s.Execute(ctx, baseRequest("wf"))
	if !res.Hangup || res.Branch != "" || res.Err != nil {
		t.Fatalf("got %+v, want hangup", res)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the CRM never saw its request cancelled")
	}
	// A call that is already gone sends nothing.
	res = s.Execute(ctx, baseRequest("wf"))
	if !res.Hangup || res.Attempts != 0 || crm.hits.Load() != 1 {
		t.Errorf("after hangup: %+v, hits %d", res, crm.hits.Load())
	}
}

// Per-attempt timeout: a GET stuck on one attempt is retried in the same
// step.
func TestAttemptTimeoutRetriesGet(t *testing.T) {
	crm := newCRM(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if n == 1 {
			<-r.Context().Done()
			return
		}
		jsonReply(w, 200, `{"second":true}`)
	})
	s := newService(t, httpConfig(crm.URL, func(ic *IntegrationConfig) { ic.AttemptTimeoutMS = 300 }), Options{})
	res := execute(t, s, baseRequest("get"))
	wantBranch(t, res, OnSuccess, 200)
	if res.Attempts != 2 {
		t.Errorf("attempts %d", res.Attempts)
	}
}

// Concurrent steps share one pool: a second burst reuses the connections
// of the first.
func TestConnectionReuse(t *testing.T) {
	crm := newCRM(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
		time.Sleep(20 * time.Millisecond)
		jsonReply(w, 200, `{}`)
	})
	s := newService(t, httpConfig(crm.URL, nil), Options{})
	const n = 60
	for round := 0; round < 2; round++ {
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if res := s.Execute(context.Background(), baseRequest("wf")); res.Branch != OnSuccess {
					t.Errorf("branch %q err %v", res.Branch, res.Err)
				}
			}()
		}
		wg.Wait()
	}
	if c := crm.conns.Load(); c > n+n/2 {
		t.Errorf("%d connections for 2 bursts of %d: the pool is not reused", c, n)
	}
}

// The request on the wire carries the idempotency header once, under its
// usual name.
func TestIdempotencyHeaderOnTheWire(t *testing.T) {
	raw := make(chan string, 1)
	crm := newCRM(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		var b strings.Builder
		r.Header.Write(&b)
		raw <- b.String()
		jsonReply(w, 200, `{}`)
	})
	s := newService(t, httpConfig(crm.URL, nil), Options{})
	wantBranch(t, execute(t, s, baseRequest("wf")), OnSuccess, 200)
	sc := bufio.NewScanner(strings.NewReader(<-raw))
	count := 0
	for sc.Scan() {
		if strings.HasPrefix(strings.ToLower(sc.Text()), "idempotency-key:") {
			count++
		}
	}
	if count != 1 {
		t.Errorf("Idempotency-Key appears %d times", count)
	}
}

// A declared Content-Length sizes nothing: a CRM that promises 60 MiB and
// sends a few bytes costs the step what arrived, not 60 MiB (the review saw
// 1.2 GB of heap for 20 such steps).
func TestDeclaredLengthDoesNotAllocate(t *testing.T) {
	crm := newCRM(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		w.Header().Set("Content-Length", fmt.Sprint(60<<20))
		w.WriteHeader(200)
		w.Write([]byte(`{"a":`))
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	s := newService(t, httpConfig(crm.URL, func(ic *IntegrationConfig) { ic.MaxResponseBytes = 64 << 20 }), Options{})
	req := baseRequest("get")
	req.Timeout = 300 * time.Millisecond
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 3 {
		if res := execute(t, s, req); res.Branch != OnTimeout {
			t.Fatalf("branch %s, want OnTimeout", res.Branch)
		}
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Errorf("3 steps allocated %d MiB for bodies that never came", grew>>20)
	}
}

// Debug logs never carry the request URL, which holds caller data: not as
// the url value, and not inside an error's text either.
func TestDebugLogsHideTheURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close() // connection refused
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := newService(t, httpConfig(dead, func(ic *IntegrationConfig) {
		ic.Workflows["contact"] = WorkflowConfig{Method: "GET", Path: "/contacts/{phone}"}
		ic.Retries = intp(1)
	}), Options{Logger: log})
	req := baseRequest("contact")
	req.PathVars = func(name string) (string, bool) { return "+15551234567", name == "phone" }
	req.Timeout = 2 * time.Second
	res := execute(t, s, req)
	if res.Branch != OnError {
		t.Fatalf("branch %s", res.Branch)
	}
	if !strings.Contains(logs.String(), "request failed") {
		t.Fatalf("the test logged no failed request:\n%s", logs.String())
	}
	for _, leak := range []string{"15551234567", "/contacts/"} {
		if strings.Contains(logs.String(), leak) {
			t.Errorf("logs hold %q:\n%s", leak, logs.String())
		}
	}
	if strings.Contains(res.Err.Message, "15551234567") {
		t.Errorf("the error variable holds the caller's number: %s", res.Err.Message)
	}
}

// A workflow path may carry a query, as serverless CRMs are called: secret
// references in values are resolved at load and query-escaped, {var}s are
// query-escaped per request and cannot add a parameter.
func TestWorkflowQueryString(t *testing.T) {
	crm := newCRM(t, func(w http.ResponseWriter, r *http.Request, _ int64) { jsonReply(w, 200, `{}`) })
	env := map[string]string{"FN_KEY": "k3y+/=&secret"}
	s := newService(t, httpConfig(crm.URL, func(ic *IntegrationConfig) {
		ic.Workflows["fn"] = WorkflowConfig{Method: "GET", Path: "/api/run/{id}?code=${env:FN_KEY}&async=false&phone={phone}&flag"}
	}), Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	req := baseRequest("fn")
	req.PathVars = func(name string) (string, bool) {
		switch name {
		case "id":
			return "42", true
		case "phone":
			return "+1 555&admin=1#x", true
		}
		return "", false
	}
	wantBranch(t, execute(t, s, req), OnSuccess, 200)
	got := crm.recorded()[0]
	if want := "code=k3y%2B%2F%3D%26secret&async=false&phone=%2B1+555%26admin%3D1%23x&flag"; got.path != "/api/run/42" || got.rawQuery != want {
		t.Errorf("path %q query %q, want /api/run/42 and %q", got.path, got.rawQuery, want)
	}
	req.PathVars = func(name string) (string, bool) { return "42", name == "id" }
	if res := execute(t, s, req); res.Branch != OnInvalidInput || !strings.Contains(res.Err.Message, "{phone}") {
		t.Errorf("missing query var: %+v", res.Err)
	}
}

// The query's secret never shows: not in the error variable, not in debug
// logs, not in check's errors.
func TestWorkflowQuerySecretRedacted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	env := map[string]string{"FN_KEY": "sup3rs3cr3tk3y"}
	s := newService(t, httpConfig(dead, func(ic *IntegrationConfig) {
		ic.Workflows["fn"] = WorkflowConfig{Path: "/run?code=${env:FN_KEY}"}
		ic.Retries = intp(0)
	}), Options{Logger: log, LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	res := execute(t, s, baseRequest("fn"))
	if res.Branch != OnError {
		t.Fatalf("branch %s", res.Branch)
	}
	if strings.Contains(logs.String(), "sup3rs3cr3tk3y") || strings.Contains(res.Err.Message, "sup3rs3cr3tk3y") {
		t.Errorf("the query secret shows:\nerror %s\nlogs %s", res.Err.Message, logs.String())
	}
	_, err = New(httpConfig(dead, func(ic *IntegrationConfig) {
		ic.Workflows["fn"] = WorkflowConfig{Path: "/run?code=${env:FN_KEY}&x=#frag"}
	}), Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err == nil || strings.Contains(err.Error(), "sup3rs3cr3tk3y") || !strings.Contains(err.Error(), "fragment") {
		t.Errorf("bad query: %v", err)
	}
}

// scrubURL hides a URL in any error text and keeps the chain.
func TestScrubURL(t *testing.T) {
	target := "http://crm.example/run?code=sup3rs3cr3t"
	err := scrubURL(fmt.Errorf("POST %s giving up after 3 attempt(s): %w", target, io.ErrUnexpectedEOF), target)
	if strings.Contains(err.Error(), "sup3rs3cr3t") || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("%v", err)
	}
}
