package crm

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
)

func urlErr(err error) error {
	return &url.Error{Op: "Post", URL: "http://crm.example:8080/api/wf/1235550100", Err: err}
}

func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	readTimeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	dnsErr := &net.DNSError{Err: "no such host", Name: "crm.invalid", IsNotFound: true}
	hangup := errors.New("esl: call hung up")
	stepTimeout := fmt.Errorf("step create-ticket: %w", ErrStepTimeout)
	tooLarge := newMessageError(ErrResponseTooLarge, "CRM response of %d bytes is over max_response_bytes (%d)", 10<<20, 1<<20)
	redirect := urlErr(newMessageError(ErrRedirectRefused, "CRM redirected to another origin (http://evil.example); not followed"))
	loop := urlErr(newMessageError(ErrTooManyRedirects, "CRM redirected more than 3 times"))
	inv404 := []int{404, 410}

	tests := []struct {
		name    string
		ev      Evidence
		branch  Branch // "" means hangup
		status  int
		body    string // expected compact body, "" for nil
		message string // substring of the error message
	}{
		// 1. Validation results, in contract order.
		{"tenant disabled", Evidence{Rejected: reject(ErrAgentIntegrationDisabled, "agent integrations are disabled for tenant %q", "t1")}, OnAgentIntegrationDisabled, 0, "", `tenant "t1"`},
		{"integration disabled, wrapped", Evidence{Rejected: fmt.Errorf("prepare: %w", reject(ErrAgentIntegrationDisabled, "integration %q is disabled", "crm"))}, OnAgentIntegrationDisabled, 0, "", "is disabled"},
		{"invalid input", Evidence{Rejected: reject(ErrInvalidInput, "payload is not valid JSON")}, OnInvalidInput, 0, "", "payload is not valid JSON"},
		{"invalid input, plain sentinel wrap", Evidence{Rejected: fmt.Errorf("%w: bad id", ErrInvalidInput)}, OnInvalidInput, 0, "", "bad id"},
		{"invalid workflow, wrapped twice", Evidence{Rejected: fmt.Errorf("a: %w", fmt.Errorf("b: %w", reject(ErrInvalidWorkflow, "workflow %q is not defined", "x")))}, OnInvalidWorkflow, 0, "", `workflow "x" is not defined`},
		{"unknown rejection", Evidence{Rejected: errors.New("something odd")}, OnError, 0, "", "something odd"},
		{"rejection wins over an ended context", Evidence{Rejected: reject(ErrInvalidInput, "x"), Err: context.Canceled, Cause: hangup}, OnInvalidInput, 0, "", "x"},

		// 2. Successful answers.
		{"200 JSON compacted", Evidence{Status: 200, Body: []byte("{ \"found\" : true,\n \"id\": 7 }")}, OnSuccess, 200, `{"found":true,"id":7}`, ""},
		{"200 empty body", Evidence{Status: 200}, OnSuccess, 200, "", ""},
		{"204 no content", Evidence{Status: 204, Body: []byte{}}, OnSuccess, 204, "", ""},
		{"200 whitespace only", Evidence{Status: 200, Body: []byte(" \r\n\t")}, OnSuccess, 200, "", ""},
		{"201 JSON array", Evidence{Status: 201, Body: []byte(`[1, 2]`)}, OnSuccess, 201, `[1,2]`, ""},
		{"200 JSON string scalar", Evidence{Status: 200, Body: []byte(` "ok" `)}, OnSuccess, 200, `"ok"`, ""},
		{"complete response stands after deadline passed", Evidence{Status: 200, Body: []byte(`{}`), Cause: ErrStepTimeout}, OnSuccess, 200, `{}`, ""},

		// 3. Bad answers.
		{"200 invalid JSON", Evidence{Status: 200, Body: []byte(`{"found":tru`)}, OnError, 200, "", "not valid JSON"},
		{"200 two JSON values", Evidence{Status: 200, Body: []byte(`{} {}`)}, OnError, 200, "", "not valid JSON"},
		{"200 HTML", Evidence{Status: 200, Body: []byte(`<html>oops</html>`)}, OnError, 200, "", "not valid JSON"},
		{"500 with JSON error document", Evidence{Status: 500, Body: []byte(`{"error": "db down"}`)}, OnError, 500, `{"error":"db down"}`, "500 Internal Server Error"},
		{"503 after retries", Evidence{Status: 503, Attempts: 3}, OnError, 503, "", "503 Service Unavailable"},
		{"404 not configured is OnError", Evidence{Status: 404, Body: []byte("not found")}, OnError, 404, "", "404 Not Found"},
		{"404 configured is OnInvalidWorkflow", Evidence{Status: 404, InvalidWorkflowStatus: inv404}, OnInvalidWorkflow, 404, "", "no such workflow"},
		{"410 configured, JSON kept", Evidence{Status: 410, Body: []byte(`{"gone": true}`), InvalidWorkflowStatus: inv404}, OnInvalidWorkflow, 410, `{"gone":true}`, "410 Gone"},
		{"404 configured, body timed out", Evidence{Status: 404, Err: io.ErrUnexpectedEOF, Cause: ErrStepTimeout, InvalidWorkflowStatus: inv404}, OnInvalidWorkflow, 404, "", "no such workflow"},
		{"unknown status 299 with JSON", Evidence{Status: 299, Body: []byte(`{}`)}, OnSuccess, 299, `{}`, ""},
		{"oversized 2xx body", Evidence{Status: 200, Err: fmt.Errorf("read: %w", tooLarge)}, OnError, 200, "", "over max_response_bytes"},
		{"redirect to another host refused", Evidence{Status: 302, Err: fmt.Errorf("giving up: %w", redirect), Attempts: 1}, OnError, 302, "", "another origin"},
		{"redirect loop", Evidence{Status: 302, Err: loop}, OnError, 302, "", "more than 3 times"},
		{"breaker open", Evidence{Err: ErrBreakerOpen}, OnError, 0, "", "circuit breaker open"},
		{"status 0 without error", Evidence{}, OnError, 0, "", "no response"},

		// 4. Transport errors after retries.
		{"refused, url.Error, wrapped", Evidence{Err: fmt.Errorf("POST giving up after 3 attempt(s): %w", urlErr(refused)), Attempts: 3}, OnError, 0, "", "refused the connection (3 attempts)"},
		{"refused, bare errno", Evidence{Err: syscall.ECONNREFUSED}, OnError, 0, "", "refused the connection"},
		{"DNS failure", Evidence{Err: urlErr(&net.OpError{Op: "dial", Net: "tcp", Err: dnsErr})}, OnError, 0, "", "host name lookup failed"},
		{"reset", Evidence{Err: urlErr(reset)}, OnError, 0, "", "reset the connection"},
		{"EOF before response", Evidence{Err: urlErr(io.EOF)}, OnError, 0, "", "without a complete answer"},
		{"unexpected EOF in body", Evidence{Status: 200, Err: io.ErrUnexpectedEOF}, OnError, 200, "", "without a complete answer"},
		{"TLS unknown authority", Evidence{Err: urlErr(x509.UnknownAuthorityError{})}, OnError, 0, "", "TLS certificate"},
		{"attempt timeout, no step deadline", Evidence{Err: urlErr(context.DeadlineExceeded)}, OnError, 0, "", "attempt timeout"},
		{"read timeout, net.Error", Evidence{Err: urlErr(readTimeout)}, OnError, 0, "", "attempt timeout"},
		{"other error hides the URL", Evidence{Err: urlErr(errors.New("malformed HTTP response"))}, OnError, 0, "", "CRM request failed: malformed HTTP response"},

		// 5. Context: deadline versus hangup.
		{"step deadline", Evidence{Err: urlErr(context.DeadlineExceeded), Cause: ErrStepTimeout}, OnTimeout, 0, "", "before the step timeout"},
		{"step deadline, wrapped cause", Evidence{Err: fmt.Errorf("x: %w", context.DeadlineExceeded), Cause: stepTimeout}, OnTimeout, 0, "", "before the step timeout"},
		{"deadline during back-off", Evidence{Err: context.DeadlineExceeded, Cause: ErrStepTimeout, Attempts: 2}, OnTimeout, 0, "", "step timeout"},
		{"deadline while reading body", Evidence{Status: 200, Err: urlErr(context.DeadlineExceeded), Cause: ErrStepTimeout}, OnTimeout, 200, "", "step timeout"},
		{"hangup with cause", Evidence{Err: urlErr(context.Canceled), Cause: hangup}, "", 0, "", ""},
		{"hangup, plain cancel", Evidence{Err: context.Canceled, Cause: context.Canceled}, "", 0, "", ""},
		{"hangup, wrapped cause", Evidence{Err: urlErr(context.Canceled), Cause: fmt.Errorf("call: %w", hangup)}, "", 0, "", ""},
		{"caller's own deadline is not the step timeout", Evidence{Err: context.DeadlineExceeded, Cause: context.DeadlineExceeded}, "", 0, "", ""},
		{"hangup beats invalid-workflow status", Evidence{Status: 404, Err: io.ErrUnexpectedEOF, Cause: hangup, InvalidWorkflowStatus: inv404}, "", 404, "", ""},
	}
	if len(tests) < 25 {
		t.Fatalf("table has %d rows", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Classify(tt.ev)
			if tt.branch == "" {
				if !res.Hangup || res.Branch != "" || res.Err != nil {
					t.Fatalf("got %+v, want hangup", res)
				}
				return
			}
			if res.Hangup || res.Branch != tt.branch {
				t.Fatalf("branch = %q (hangup %v), want %q; err %v", res.Branch, res.Hangup, tt.branch, res.Err)
			}
			if res.Status != tt.status {
				t.Errorf("status = %d, want %d", res.Status, tt.status)
			}
			if string(res.Body) != tt.body {
				t.Errorf("body = %q, want %q", res.Body, tt.body)
			}
			if tt.branch == OnSuccess {
				if res.Err != nil {
					t.Errorf("success with error %v", res.Err)
				}
				return
			}
			if res.Err == nil {
				t.Fatal("no StepError")
			}
			if res.Err.Branch != tt.branch || res.Err.Status != tt.status {
				t.Errorf("StepError = %+v", res.Err)
			}
			if !strings.Contains(res.Err.Message, tt.message) {
				t.Errorf("message %q does not contain %q", res.Err.Message, tt.message)
			}
			if strings.Contains(res.Err.Message, "crm.example:8080") || strings.Contains(res.Err.Message, "1235550100") {
				t.Errorf("message %q leaks the URL", res.Err.Message)
			}
		})
	}
}

func TestStepErrorJSONAndUnwrap(t *testing.T) {
	res := Classify(Evidence{Status: 500})
	b, err := json.Marshal(res.Err)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"branch":"OnError","message":"CRM answered 500 Internal Server Error","status":500}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	res = Classify(Evidence{Err: urlErr(&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED})})
	b, _ = json.Marshal(res.Err)
	if strings.Contains(string(b), "status") {
		t.Errorf("status present without HTTP status: %s", b)
	}
	if !errors.Is(res.Err, syscall.ECONNREFUSED) {
		t.Error("StepError does not unwrap to the transport error")
	}
	var se *StepError
	if !errors.As(fmt.Errorf("step: %w", res.Err), &se) || se.Branch != OnError {
		t.Error("errors.As does not find the StepError")
	}
	rej := Classify(Evidence{Rejected: reject(ErrInvalidWorkflow, "nope")})
	if !errors.Is(rej.Err, ErrInvalidWorkflow) {
		t.Error("rejection StepError does not unwrap to its sentinel")
	}
}
