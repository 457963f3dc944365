package crm

import (
	"bytes"
	"context"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"github.com/eslapp/eslapp/conf"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Back-off between attempts when the CRM gives no Retry-After: exponential
// from retryWaitMin, capped at retryWaitMax, with jitter so that 200 calls
// failing together do not retry together.
const (
	retryWaitMin = 100 * time.Millisecond
	retryWaitMax = 1 * time.Second
)

// idempotencyHeader is written in lower case on purpose. net/http replays a
// request on a reused keep-alive connection that the server closed before
// answering if the request "is replayable" — and it deems any request with
// an "Idempotency-Key" map entry replayable, even a POST the server may
// already have processed. The lower-case key is the same header on the wire
// (names are case-insensitive; HTTP/2 lower-cases them anyway) but is not
// that map entry, so the transport only replays a POST when it wrote
// nothing, which is the guarantee this package gives: a POST that may have
// reached the CRM is never sent twice.
const idempotencyHeader = "idempotency-key"

// roundTrip sends the request with retries and reads the response. ctx is
// the step context: its deadline covers every attempt, every back-off and
// the body.
func (s *Service) roundTrip(ctx context.Context, in *integration, wf *workflow, req Request, target string) Evidence {
	ev := Evidence{InvalidWorkflowStatus: in.invalidStatus}
	var body any // nil: no body
	if len(req.Payload) > 0 && wf.method != http.MethodGet {
		body = req.Payload
	}
	rreq, err := retryablehttp.NewRequestWithContext(ctx, wf.method, target, body)
	if err != nil {
		ev.Err = err
		return ev
	}
	h := rreq.Header
	h["User-Agent"] = []string{"eslapp"}
	h["Accept"] = []string{"application/json"}
	if body != nil {
		h["Content-Type"] = []string{"application/json"}
	}
	for _, hd := range in.headers {
		h[hd.name] = []string{hd.value.Reveal()}
	}
	for _, hd := range wf.headers {
		h[hd.name] = []string{hd.value.Reveal()}
	}
	h[idempotencyHeader] = []string{idempotencyKey(req)}
	if req.CallUUID != "" && len(req.CallUUID) <= 128 && validHeaderValue(req.CallUUID) {
		h["X-Request-Id"] = []string{req.CallUUID}
	}

	pol := &retryPolicy{safe: wf.method == http.MethodGet}
	client := &retryablehttp.Client{
		HTTPClient:     in.client,
		RetryMax:       in.retries,
		RetryWaitMin:   retryWaitMin,
		RetryWaitMax:   retryWaitMax,
		CheckRetry:     pol.check,
		Backoff:        pol.backoff,
		ErrorHandler:   keepLastResponse,
		RequestLogHook: pol.count,
	}
	// Left nil, retryablehttp logs nothing; the adapter is only built when
	// someone reads debug lines, so the common path allocates nothing for it.
	if s.log.Enabled(ctx, slog.LevelDebug) {
		client.Logger = retryLog{ctx: ctx, log: s.log.With("call", req.CallUUID, "config", in.id, "workflow", wf.id)}
	}

	resp, err := client.Do(rreq)
	ev.Attempts = pol.attempts
	if err != nil {
		if resp != nil {
			// A refused redirect returns the redirect response too.
			ev.Status = resp.StatusCode
			resp.Body.Close()
		}
		ev.Err = scrubURL(err, target)
		return ev
	}
	ev.Status = resp.StatusCode
	ev.Body, ev.Err = readBody(resp, in.maxResponse)
	return ev
}

// keepLastResponse replaces retryablehttp's default, which drops the last
// response when retries run out: a third 503 should reach the error
// variable as status 503, not as "giving up after 3 attempts".
func keepLastResponse(resp *http.Response, err error, _ int) (*http.Response, error) {
	if err != nil && resp != nil {
		resp.Body.Close()
	}
	return resp, err
}

// readBody reads at most limit bytes. Over the limit it stops reading (the
// connection is then closed rather than drained) and fails. The buffer
// grows with what arrives: a declared Content-Length only refuses a body
// over the limit early, it never sizes an allocation (a CRM that declares
// 60 MiB and sends nothing would otherwise cost 60 MiB per step).
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	defer resp.Body.Close()
	if resp.ContentLength > limit {
		return nil, newMessageError(ErrResponseTooLarge, "CRM response of %d bytes is over max_response_bytes (%d)", resp.ContentLength, limit)
	}
	if resp.ContentLength == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(min(resp.ContentLength, initialBodyBuffer)))
	}
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, newMessageError(ErrResponseTooLarge, "CRM response is over max_response_bytes (%d)", limit)
	}
	if resp.ContentLength > 0 && int64(buf.Len()) < resp.ContentLength {
		return nil, io.ErrUnexpectedEOF
	}
	return buf.Bytes(), nil
}

// initialBodyBuffer is the most a declared Content-Length reserves up
// front; a larger body grows the buffer as its bytes arrive.
const initialBodyBuffer = 64 << 10

// retryPolicy decides, per step, whether an attempt is repeated.
// retryablehttp calls check and then backoff from the same goroutine.
type retryPolicy struct {
	safe     bool // GET: may be repeated whatever happened
	attempts int
	wait     time.Duration
}

