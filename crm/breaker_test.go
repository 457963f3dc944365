package crm

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type transitionLog struct {
	mu  sync.Mutex
	got []string
}

func (l *transitionLog) record(id, workflow string, from, to BreakerState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, id+"/"+workflow+":"+from.String()+"->"+to.String())
}

func (l *transitionLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.got, " ")
}

func TestBreakerOpensHalfOpensAndCloses(t *testing.T) {
	var healthy atomic.Bool
	crm := newCRM(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
		if healthy.Load() {
			jsonReply(w, 200, `{}`)
			return
		}
		w.WriteHeader(500)
	})
	clock := newFakeClock()
	var log transitionLog
	s := newService(t, httpConfig(crm.URL, func(ic *IntegrationConfig) {
		ic.BreakerFailures = intp(2)
		ic.BreakerCooldown = "30s"
	}), Options{Now: clock.Now, OnBreakerChange: log.record})

	wantBranch(t, execute(t, s, baseRequest("wf")), OnError, 500)
	if st := s.BreakerState("crm", "wf"); st != BreakerClosed {
		t.Fatalf("after 1 failure: %v", st)
	}
	wantBranch(t, execute(t, s, baseRequest("wf")), OnError, 500)
	if st := s.BreakerState("crm", "wf"); st != BreakerOpen {
		t.Fatalf("after 2 failures: %v", st)
	}
	res := execute(t, s, baseRequest("wf"))
	wantBranch(t, res, OnError, 0)
	if !strings.Contains(res.Err.Message, "circuit breaker") || res.Attempts != 0 || crm.hits.Load() != 2 {
		t.Errorf("open breaker: %q attempts %d hits %d", res.Err.Message, res.Attempts, crm.hits.Load())
	}
	// Validation still comes first.
	wantBranch(t, execute(t, s, baseRequest("nope")), OnInvalidWorkflow, 0)

	clock.Advance(31 * time.Second)
	if st := s.BreakerState("crm", "wf"); st != BreakerHalfOpen {
		t.Fatalf("after cool-down: %v", st)
	}
	// A failed probe opens it again for a whole cool-down.
	wantBranch(t, execute(t, s, baseRequest("wf")), OnError, 500)
	if st := s.BreakerState("crm", "wf"); st != BreakerOpen {
		t.Fatalf("after failed probe: %v", st)
	}
	clock.Advance(31 * time.Second)
	healthy.Store(true)
	wantBranch(t, execute(t, s, baseRequest("wf")), OnSuccess, 200)
	if st := s.BreakerState("crm", "wf"); st != BreakerClosed {
		t.Fatalf("after good probe: %v", st)
	}
	want := "crm/wf:closed->open crm/wf:half-open->open crm/wf:half-open->closed"
	if got := log.String(); got != want {
		t.Errorf("transitions %q, want %q", got, want)
	}
}

// While the half-open probe is out, other steps are refused.
func TestBreakerSingleProbe(t *testing.T) {
	release := make(chan struct{})
	probing := make(chan struct{})
	var n atomic.Int64
	crm := newCRM(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
		if n.Add(1) == 1 {
			w.WriteHeader(500)
			return
		}
		close(probing)
		<-release
		jsonReply(w, 200, `{}`)
	})
	clock := newFakeClock()
	s := newService(t, httpConfig(crm.URL, func(ic *IntegrationConfig) { ic.BreakerFailures = intp(1) }), Options{Now: clock.Now})
	wantBranch(t, execute(t, s, baseRequest("wf")), OnError, 500)
	clock.Advance(DefaultBreakerCooldown)

	done := make(chan Result)
	go func() { done <- s.Execute(context.Background(), baseRequest("wf")) }()
	<-probing
	res := execute(t, s, baseRequest("wf"))
	if res.Branch != OnError || res.Attempts != 0 {
		t.Errorf("second step during probe: %+v", res)
	}
	close(release)
	wantBranch(t, <-done, OnSuccess, 200)
	if st := s.BreakerState("crm", "wf"); st != BreakerClosed {
		t.Errorf("state %v", st)
	}
}

