package crm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/eslapp/eslapp/conf"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// fixtureBaseURL is the URL fixture requests are made to; .invalid
// (RFC 2606) never resolves, so a fixture cannot reach a network by mistake.
const fixtureBaseURL = "http://fixture.invalid"

// fixtureTransport answers a fixture integration's requests from its rules.
// It sits where the network transport would, so retries, timeouts, body
// limits, the breaker and the classifier work exactly as for a real CRM.
type fixtureTransport struct {
	workflows map[string][]fixtureRule // by escaped workflow id, e.g. "/search-by-phone"
}

type fixtureRule struct {
	match   map[string]string // field -> path.Match pattern
	status  int
	body    []byte
	headers http.Header
	delay   time.Duration
	fail    string // "", "reset", "refused", "timeout"
}

func (ft *fixtureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var payload []byte
	if req.Body != nil {
		var err error
		payload, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	rules := ft.workflows[req.URL.EscapedPath()]
	rule, ok := pickRule(rules, payload)
	if !ok {
		// Like a server without the route: the classifier decides what a
		// 404 means (OnError unless listed in invalid_workflow_status).
		return fixtureResponse(req, &fixtureRule{status: http.StatusNotFound}), nil
	}
	ctx := req.Context()
	if rule.fail == "timeout" {
		<-ctx.Done()
		return nil, context.Cause(ctx)
	}
	if err := sleepCtx(ctx, rule.delay); err != nil {
		return nil, err
	}
	switch rule.fail {
	case "reset":
		return nil, &net.OpError{Op: "read", Net: "tcp", Addr: fixtureAddr{}, Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	case "refused":
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: fixtureAddr{}, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	return fixtureResponse(req, rule), nil
}

func fixtureResponse(req *http.Request, rule *fixtureRule) *http.Response {
	h := rule.headers.Clone()
	if h == nil {
		h = http.Header{}
	}
	if len(rule.body) > 0 && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	return &http.Response{
		Status:        strconv.Itoa(rule.status) + " " + http.StatusText(rule.status),
		StatusCode:    rule.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(rule.body)),
		ContentLength: int64(len(rule.body)),
		Request:       req,
	}
}

// pickRule returns the first rule whose every match pattern fits the
// payload's top-level field of that name.
func pickRule(rules []fixtureRule, payload []byte) (*fixtureRule, bool) {
	var fields map[string]json.RawMessage
	parsed := false
	for i := range rules {
		r := &rules[i]
		if len(r.match) == 0 {
			return r, true
		}
		if !parsed {
			parsed = true
			_ = json.Unmarshal(payload, &fields) // not an object: no field matches
		}
		if matchFields(r.match, fields) {
			return r, true
		}
	}
	return nil, false
}

func matchFields(match map[string]string, fields map[string]json.RawMessage) bool {
	for name, pattern := range match {
		raw, ok := fields[name]
		if !ok {
			return false
		}
		v, ok := scalarText(raw)
		if !ok {
			return false
		}
		if m, _ := path.Match(pattern, v); !m {
			return false
		}
	}
	return true
}

// scalarText is a JSON scalar as text: a string's content, a number's
// literal, true, false or null. Objects and arrays never match.
func scalarText(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '{', '[':
		return "", false
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	}
	return string(raw), true
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

type fixtureAddr struct{}

func (fixtureAddr) Network() string { return "tcp" }
func (fixtureAddr) String() string  { return "fixture" }

// compileRule checks one configured rule. key is its path, for errors.
func compileRule(r FixtureRule, key []string, res conf.Resolver, errs *FieldErrors) fixtureRule {
	add := func(sub string, format string, args ...any) {
		*errs = append(*errs, &FieldError{Key: append(append([]string(nil), key...), sub), Msg: fmt.Sprintf(format, args...)})
	}
	out := fixtureRule{status: r.Status, fail: r.Error, delay: time.Duration(r.DelayMS) * time.Millisecond}
	switch r.Error {
	case "", "reset", "refused", "timeout":
	default:
		add("error", "must be \"reset\", \"refused\" or \"timeout\", not %q", conf.Clip(r.Error, 40))
	}
	if r.Error != "" && (r.Status != 0 || r.Body != "" || r.BodyFile != "") {
		add("error", "a rule that fails with an error has no status or body")
	}
	if out.status == 0 {
		out.status = http.StatusOK
	} else if out.status < 200 || out.status > 599 {
		add("status", "must be an HTTP status from 200 to 599, not %d", r.Status)
	}
	if err := CheckMs(int64(r.DelayMS), "no delay"); err != nil {
		add("delay_ms", "%v", err)
	}
	switch {
	case r.Body != "" && r.BodyFile != "":
		add("body_file", "set body or body_file, not both")
	case r.BodyFile != "":
		data, err := readLimited(res.Path(r.BodyFile), 16<<20)
		if err != nil {
			add("body_file", "%v", err)
		}
		out.body = data
	default:
		out.body = []byte(r.Body)
	}
	if len(r.Match) > 0 {
		out.match = make(map[string]string, len(r.Match))
	}
	for name, v := range r.Match {
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case bool:
			s = strconv.FormatBool(v)
		case int64:
			s = strconv.FormatInt(v, 10)
		case int:
			s = strconv.Itoa(v)
		case float64:
			s = strconv.FormatFloat(v, 'g', -1, 64)
		default:
			add("match", "%s: must be a string, number or boolean", name)
			continue
		}
		if _, err := path.Match(s, ""); err != nil {
			add("match", "%s: %q is not a valid pattern (path.Match syntax: *, ?, [a-z], \\ escapes)", name, conf.Clip(s, 80))
			continue
		}
		out.match[name] = s
	}
	for name, v := range r.Headers {
		if !validHeaderName(name) || strings.ContainsAny(v, "\r\n\x00") {
			add("headers", "%q: not a valid response header", conf.Clip(name, 60))
			continue
		}
		if out.headers == nil {
			out.headers = http.Header{}
		}
		out.headers.Set(name, v)
	}
	return out
}

func readLimited(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, limit)
	}
	return data, nil
}
