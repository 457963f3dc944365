package crm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/eslapp/eslapp/conf"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// Request is one Workflow Execute step, with its inputs already rendered.
type Request struct {
	Tenant     string // the call's wfe_tenant; "" means "default"
	ConfigID   string
	WorkflowID string
	// Payload is the rendered JSON sent as the body (not for GET). Empty
	// means "no payload": nothing is sent. Execute does not modify it; the
	// caller must not either until Execute returns.
	Payload []byte
	// Timeout is the step timeout; 0 means the integration's timeout_ms,
	// else DefaultTimeout. The step engine gets it from Service.Timeout.
	Timeout time.Duration
	// CallUUID correlates logs and the CRM's logs (X-Request-Id). With
	// StepID it makes the Idempotency-Key.
	CallUUID string
	// StepID names this execution of the step within the call (for
	// example the flow action's name, plus a counter if the flow can come
	// back to it).
	StepID string
	// PathVars gives the values of the {var} references in the workflow's
	// path; nil when there are none.
	PathVars func(name string) (string, bool)
	// InputError is a problem the caller found in the step's other inputs:
	// a prompt sequence that does not parse, a payload template that cannot
	// be rendered. The step is OnInvalidInput, unless agent integrations
	// are disabled for the tenant or the integration (that outcome ranks
	// first); nothing is sent.
	InputError error
	// LateWindow, when above 0, keeps the request open that long past the
	// step timeout, and past the caller's hangup: the step still ends
	// OnTimeout (or Hangup) on time, and an answer that comes within the
	// window is given to OnLate, from another goroutine (OnTimeout when
	// none came: OnLate is called once either way). Zero (the
	// default): the request is cancelled at the timeout and at a hangup.
	LateWindow time.Duration
	OnLate     func(Result)
}

// Service executes workflows for every configured integration. It is safe
// for concurrent use and holds one connection pool per integration.
type Service struct {
	log          *slog.Logger
	now          func() time.Time
	onBreaker    func(configID, workflowID string, from, to BreakerState)
	tenants      map[string]bool // tenant -> agent integrations enabled
	integrations map[string]*integration
	// lateSlots bounds the requests kept open past their step for a late
	// result (a request takes a slot until it ends; without one the step
	// runs without a window); late counts those still open.
	lateSlots chan struct{}
	late      sync.WaitGroup
}

// MaxLateRequests bounds the requests one Service keeps open for late
// results at once: each holds a connection to the CRM (or an HTTP/2
// stream) for up to the step timeout plus its window.
const MaxLateRequests = 1024

// WaitLate waits until the requests kept open for late results have ended
// and their results are delivered, or ctx ends; it reports how many were
// still open then.
func (s *Service) WaitLate(ctx context.Context) int {
	done := make(chan struct{})
	go func() { s.late.Wait(); close(done) }()
	select {
	case <-done:
		return 0
	case <-ctx.Done():
		return len(s.lateSlots)
	}
}

// PathVars are the variable names the workflow paths of every integration
// read ({var} in path), for the calls that must keep them.
func (s *Service) PathVars() []string {
	var names []string
	for _, in := range s.integrations {
		for _, wf := range in.workflows {
			names = append(names, wf.path.vars()...)
			names = append(names, queryVars(wf.query)...)
		}
	}
	return names
}