// Timeouts given the integration's full timeout_ms count as failures;
// hangups do not count either way.
func TestBreakerTimeoutsAndHangups(t *testing.T) {
	crm := newCRM(t, func(w http.ResponseWriter, r *http.Request, _ int64) { <-r.Context().Done() })
	clock := newFakeClock()
	s := newService(t, httpConfig(crm.URL, func(ic *IntegrationConfig) {
		ic.BreakerFailures = intp(1)
		ic.TimeoutMS = 200
	}), Options{Now: clock.Now})

	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(100*time.Millisecond, func() { cancel(errors.New("hangup")) })
	if res := s.Execute(ctx, baseRequest("wf")); !res.Hangup {
		t.Fatalf("want hangup, got %+v", res)
	}
	if st := s.BreakerState("crm", "wf"); st != BreakerClosed {
		t.Fatalf("a hangup moved the breaker to %v", st)
	}
	req := baseRequest("wf")
	req.Timeout = 200 * time.Millisecond
	wantBranch(t, execute(t, s, req), OnTimeout, 0)
	if st := s.BreakerState("crm", "wf"); st != BreakerOpen {
		t.Fatalf("a timeout left the breaker %v", st)
	}
	// A probe that is hung up leaves the breaker half-open for the next.
	clock.Advance(DefaultBreakerCooldown)
	ctx, cancel = context.WithCancelCause(context.Background())
	time.AfterFunc(100*time.Millisecond, func() { cancel(errors.New("hangup")) })
	if res := s.Execute(ctx, baseRequest("wf")); !res.Hangup {
		t.Fatalf("want hangup, got %+v", res)
	}
	if st := s.BreakerState("crm", "wf"); st != BreakerHalfOpen {
		t.Fatalf("after a hung-up probe: %v", st)
	}
}

func TestBreakerDisabled(t *testing.T) {
	crm := newCRM(t, func(w http.ResponseWriter, _ *http.Request, _ int64) { w.WriteHeader(500) })
	s := newService(t, httpConfig(crm.URL, func(ic *IntegrationConfig) { ic.BreakerFailures = intp(0) }), Options{})
	for i := 0; i < 8; i++ {
		wantBranch(t, execute(t, s, baseRequest("wf")), OnError, 500)
	}
	if st := s.BreakerState("crm", "wf"); st != BreakerClosed || crm.hits.Load() != 8 {
		t.Errorf("state %v, hits %d", st, crm.hits.Load())
	}
	if st := s.BreakerState("unknown", "wf"); st != BreakerClosed {
		t.Errorf("unknown id: %v", st)
	}
}

// A step timeout the caller chose shorter than the integration's timeout_ms
// says nothing about the CRM: five of them leave the breaker closed (the
// review's case: wfe_timeout_ms=200 against a 400 ms CRM).
func TestBreakerIgnoresShorterStepTimeouts(t *testing.T) {
	crm := newCRM(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		select {
		case <-time.After(400 * time.Millisecond):
			jsonReply(w, 200, `{}`)
		case <-r.Context().Done():
		}
	})
	var log transitionLog
	s := newService(t, httpConfig(crm.URL, func(ic *IntegrationConfig) {
		ic.BreakerFailures = intp(2)
		ic.TimeoutMS = 1000
	}), Options{OnBreakerChange: log.record})
	for range 5 {
		req := baseRequest("wf")
		req.Timeout = 100 * time.Millisecond
		wantBranch(t, execute(t, s, req), OnTimeout, 0)
	}
	if st := s.BreakerState("crm", "wf"); st != BreakerClosed {
		t.Fatalf("short step timeouts moved the breaker to %v (%s)", st, log.String())
	}
	req := baseRequest("wf")
	req.Timeout = time.Second
	wantBranch(t, execute(t, s, req), OnSuccess, 200)
}

