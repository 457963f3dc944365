package crm

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// Branch is the outcome of a Workflow Execute step. The names are
// part of the public contract: flows wire them and the dialplan routes on them.
type Branch string

// The six outcomes, in the order the classifier checks them.
const (
	OnAgentIntegrationDisabled Branch = "OnAgentIntegrationDisabled"
	OnInvalidInput             Branch = "OnInvalidInput"
	OnInvalidWorkflow          Branch = "OnInvalidWorkflow"
	OnTimeout                  Branch = "OnTimeout"
	OnSuccess                  Branch = "OnSuccess"
	OnError                    Branch = "OnError"
)

// IsBranch reports whether s is one of the six outcome names.
func IsBranch(s string) bool {
	switch Branch(s) {
	case OnAgentIntegrationDisabled, OnInvalidInput, OnInvalidWorkflow, OnTimeout, OnSuccess, OnError:
		return true
	}
	return false
}

// Sentinel errors for the kinds of failure the classifier tells apart. They
// always arrive wrapped; test with errors.Is.
var (
	// ErrAgentIntegrationDisabled: the tenant has agent_integrations = false
	// or the integration has enabled = false.
	ErrAgentIntegrationDisabled = errors.New("crm: agent integrations disabled")
	// ErrInvalidInput: a step input failed validation; nothing was sent.
	ErrInvalidInput = errors.New("crm: invalid input")
	// ErrInvalidWorkflow: the workflow is not defined or disabled.
	ErrInvalidWorkflow = errors.New("crm: invalid workflow")
	// ErrStepTimeout is the cause of a step context whose timeout expired. It
	// is how the classifier tells the step's deadline from a hangup.
	ErrStepTimeout = errors.New("crm: step timeout")
	// ErrBreakerOpen: the integration's circuit breaker refused the request.
	ErrBreakerOpen = errors.New("crm: CRM unavailable (circuit breaker open)")
	// ErrResponseTooLarge: the body exceeded max_response_bytes.
	ErrResponseTooLarge = errors.New("crm: response too large")
	// ErrRedirectRefused: a redirect to another origin, or one that would
	// change the method, was not followed.
	ErrRedirectRefused = errors.New("crm: redirect refused")
	// ErrTooManyRedirects: more redirects than max_redirects.
	ErrTooManyRedirects = errors.New("crm: too many redirects")
)

// StepError is the error value a step stores in its error variable; its JSON
// form is what the dialplan and flows read from the error variable:
// {"branch":..., "message":..., "status":...}.
// Message never holds secrets, header values, payloads or URLs.
type StepError struct {
	Branch  Branch `json:"branch"`
	Message string `json:"message"`
	Status  int    `json:"status,omitempty"` // HTTP status, 0 when none was received

	err error // the underlying error, for errors.Is/As; never serialised
}

func (e *StepError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s: %s (HTTP %d)", e.Branch, e.Message, e.Status)
	}
	return fmt.Sprintf("%s: %s", e.Branch, e.Message)
}

// Unwrap gives the error that led to this outcome, when there was one.
func (e *StepError) Unwrap() error { return e.err }

// Evidence is everything known about one step when its outcome is decided.
// Execute fills it; Classify is the only place that turns it into a Branch.
type Evidence struct {
	// Rejected is the validation result: nil when the request may be sent,
	// otherwise an error wrapping ErrAgentIntegrationDisabled,
	// ErrInvalidInput or ErrInvalidWorkflow.
	Rejected error
	// Err is what the client returned after retries, or what reading the
	// body returned; nil when a complete response was read.
	Err error
	// Cause is context.Cause of the step's context if it had ended when the
	// request returned, else nil. ErrStepTimeout means the step timed out;
	// any other cause means the caller's context ended (hangup, shutdown).
	Cause error
	// Status is the final HTTP status, 0 when none was received.
	Status int
	// Body is the complete response body; meaningful only when Err is nil.
	Body []byte
	// InvalidWorkflowStatus is the integration's invalid_workflow_status.
	InvalidWorkflowStatus []int
	// Attempts is the number of HTTP attempts made.
	Attempts int
}

