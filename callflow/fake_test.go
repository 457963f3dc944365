package callflow_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/eslapp/eslapp/callflow"
	"github.com/eslapp/eslapp/crm"
	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/prompts"
)

// fakeChannel is a hand-written callflow.Channel that records what the
// engine asks for. Applications start and end at once unless hold is set.
type fakeChannel struct {
	mu    sync.Mutex
	vars  map[string]string
	calls []string
	full  bool
	set   map[string]string
}

var _ callflow.Channel = (*fakeChannel)(nil)

func (f *fakeChannel) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeChannel) UUID() string { return "fake-uuid" }
func (f *fakeChannel) Full() bool   { return f.full }
func (f *fakeChannel) Var(name string) (string, bool) {
	v, ok := f.vars[name]
	return v, ok
}
func (f *fakeChannel) Header(string) string { return "" }
func (f *fakeChannel) Start(_ context.Context, app string, arg esl.AppArg, _ esl.ExecOptions) (callflow.Running, error) {
	f.record("start " + app + " " + arg.String())
	return doneApp{}, nil
}
func (f *fakeChannel) Break(_ context.Context, all bool) error {
	f.record("break")
	return nil
}
func (f *fakeChannel) SetVars(_ context.Context, vars []esl.Var, _ time.Duration) (callflow.Running, error) {
	f.mu.Lock()
	if f.set == nil {
		f.set = map[string]string{}
	}
	for _, v := range vars {
		f.set[v.Name] = v.Value
	}
	f.mu.Unlock()
	f.record("setvars")
	return doneApp{}, nil
}
func (f *fakeChannel) HandBack(context.Context, string) error   { f.record("resume"); return nil }
func (f *fakeChannel) Arm(context.Context, time.Duration) error { return nil }
func (f *fakeChannel) Late() callflow.LateSink                  { return nil }
func (f *fakeChannel) NeedsFiller() bool                        { return false }
func (f *fakeChannel) Transfer(_ context.Context, ext, dp, cx string) error {
	f.record("transfer " + ext + " " + dp + " " + cx)
	return nil
}
func (f *fakeChannel) Hangup(_ context.Context, cause string) error {
	f.record("hangup " + cause)
	return nil
}
func (f *fakeChannel) SendEvent(_ context.Context, subclass string, _ []esl.EventHeader, _ []byte) (string, error) {
	f.record("sendevent " + subclass)
	return "id", nil
}

type doneApp struct{}

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (doneApp) Started() <-chan struct{}       { return closed }
func (doneApp) Done() <-chan struct{}          { return closed }
func (doneApp) Result() (esl.AppResult, error) { return esl.AppResult{Response: "FILE PLAYED"}, nil }

// fakeCRM answers every step with one result, after a delay.
type fakeCRM struct {
	res   crm.Result
	delay time.Duration
	seen  []crm.Request
	mu    sync.Mutex
}

func (f *fakeCRM) Execute(ctx context.Context, req crm.Request) crm.Result {
	f.mu.Lock()
	f.seen = append(f.seen, req)
	f.mu.Unlock()
	select {
	case <-time.After(f.delay):
		return f.res
	case <-ctx.Done():
		return crm.Result{Hangup: true}
	}
}
func (f *fakeCRM) Precheck(crm.Request) (crm.Result, bool)     { return crm.Result{}, false }
func (f *fakeCRM) Timeout(string, int64, string) time.Duration { return time.Second }
func (f *fakeCRM) PathVars() []string                          { return nil }
func (f *fakeCRM) BreakerState(string, string) crm.BreakerState {
	return crm.BreakerClosed
}

func fakeEngine(t *testing.T, w callflow.Workflows) *callflow.Engine {
	t.Helper()
	r, err := prompts.NewRenderer(prompts.RenderConfig{SoundsDir: soundsDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := callflow.New(callflow.Config{Renderer: r, CRM: w, PlaybackTerminators: "none"})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// A caller hanging up while the CRM works: the request is cancelled and
// nothing is set or resumed.
func TestRunHangupCancelsRequest(t *testing.T) {
	ch := &fakeChannel{full: true, vars: map[string]string{"wfe_config_id": "x", "wfe_workflow_id": "y"}}
	c := &fakeCRM{res: crm.Result{Branch: crm.OnSuccess}, delay: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	fakeEngine(t, c).Run(ctx, ch, testLog(t))
	for _, call := range ch.calls {
		if call == "setvars" || call == "resume" {
			t.Fatalf("after the hangup the engine sent %v", ch.calls)
		}
	}
}

// The step's request carries the call and a step id per visit, the timeout
// and the rendered payload.
func TestRunRequestFields(t *testing.T) {
	ch := &fakeChannel{full: true, vars: map[string]string{
		"wfe_config_id": "acme", "wfe_workflow_id": "search", "wfe_payload": `{"q":"{who}"}`, "who": `O"Brien`,
	}}
	c := &fakeCRM{res: crm.Result{Branch: crm.OnSuccess, Body: []byte(`{"ok":true}`)}}
	fakeEngine(t, c).Run(context.Background(), ch, testLog(t))
	if len(c.seen) != 1 {
		t.Fatalf("%d requests", len(c.seen))
	}
	req := c.seen[0]
	if req.ConfigID != "acme" || req.WorkflowID != "search" || string(req.Payload) != `{"q":"O\"Brien"}` || req.CallUUID != "fake-uuid" || req.StepID == "" {
		t.Fatalf("request %+v", req)
	}
	if ch.set["wfe_branch"] != "OnSuccess" || ch.set["workflowResultOutput"] != `{"ok":true}` {
		t.Fatalf("outputs %v", ch.set)
	}
}