// New checks cfg, resolves its secrets and builds the service. On error it
// returns FieldErrors listing every problem found.
func New(cfg Config, opts Options) (*Service, error) {
	tenants, integrations, errs := load(cfg, opts)
	if len(errs) > 0 {
		for _, in := range integrations {
			if in.transport != nil {
				in.transport.CloseIdleConnections()
			}
		}
		return nil, errs
	}
	s := &Service{
		log:          opts.Logger,
		now:          opts.Now,
		onBreaker:    opts.OnBreakerChange,
		tenants:      tenants,
		integrations: integrations,
		lateSlots:    make(chan struct{}, MaxLateRequests),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Close closes idle connections. Steps still running finish normally.
func (s *Service) Close() {
	for _, in := range s.integrations {
		if in.transport != nil {
			in.transport.CloseIdleConnections()
		}
	}
}

// Execute runs one step and returns its single outcome: a Branch, or
// Hangup when ctx (the call's context) ended first. ctx's cancellation
// cancels the HTTP request; the step's own timeout is applied inside.
func (s *Service) Execute(ctx context.Context, req Request) Result {
	start := time.Now()
	in, wf, target, rejected := s.prepare(req)
	var ev Evidence
	if rejected != nil {
		ev.Rejected = rejected
	} else {
		ev = s.send(ctx, in, wf, req, target)
	}
	res := Classify(ev)
	res.Latency = time.Since(start)
	s.logResult(ctx, req, res)
	return res
}

// Precheck runs the checks Execute makes before sending anything (disabled
// integrations, invalid input, undefined workflows, in that order). When one
// rejects the request it returns that outcome and true, without a request
// or a log line; the step engine uses it to decide without starting a
// prompt. Execute checks again: Precheck is an optimisation, not a gate.
func (s *Service) Precheck(req Request) (Result, bool) {
	_, _, _, rejected := s.prepare(req)
	if rejected == nil {
		return Result{}, false
	}
	return Classify(Evidence{Rejected: rejected}), true
}

// prepare validates the request in the order the outcomes rank (disabled
// tenant or integration, invalid input, undefined workflow) and builds the
// URL. It sends nothing.
func (s *Service) prepare(req Request) (*integration, *workflow, string, error) {
	tenant := req.Tenant
	if tenant == "" {
		tenant = DefaultTenant
	}
	agents, tenantKnown := s.tenants[tenant]
	if tenantKnown && !agents {
		return nil, nil, "", reject(ErrAgentIntegrationDisabled, "agent integrations are disabled for tenant %q", tenant)
	}
	in := s.integrations[req.ConfigID]
	if in != nil && in.tenant != tenant {
		in = nil // another tenant's integration does not exist for this call
	}
	if tenantKnown && in != nil && !in.enabled {
		return nil, nil, "", reject(ErrAgentIntegrationDisabled, "integration %q is disabled", in.id)
	}
	if req.InputError != nil {
		// Inputs the step engine checked itself (a prompt sequence, a
		// template): invalid input, ranked after the disabled checks.
		return nil, nil, "", reject(ErrInvalidInput, "%s", conf.Clip(req.InputError.Error(), 200))
	}

	switch {
	case !tenantKnown:
		return nil, nil, "", reject(ErrInvalidInput, "unknown tenant %q", conf.Clip(tenant, 64))
	case req.ConfigID == "":
		return nil, nil, "", reject(ErrInvalidInput, "configuration id is empty")
	case !ValidID(req.ConfigID):
		return nil, nil, "", reject(ErrInvalidInput, "configuration id %q is malformed", conf.Clip(req.ConfigID, 64))
	case in == nil:
		return nil, nil, "", reject(ErrInvalidInput, "configuration id %q is not defined for tenant %q", req.ConfigID, tenant)
	case req.WorkflowID == "":
		return nil, nil, "", reject(ErrInvalidInput, "workflow id is empty")
	case !ValidID(req.WorkflowID):
		return nil, nil, "", reject(ErrInvalidInput, "workflow id %q is malformed", conf.Clip(req.WorkflowID, 64))
	case len(req.Payload) > in.maxPayload:
		return nil, nil, "", reject(ErrInvalidInput, "payload is %d bytes, over the limit of %d", len(req.Payload), in.maxPayload)
	case len(req.Payload) > 0 && !json.Valid(req.Payload):
		return nil, nil, "", reject(ErrInvalidInput, "payload is not valid JSON")
	}

	wf := in.workflows[req.WorkflowID]
	switch {
	case wf == nil:
		return nil, nil, "", reject(ErrInvalidWorkflow, "workflow %q is not defined for configuration %q", req.WorkflowID, in.id)
	case !wf.enabled:
		return nil, nil, "", reject(ErrInvalidWorkflow, "workflow %q of configuration %q is disabled", req.WorkflowID, in.id)
	}
	p, err := wf.path.expand(req.PathVars)
	if err != nil {
		return nil, nil, "", err
	}
	q, err := expandQuery(wf.query, req.PathVars)
	if err != nil {
		return nil, nil, "", err
	}
	u, err := joinURL(in.base, p, q)
	if err != nil {
		return nil, nil, "", err
	}
	return in, wf, u.String(), nil
}

// send asks the breaker, then makes the request under the step timeout.
func (s *Service) send(ctx context.Context, in *integration, wf *workflow, req Request, target string) Evidence {
	if err := ctx.Err(); err != nil {
		// The call ended before the step could start.
		return Evidence{Err: err, Cause: context.Cause(ctx)}
	}
	ok, probe := wf.breaker.allow(s.now())
	if !ok {
		return Evidence{Err: ErrBreakerOpen, InvalidWorkflowStatus: in.invalidStatus}
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = s.integrationTimeout(in)
	}
	// A timeout is the CRM's failure only when the step gave it at least
	// the integration's own timeout_ms: a caller's wfe_timeout_ms=200 on a
	// 400 ms workflow says nothing about the CRM's health.
	ownsTimeout := timeout >= s.integrationTimeout(in)
	if req.LateWindow > 0 && req.OnLate != nil {
		select {
		case s.lateSlots <- struct{}{}:
			return s.sendLate(ctx, in, wf, req, target, timeout, probe, ownsTimeout)
		default:
			s.log.Warn("crm: too many requests open for late results; this step has no window", "call", req.CallUUID, "max", MaxLateRequests)
		}
	}
	stepCtx, cancel := context.WithTimeoutCause(ctx, timeout, ErrStepTimeout)
	defer cancel()
	ev := s.roundTrip(stepCtx, in, wf, req, target)
	if ev.Err != nil {
		// Read before cancel: afterwards every context has a cause.
		ev.Cause = context.Cause(stepCtx)
	}
	s.breakerDone(in, wf, probe, healthOf(ev, ownsTimeout))
	return ev
}

// sendLate is send for a step with a late-result window: the request runs
// on its own context (not the call's), for the step timeout plus the
// window. The step gets OnTimeout at its timeout, or Hangup when the caller
// leaves first; an answer within the window then goes to req.OnLate.
func (s *Service) sendLate(ctx context.Context, in *integration, wf *workflow, req Request, target string, timeout time.Duration, probe, ownsTimeout bool) Evidence {
	reqCtx, cancel := context.WithTimeoutCause(context.WithoutCancel(ctx), timeout+req.LateWindow, ErrStepTimeout)
	done := make(chan Evidence, 1)
	s.late.Add(1)
	go func() {
		defer cancel()
		ev := s.roundTrip(reqCtx, in, wf, req, target)
		if ev.Err != nil {
			ev.Cause = context.Cause(reqCtx)
		}
		done <- ev
	}()
	step := time.NewTimer(timeout)
	defer step.Stop()
	var now Evidence
	select {
	case ev := <-done:
		// Answered within the step: no late result, the slot is free.
		<-s.lateSlots
		s.late.Done()
		s.breakerDone(in, wf, probe, healthOf(ev, ownsTimeout))
		return ev
	case <-step.C:
		now = Evidence{Err: context.DeadlineExceeded, Cause: ErrStepTimeout, InvalidWorkflowStatus: in.invalidStatus}
	case <-ctx.Done():
		now = Evidence{Err: ctx.Err(), Cause: context.Cause(ctx)}
	}
	// The breaker hears of the step now, as without a window: a probe must
	// not hold the breaker half-open for the window, and a CRM that hangs
	// must count as down when the step gives up on it.
	s.breakerDone(in, wf, probe, healthOf(now, ownsTimeout))
	start := time.Now()
	go func() {
		defer func() { <-s.lateSlots; s.late.Done() }()
		ev := <-done
		res := Classify(ev)
		res.Latency = time.Since(start)
		if res.Branch == OnTimeout {
			s.log.Info("crm: no late result within the window", "call", req.CallUUID, "config", in.id, "workflow", wf.id, "window", req.LateWindow)
			req.OnLate(res)
			return
		}
		s.log.Info("crm: late result", "call", req.CallUUID, "config", in.id, "workflow", wf.id, "branch", res.Branch, "status", res.Status)
		req.OnLate(res)
	}()
	return now
}

// healthOf is what a step says about the CRM: failures the CRM owns (a
// 5xx, a transport error, a timeout it was given its full time for) are
// down; a caller who left or a step timeout shorter than the
// integration's says nothing.
func healthOf(ev Evidence, ownsTimeout bool) health {
	switch {
	case ev.Status >= 500:
		return healthDown
	case ev.Status != 0:
		return healthUp
	case ev.Cause != nil && ev.Err != nil && !isTimeout(ev.Cause):
		return healthUnknown // the caller left; the CRM may be fine
	case ev.Cause != nil && isTimeout(ev.Cause) && !ownsTimeout:
		return healthUnknown // the step chose a shorter wait
	case ev.Err != nil:
		return healthDown
	}
	return healthUnknown
}

func isTimeout(cause error) bool { return errors.Is(cause, ErrStepTimeout) }

func (s *Service) breakerDone(in *integration, wf *workflow, probe bool, h health) {
	t := wf.breaker.done(s.now(), probe, h)
	if !t.changed() {
		return
	}
	s.log.Warn("crm: circuit breaker "+t.to.String(), "config", in.id, "workflow", wf.id, "from", t.from.String())
	if s.onBreaker != nil {
		s.onBreaker(in.id, wf.id, t.from, t.to)
	}
}

// BreakerState is the circuit breaker state of a workflow, for the step
// engine and metrics. Unknown ids and disabled breakers are closed.
func (s *Service) BreakerState(configID, workflowID string) BreakerState {
	in := s.integrations[configID]
	if in == nil {
		return BreakerClosed
	}
	wf := in.workflows[workflowID]
	if wf == nil || wf.breaker.threshold == 0 {
		return BreakerClosed
	}
	return wf.breaker.current(s.now())
}

// MaxMs bounds every duration eslapp reads in milliseconds (a step
// timeout, a late-result window, an attempt, a grace, a fixture's delay):
// nobody holds a caller longer than ten minutes, and a larger number of
// milliseconds could overflow a time.Duration.
const MaxMs = 600_000

// CheckMs is the one rule for a duration in milliseconds, wherever it is
// read: from 1 to MaxMs, or from 0 to MaxMs when zero means something of its
// own, which zeroMeans says ("" when zero is refused). Every millisecond
// key and channel variable is checked by it, through CheckTimeoutMs or with
// its own zeroMeans.
func CheckMs(ms int64, zeroMeans string) error {
	switch {
	case zeroMeans == "" && (ms < 1 || ms > MaxMs):
		return fmt.Errorf("must be from 1 to %d milliseconds, not %d", MaxMs, ms)
	case ms < 0 || ms > MaxMs:
		return fmt.Errorf("must be from 0 (%s) to %d milliseconds, not %d", zeroMeans, MaxMs, ms)
	}
	return nil
}

// CheckTimeoutMs is the rule for a timeout in milliseconds, wherever it
// comes from (a flow's timeout_ms, wfe_timeout_ms, timeoutMilliSec, an
// integration's timeout_ms, a late-result window): CheckMs, zero refused.
func CheckTimeoutMs(ms int64) error { return CheckMs(ms, "") }

// ParseMillis reads a timeout in milliseconds from a channel variable, by
// CheckTimeoutMs's rule.
func ParseMillis(v string) (time.Duration, bool) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || CheckTimeoutMs(n) != nil {
		return 0, false
	}
	return time.Duration(n) * time.Millisecond, true
}

// Timeout is the step timeout: the step's own value (stepMs,
// from a flow's timeout_ms or wfe_timeout_ms, 0 when unset), else the
// channel's timeoutMilliSec, else the integration's timeout_ms, else 6000
// ms. A channel value CheckTimeoutMs refuses is skipped, so a broken
// channel variable cannot make a step wait forever or not at all; a step
// value has been checked where it was read.
func (s *Service) Timeout(configID string, stepMs int64, channel string) time.Duration {
	if CheckTimeoutMs(stepMs) == nil {
		return time.Duration(stepMs) * time.Millisecond
	}
	if d, ok := ParseMillis(channel); ok {
		return d
	}
	return s.integrationTimeout(s.integrations[configID])
}

func (s *Service) integrationTimeout(in *integration) time.Duration {
	if in != nil && in.timeout > 0 {
		return in.timeout
	}
	return DefaultTimeout
}

// logResult writes the step's one summary line. It never logs headers,
// payloads or bodies.
func (s *Service) logResult(ctx context.Context, req Request, res Result) {
	level := slog.LevelInfo
	switch {
	case res.Branch == OnSuccess:
		level = slog.LevelDebug
	case res.Branch == OnError || res.Branch == OnTimeout:
		level = slog.LevelWarn
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("call", req.CallUUID),
		slog.String("config", conf.Clip(req.ConfigID, 64)),
		slog.String("workflow", conf.Clip(req.WorkflowID, 64)),
		slog.String("branch", string(res.Branch)),
		slog.Int("status", res.Status),
		slog.Int("attempts", res.Attempts),
		slog.Duration("latency", res.Latency),
	}
	if res.Hangup {
		attrs = append(attrs, slog.Bool("hangup", true))
	}
	if res.Err != nil {
		attrs = append(attrs, slog.String("message", res.Err.Message))
	}
	s.log.LogAttrs(context.WithoutCancel(ctx), level, "crm: workflow executed", attrs...)
}