// Each workflow has its own breaker: one failing workflow does not stop
// the others of its integration.
func TestBreakerPerWorkflow(t *testing.T) {
	crm := newCRM(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		if r.Method == http.MethodGet {
			jsonReply(w, 200, `{}`)
			return
		}
		w.WriteHeader(503)
	})
	var log transitionLog
	s := newService(t, httpConfig(crm.URL, func(ic *IntegrationConfig) { ic.BreakerFailures = intp(2) }), Options{OnBreakerChange: log.record})
	for range 2 {
		wantBranch(t, execute(t, s, baseRequest("wf")), OnError, 503)
	}
	wantBranch(t, execute(t, s, baseRequest("wf")), OnError, 0) // refused: open
	if st := s.BreakerState("crm", "wf"); st != BreakerOpen {
		t.Fatalf("wf: %v", st)
	}
	for range 3 {
		wantBranch(t, execute(t, s, baseRequest("get")), OnSuccess, 200)
	}
	if st := s.BreakerState("crm", "get"); st != BreakerClosed {
		t.Fatalf("get: %v", st)
	}
	if got := log.String(); got != "crm/wf:closed->open" {
		t.Errorf("transitions %q", got)
	}
}

// A half-open probe with a late-result window reports to the breaker when
// its step ends, not when the window does: the breaker is not held
// half-open for the window.
func TestBreakerProbeWithLateWindow(t *testing.T) {
	var healthy atomic.Bool
	crm := newCRM(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		if healthy.Load() {
			jsonReply(w, 200, `{}`)
			return
		}
		select {
		case <-time.After(2 * time.Second):
			jsonReply(w, 200, `{}`)
		case <-r.Context().Done():
		}
	})
	clock := newFakeClock()
	s := newService(t, httpConfig(crm.URL, func(ic *IntegrationConfig) {
		ic.BreakerFailures = intp(1)
		ic.TimeoutMS = 100
		ic.Retries = intp(0)
	}), Options{Now: clock.Now})
	req := baseRequest("wf")
	req.Timeout = 100 * time.Millisecond
	wantBranch(t, execute(t, s, req), OnTimeout, 0) // opens the breaker
	clock.Advance(DefaultBreakerCooldown)
	late := make(chan Result, 1)
	req.LateWindow, req.OnLate = 5*time.Second, func(r Result) { late <- r }
	wantBranch(t, execute(t, s, req), OnTimeout, 0) // the probe times out: open again
	if st := s.BreakerState("crm", "wf"); st != BreakerOpen {
		t.Fatalf("after the probe's step: %v, want open at once", st)
	}
	clock.Advance(DefaultBreakerCooldown)
	healthy.Store(true)
	plain := baseRequest("wf")
	wantBranch(t, execute(t, s, plain), OnSuccess, 200) // a new probe is allowed
	if r := <-late; r.Branch != OnSuccess {
		t.Errorf("late result %v", r.Branch)
	}
}

// A step answered within its timeout gives its late-result slot back: a
// window is never switched off by answers that came on time.
func TestLateSlotsFreedOnTimelyAnswers(t *testing.T) {
	crm := newCRM(t, func(w http.ResponseWriter, _ *http.Request, _ int64) { jsonReply(w, 200, `{}`) })
	s := newService(t, httpConfig(crm.URL, nil), Options{})
	for range 5 {
		req := baseRequest("wf")
		req.LateWindow, req.OnLate = time.Second, func(Result) { t.Error("a timely answer was delivered as late") }
		wantBranch(t, execute(t, s, req), OnSuccess, 200)
	}
	if n := len(s.lateSlots); n != 0 {
		t.Errorf("%d late slots still held", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if n := s.WaitLate(ctx); n != 0 {
		t.Errorf("WaitLate: %d pending", n)
	}
}