func (p *retryPolicy) count(_ retryablehttp.Logger, _ *http.Request, i int) { p.attempts = i + 1 }

func (p *retryPolicy) backoff(_, _ time.Duration, _ int, _ *http.Response) time.Duration {
	return p.wait
}

// check retries:
//   - any method, when the request surely did not reach the CRM (connection
//     refused, name lookup failed, any dial error) or the CRM said it did
//     not take it (429, 503), honouring Retry-After;
//   - GET also after other transport errors and 5xx (except 501).
//
// It never waits past the step deadline: if the wait would end after it,
// the last answer stands (a 503 is OnError with status 503, not OnTimeout).
func (p *retryPolicy) check(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	var wait time.Duration
	switch {
	case err != nil:
		if !retryableError(err, p.safe) {
			return false, nil
		}
		wait = jitterBackoff(p.attempts)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		if !ok {
			d = jitterBackoff(p.attempts)
		}
		wait = d
	case p.safe && resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		wait = jitterBackoff(p.attempts)
	default:
		return false, nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
		return false, nil
	}
	p.wait = wait
	return true, nil
}

func jitterBackoff(attempt int) time.Duration {
	d := retryWaitMin << min(attempt, 10)
	if d > retryWaitMax || d <= 0 {
		d = retryWaitMax
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter parses Retry-After: delay-seconds or an HTTP date (RFC 9110
// §10.2.3). A date in the past means "now".
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 || secs > 86400 {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// retryableError: refused redirects and TLS failures never heal by
// retrying; errors from before the request was written are always safe to
// retry; anything else only for GET.
func retryableError(err error, safe bool) bool {
	if errors.Is(err, ErrRedirectRefused) || errors.Is(err, ErrTooManyRedirects) || tlsFailure(err) {
		return false
	}
	return notSent(err) || safe
}

// notSent reports errors that prove no byte of the request left: the
// connection was never made.
func notSent(err error) bool {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) ||
		errors.As(err, &dnsErr) ||
		errors.As(err, &opErr) && opErr.Op == "dial"
}

func tlsFailure(err error) bool {
	var (
		certErr *tls.CertificateVerificationError
		authErr x509.UnknownAuthorityError
		hostErr x509.HostnameError
		recErr  tls.RecordHeaderError
	)
	return errors.As(err, &certErr) || errors.As(err, &authErr) || errors.As(err, &hostErr) || errors.As(err, &recErr)
}

// checkRedirect follows redirects only within the origin of the first
// request, only when the method stays the same (a 302 would turn a POST into
// a GET without its payload), and at most max times.
func checkRedirect(maxRedirects int) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		first := via[0]
		switch {
		case req.URL.Scheme != first.URL.Scheme || req.URL.Host != first.URL.Host:
			return newMessageError(ErrRedirectRefused, "CRM redirected to another origin (%s://%s); not followed", req.URL.Scheme, conf.Clip(req.URL.Host, 80))
		case req.Method != first.Method:
			return newMessageError(ErrRedirectRefused, "CRM redirected %s to %s; not followed", first.Method, req.Method)
		case len(via) > maxRedirects:
			return newMessageError(ErrTooManyRedirects, "CRM redirected more than %d times", maxRedirects)
		}
		return nil
	}
}

// idempotencyKey is the same for every attempt of one step of one call, so
// a CRM that honours Idempotency-Key never creates two tickets for it. The
// step engine gives each execution of a step its own StepID (a flow that
// loops back to a step means a new request). Without either id the key is
// random: still stable across the retries of this Execute.
func idempotencyKey(req Request) string {
	if req.CallUUID == "" && req.StepID == "" {
		var b [16]byte
		_, _ = cryptorand.Read(b[:])
		return hex.EncodeToString(b[:])
	}
	var buf [256]byte
	b := append(buf[:0], "eslapp-wfe"...)
	for _, part := range [...]string{req.CallUUID, req.StepID, req.ConfigID, req.WorkflowID} {
		b = append(append(b, 0), part...)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// retryLog adapts slog to retryablehttp.LeveledLogger. Everything it says
// is per-attempt detail, so it all goes to debug: the step's one summary
// line comes from Execute. The URL holds caller data (a phone number in a
// path): it drops the "url" and "request" values, and logs an error
// without the *url.Error around it, whose text repeats the URL;
// retryablehttp never logs headers.
type retryLog struct {
	ctx context.Context
	log *slog.Logger
}

var _ retryablehttp.LeveledLogger = retryLog{}

func (l retryLog) Error(msg string, kv ...any) { l.emit(msg, kv) }
func (l retryLog) Info(msg string, kv ...any)  { l.emit(msg, kv) }
func (l retryLog) Debug(msg string, kv ...any) { l.emit(msg, kv) }
func (l retryLog) Warn(msg string, kv ...any)  { l.emit(msg, kv) }

func (l retryLog) emit(msg string, kv []any) {
	args := make([]any, 0, len(kv))
	for i := 0; i+1 < len(kv); i += 2 {
		if k, _ := kv[i].(string); k == "url" || k == "request" {
			continue
		}
		v := kv[i+1]
		if err, ok := v.(error); ok {
			v = innermost(err)
		}
		args = append(args, kv[i], v)
	}
	l.log.Log(l.ctx, slog.LevelDebug, "crm: "+msg, args...)
}
