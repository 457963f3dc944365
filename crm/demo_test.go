package crm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// demoConfig is testdata/demo-crm.toml as the TOML decoder gives it (this
// package does not depend on a TOML library; cmd/ decodes the file and its
// test loads conf/).
func demoConfig() Config {
	return Config{
		Tenants: map[string]TenantConfig{
			"default": {AgentIntegrations: boolp(true)},
			"no-crm":  {AgentIntegrations: boolp(false)},
		},
		Integrations: map[string]IntegrationConfig{
			"demo-crm": {
				Kind:                  "fixture",
				TimeoutMS:             6000,
				InvalidWorkflowStatus: []int{404},
				Workflows: map[string]WorkflowConfig{
					"search-by-phone": {Rules: []FixtureRule{
						{Match: map[string]any{"phone": "123*"}, DelayMS: 400, Body: `{"found":true,"contact":{"id":"C-1001","name":"Ada Lovelace","balance":"12.50","tier":"gold"}}`},
						{DelayMS: 400, Body: `{"found":false}`},
					}},
					"create-ticket": {Rules: []FixtureRule{{Status: 201, DelayMS: 800, Body: `{"ticket":{"id":"T-4711","status":"open"}}`}}},
					"slow-report":   {Rules: []FixtureRule{{DelayMS: 8000, Body: `{"report":"ready"}`}}},
					"broken":        {Rules: []FixtureRule{{Status: 500, Body: `{"error":"internal error"}`}}},
					"retired-flow":  {Rules: []FixtureRule{{Status: 404, Body: `{"error":"no such workflow"}`}}},
					"legacy-sync":   {Enabled: boolp(false)},
				},
			},
		},
	}
}

// The TOML file and demoConfig name the same workflows.
func TestDemoTOMLMatchesConfig(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "demo-crm.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for wf := range demoConfig().Integrations["demo-crm"].Workflows {
		if !strings.Contains(string(data), "workflows."+wf) {
			t.Errorf("workflow %s missing from demo-crm.toml", wf)
		}
	}
}

func TestDemoFixture(t *testing.T) {
	s := newService(t, demoConfig(), Options{})
	req := func(wf, payload string) Request {
		return Request{ConfigID: "demo-crm", WorkflowID: wf, Payload: []byte(payload), CallUUID: "u1", StepID: wf}
	}
	ctx := context.Background()

	res := s.Execute(ctx, req("search-by-phone", `{"phone":"1235550100"}`))
	wantBranch(t, res, OnSuccess, 200)
	if !strings.Contains(string(res.Body), `"found":true`) || res.Latency < 350*time.Millisecond {
		t.Errorf("found: %s after %v", res.Body, res.Latency)
	}
	res = s.Execute(ctx, req("search-by-phone", `{"phone":"5550100"}`))
	wantBranch(t, res, OnSuccess, 200)
	if string(res.Body) != `{"found":false}` {
		t.Errorf("not found: %s", res.Body)
	}
	wantBranch(t, s.Execute(ctx, req("create-ticket", `{"subject":"hi"}`)), OnSuccess, 201)
	res = s.Execute(ctx, req("broken", `{}`))
	wantBranch(t, res, OnError, 500)
	if string(res.Body) != `{"error":"internal error"}` {
		t.Errorf("broken body %s", res.Body)
	}
	wantBranch(t, s.Execute(ctx, req("retired-flow", `{}`)), OnInvalidWorkflow, 404)
	wantBranch(t, s.Execute(ctx, req("legacy-sync", `{}`)), OnInvalidWorkflow, 0)
	r := req("search-by-phone", `{}`)
	r.Tenant = "no-crm"
	wantBranch(t, s.Execute(ctx, r), OnAgentIntegrationDisabled, 0)

	// slow-report: the delay is cancelled by the step timeout...
	r = req("slow-report", `{}`)
	r.Timeout = 300 * time.Millisecond
	res = s.Execute(ctx, r)
	wantBranch(t, res, OnTimeout, 0)
	if res.Latency > 5*time.Second {
		t.Errorf("timeout took %v: the fixture delay was not cancelled", res.Latency)
	}
	// ...and by a hangup.
	hctx, cancel := context.WithCancelCause(ctx)
	time.AfterFunc(100*time.Millisecond, func() { cancel(errors.New("hangup")) })
	res = s.Execute(hctx, req("slow-report", `{}`))
	if !res.Hangup || res.Latency > 5*time.Second {
		t.Errorf("hangup: %+v", res)
	}
}