// Classify decides the step's single outcome, in the order of the Branch
// constants: a rejection first (disabled, invalid input, invalid workflow),
// then what the request met. It
// is pure: the same evidence always gives the same result. The result has no
// Latency; Execute adds it.
func Classify(ev Evidence) Result {
	res := Result{Status: ev.Status, Attempts: ev.Attempts}
	fail := func(b Branch, msg string, err error) Result {
		res.Branch = b
		res.Err = &StepError{Branch: b, Message: msg, Status: ev.Status, err: err}
		return res
	}

	if ev.Rejected != nil {
		msg := rejectionMessage(ev.Rejected)
		switch {
		case errors.Is(ev.Rejected, ErrAgentIntegrationDisabled):
			return fail(OnAgentIntegrationDisabled, msg, ev.Rejected)
		case errors.Is(ev.Rejected, ErrInvalidInput):
			return fail(OnInvalidInput, msg, ev.Rejected)
		case errors.Is(ev.Rejected, ErrInvalidWorkflow):
			return fail(OnInvalidWorkflow, msg, ev.Rejected)
		default:
			return fail(OnError, msg, ev.Rejected)
		}
	}

	// An ended context only explains a failed request: a response read in
	// full before the deadline stands even if the deadline passed since.
	ctxEnded := ev.Err != nil && ev.Cause != nil
	if ctxEnded && !errors.Is(ev.Cause, ErrStepTimeout) {
		// The caller's context ended: no branch, the step engine records it.
		return Result{Hangup: true, Status: ev.Status, Attempts: ev.Attempts}
	}

	// The status alone says "no such workflow", whatever the body did.
	if ev.Status != 0 && slices.Contains(ev.InvalidWorkflowStatus, ev.Status) {
		res.Body = compactJSON(ev.Body, ev.Err)
		return fail(OnInvalidWorkflow, "CRM answered "+statusText(ev.Status)+": no such workflow", nil)
	}

	if ctxEnded {
		return fail(OnTimeout, "no answer from the CRM before the step timeout", ev.Err)
	}
	if ev.Err != nil {
		return fail(OnError, describe(ev.Err, ev.Attempts), ev.Err)
	}
	if ev.Status == 0 {
		return fail(OnError, "no response from the CRM", nil)
	}

	if ev.Status >= 200 && ev.Status <= 299 {
		if len(bytes.TrimSpace(ev.Body)) == 0 {
			res.Branch = OnSuccess
			return res
		}
		if body := compactJSON(ev.Body, nil); body != nil {
			res.Branch = OnSuccess
			res.Body = body
			return res
		}
		return fail(OnError, "CRM answered "+statusText(ev.Status)+" with a body that is not valid JSON", nil)
	}
	// Keep a JSON error document: flows may want to look at the CRM's reason.
	res.Body = compactJSON(ev.Body, nil)
	return fail(OnError, "CRM answered "+statusText(ev.Status), nil)
}

// compactJSON returns body as compact JSON, or nil when it is empty, not
// valid JSON, or was not read completely.
func compactJSON(body []byte, readErr error) json.RawMessage {
	if readErr != nil || len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	var buf bytes.Buffer
	buf.Grow(len(body))
	if err := json.Compact(&buf, body); err != nil {
		return nil
	}
	return buf.Bytes()
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// describe turns a transport error into a message for the error variable.
// It names the kind of failure, never the URL (which may hold caller data)
// nor any header.
func describe(err error, attempts int) string {
	suffix := ""
	if attempts > 1 {
		suffix = " (" + strconv.Itoa(attempts) + " attempts)"
	}
	var (
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		authErr x509.UnknownAuthorityError
		hostErr x509.HostnameError
		netErr  net.Error
		msgErr  *messageError
	)
	switch {
	case errors.Is(err, ErrBreakerOpen):
		return "CRM unavailable: circuit breaker open after repeated failures"
	case errors.As(err, &msgErr):
		return msgErr.msg + suffix
	case errors.Is(err, syscall.ECONNREFUSED):
		return "CRM refused the connection" + suffix
	case errors.As(err, &dnsErr):
		return "CRM host name lookup failed" + suffix
	case errors.Is(err, syscall.ECONNRESET):
		return "CRM reset the connection" + suffix
	case errors.As(err, &certErr), errors.As(err, &authErr), errors.As(err, &hostErr):
		return "CRM TLS certificate not accepted" + suffix
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "CRM closed the connection without a complete answer" + suffix
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		// The step deadline is handled by the caller of describe; this is
		// a per-attempt timeout or a network timeout.
		return "CRM did not answer within the attempt timeout" + suffix
	}
	return "CRM request failed: " + innermost(err) + suffix
}

// innermost strips *url.Error, whose text carries the request URL.
func innermost(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) && uerr.Err != nil {
		return uerr.Err.Error()
	}
	return err.Error()
}

// messageError carries a sentinel with a message made for the error
// variable (sizes, hosts), so describe need not parse error strings.
type messageError struct {
	kind error
	msg  string
}

func (e *messageError) Error() string { return e.kind.Error() + ": " + e.msg }
func (e *messageError) Unwrap() error { return e.kind }

func newMessageError(kind error, format string, args ...any) error {
	return &messageError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// rejectionMessage is the message of a validation failure without the
// sentinel's "crm: invalid input: " prefix.
func rejectionMessage(err error) string {
	var m *messageError
	if errors.As(err, &m) {
		return m.msg
	}
	return err.Error()
}

// reject builds a validation failure of the given kind.
func reject(kind error, format string, args ...any) error {
	return newMessageError(kind, format, args...)
}

// Result is the outcome of one step: exactly one of a Branch or Hangup.
type Result struct {
	// Branch is the outcome; empty only when Hangup is true.
	Branch Branch
	// Body is the CRM's response body as compact JSON, nil when there was
	// none or it was not JSON. Set on OnSuccess, and on OnError or
	// OnInvalidWorkflow when the CRM sent a JSON error document.
	Body json.RawMessage
	// Err is the error variable's value; nil on OnSuccess and on Hangup.
	Err *StepError
	// Status is the final HTTP status, 0 when none was received.
	Status int
	// Latency is the time Execute took, from validation to outcome.
	Latency time.Duration
	// Attempts is the number of HTTP requests sent (0 when none was).
	Attempts int
	// Hangup reports that the caller's context ended first (hangup,
	// shutdown): there is no branch, and nothing should be sent to the call.
	Hangup bool
}