func TestFixtureRules(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "contact.json"), []byte(`{"id": 42}`), 0o600)
	cfg := Config{Integrations: map[string]IntegrationConfig{"fx": {
		Kind:    "fixture",
		BaseURL: "https://ignored.example", // HTTP keys are ignored by fixtures
		Headers: map[string]string{"Authorization": "${env:NOT_SET_IN_DRY_RUNS}"},
		Workflows: map[string]WorkflowConfig{
			"match": {Rules: []FixtureRule{
				{Match: map[string]any{"id": int64(7), "vip": true}, BodyFile: "contact.json"},
				{Match: map[string]any{"name": "A?a", "id": int64(7)}, Body: `{"rule":2}`},
				{Match: map[string]any{"nested": "x"}, Body: `{"rule":3}`},
			}},
			"reset":   {Rules: []FixtureRule{{Error: "reset"}}},
			"refused": {Rules: []FixtureRule{{Error: "refused"}}},
			"timeout": {Rules: []FixtureRule{{Error: "timeout"}}},
			"busy":    {Rules: []FixtureRule{{Status: 503, Headers: map[string]string{"Retry-After": "0"}}}},
			"get":     {Method: "GET", Rules: []FixtureRule{{Status: 204}}},
		},
	}}}
	s := newService(t, cfg, Options{BaseDir: dir, LookupEnv: func(string) (string, bool) { return "", false }})
	run := func(wf, payload string) Result {
		return s.Execute(context.Background(), Request{ConfigID: "fx", WorkflowID: wf, Payload: []byte(payload), Timeout: 2 * time.Second})
	}
	runShort := func(wf string) Result {
		return s.Execute(context.Background(), Request{ConfigID: "fx", WorkflowID: wf, Payload: []byte(`{}`), Timeout: 300 * time.Millisecond})
	}
	res := run("match", `{"id":7,"vip":true}`)
	if res.Branch != OnSuccess || string(res.Body) != `{"id":42}` {
		t.Errorf("rule 1: %+v", res)
	}
	if res = run("match", `{"id":7.0,"name":"Ada"}`); string(res.Body) != `{"rule":2}` {
		// 7.0 is not the literal 7: numbers match by their text.
		if res.Status != 404 {
			t.Errorf("7.0: %+v", res)
		}
	}
	if res = run("match", `{"id":7,"name":"Ada"}`); string(res.Body) != `{"rule":2}` {
		t.Errorf("rule 2: %+v", res)
	}
	if res = run("match", `{"nested":{"x":1}}`); res.Branch != OnError || res.Status != 404 {
		t.Errorf("no rule matches: %+v", res)
	}
	if res = run("match", `[1,2]`); res.Status != 404 {
		t.Errorf("array payload: %+v", res)
	}
	res = run("reset", `{}`)
	if res.Branch != OnError || res.Attempts != 1 || !strings.Contains(res.Err.Message, "reset") {
		t.Errorf("reset: %+v %v", res, res.Err)
	}
	res = run("refused", `{}`)
	if res.Branch != OnError || res.Attempts != DefaultRetries+1 || !strings.Contains(res.Err.Message, "refused") {
		t.Errorf("refused: %+v %v", res, res.Err)
	}
	wantBranch(t, runShort("timeout"), OnTimeout, 0)
	res = run("busy", `{}`)
	if res.Branch != OnError || res.Status != 503 || res.Attempts != DefaultRetries+1 {
		t.Errorf("busy: %+v", res)
	}
	wantBranch(t, run("get", ``), OnSuccess, 204)
}
