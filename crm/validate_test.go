package crm

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eslapp/eslapp/conf"
)

// The first three outcomes are decided without any request, in contract
// order.
func TestValidationOrder(t *testing.T) {
	crm := newCRM(t, func(w http.ResponseWriter, _ *http.Request, _ int64) { jsonReply(w, 200, `{}`) })
	cfg := Config{
		Tenants: map[string]TenantConfig{
			"acme":     {},
			"no-crm":   {AgentIntegrations: boolp(false)},
			"disabled": {},
		},
		Integrations: map[string]IntegrationConfig{
			"crm": {BaseURL: crm.URL, MaxPayloadBytes: 64, Workflows: map[string]WorkflowConfig{
				"wf":      {},
				"retired": {Enabled: boolp(false)},
				"by-id":   {Path: "/c/{id}"},
			}},
			"acme-crm": {Tenant: "acme", BaseURL: crm.URL, Workflows: map[string]WorkflowConfig{"wf": {}}},
			"off":      {Tenant: "disabled", Enabled: boolp(false), BaseURL: crm.URL, Workflows: map[string]WorkflowConfig{"wf": {}}},
		},
	}
	s := newService(t, cfg, Options{})
	ok := baseRequest("wf")
	mod := func(f func(*Request)) Request { r := ok; f(&r); return r }

	tests := []struct {
		name string
		req  Request
		want Branch
	}{
		{"tenant without agent integrations, even with a bad config id", mod(func(r *Request) { r.Tenant = "no-crm"; r.ConfigID = "%%%" }), OnAgentIntegrationDisabled},
		{"integration disabled, even with a bad workflow id", mod(func(r *Request) { r.Tenant = "disabled"; r.ConfigID = "off"; r.WorkflowID = "" }), OnAgentIntegrationDisabled},
		{"unknown tenant", mod(func(r *Request) { r.Tenant = "nobody" }), OnInvalidInput},
		{"empty configuration id", mod(func(r *Request) { r.ConfigID = "" }), OnInvalidInput},
		{"malformed configuration id", mod(func(r *Request) { r.ConfigID = "crm/../x" }), OnInvalidInput},
		{"configuration id too long", mod(func(r *Request) { r.ConfigID = strings.Repeat("a", 129) }), OnInvalidInput},
		{"unknown configuration id", mod(func(r *Request) { r.ConfigID = "nope" }), OnInvalidInput},
		{"another tenant's integration", mod(func(r *Request) { r.ConfigID = "acme-crm" }), OnInvalidInput},
		{"another tenant's disabled integration", mod(func(r *Request) { r.ConfigID = "off" }), OnInvalidInput},
		{"empty workflow id", mod(func(r *Request) { r.WorkflowID = "" }), OnInvalidInput},
		{"malformed workflow id", mod(func(r *Request) { r.WorkflowID = "-wf" }), OnInvalidInput},
		{"payload not JSON", mod(func(r *Request) { r.Payload = []byte(`{"phone":}`) }), OnInvalidInput},
		{"payload over the limit", mod(func(r *Request) { r.Payload = []byte(`"` + strings.Repeat("x", 64) + `"`) }), OnInvalidInput},
		{"bad payload beats undefined workflow", mod(func(r *Request) { r.WorkflowID = "nope"; r.Payload = []byte("{") }), OnInvalidInput},
		{"undefined workflow", mod(func(r *Request) { r.WorkflowID = "nope" }), OnInvalidWorkflow},
		{"disabled workflow", mod(func(r *Request) { r.WorkflowID = "retired" }), OnInvalidWorkflow},
		{"missing path variable", mod(func(r *Request) { r.WorkflowID = "by-id" }), OnInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := execute(t, s, tt.req)
			wantBranch(t, res, tt.want, 0)
			if res.Attempts != 0 || res.Err == nil || res.Err.Message == "" {
				t.Errorf("result %+v", res)
			}
		})
	}
	if n := crm.hits.Load(); n != 0 {
		t.Errorf("validation sent %d requests", n)
	}
	// And the valid ones go through: default tenant, acme's own integration,
	// and an empty payload.
	wantBranch(t, execute(t, s, ok), OnSuccess, 200)
	wantBranch(t, execute(t, s, mod(func(r *Request) { r.Tenant = "acme"; r.ConfigID = "acme-crm" })), OnSuccess, 200)
	wantBranch(t, execute(t, s, mod(func(r *Request) { r.Payload = nil })), OnSuccess, 200)
}

func TestConfigReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{
		Tenants: map[string]TenantConfig{"bad tenant": {}},
		Integrations: map[string]IntegrationConfig{
			"crm": {
				Tenant:                "ghost",
				Kind:                  "soap",
				BaseURL:               "ftp://crm.example",
				Headers:               map[string]string{"Authorization": "Bearer literal-token", "X-Key": "${env:MISSING}", "Idempotency-Key": "x", "Bad Name": "v", "X-File": "${file:nofile}", "X-Odd": "${vault:x}"},
				TimeoutMS:             -1,
				Retries:               intp(99),
				MaxRedirects:          intp(-1),
				InvalidWorkflowStatus: []int{200},
				BreakerFailures:       intp(-2),
				BreakerCooldown:       "soon",
				CAFile:                "missing.pem",
				Workflows: map[string]WorkflowConfig{
					"ok":    {Method: "TRACE", Path: "contacts/{id}"},
					"dots":  {Path: "/a/../b"},
					"query": {Path: "/a?=1"},
					"-bad":  {},
				},
			},
			"user@": {BaseURL: "https://user:pw@crm.example"},
			"fx": {Kind: "fixture", Workflows: map[string]WorkflowConfig{
				"none": {},
				"bad": {Rules: []FixtureRule{
					{Error: "explode"},
					{Status: 99, Body: "x", BodyFile: "y"},
					{Match: map[string]any{"phone": "[", "obj": map[string]any{}}},
					{Error: "reset", Status: 500},
				}},
			}},
		},
	}
	_, err := New(cfg, Options{BaseDir: dir, LookupEnv: func(string) (string, bool) { return "", false }})
	var fes FieldErrors
	if !errors.As(err, &fes) {
		t.Fatalf("error %v is not FieldErrors", err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatal("errors.As does not find a *FieldError")
	}
	got := map[string]string{}
	for _, e := range fes {
		got[conf.KeyString(e.Key)] += e.Msg + "; "
	}
	want := []string{
		`tenants."bad tenant"`,
		"integrations.crm.tenant",
		"integrations.crm.kind",
		"integrations.crm.base_url",
		"integrations.crm.headers.Authorization",
		"integrations.crm.headers.X-Key",
		"integrations.crm.headers.Idempotency-Key",
		`integrations.crm.headers."Bad Name"`,
		"integrations.crm.headers.X-File",
		"integrations.crm.headers.X-Odd",
		"integrations.crm.timeout_ms",
		"integrations.crm.retries",
		"integrations.crm.max_redirects",
		"integrations.crm.invalid_workflow_status",
		"integrations.crm.breaker_failures",
		"integrations.crm.breaker_cooldown",
		"integrations.crm.ca_file",
		"integrations.crm.workflows.ok.method",
		"integrations.crm.workflows.ok.path",
		"integrations.crm.workflows.dots.path",
		"integrations.crm.workflows.query.path",
		"integrations.crm.workflows.-bad",
		`integrations."user@"`,
		`integrations."user@".base_url`,
		"integrations.fx.workflows.none",
		"integrations.fx.workflows.bad.rules.0.error",
		"integrations.fx.workflows.bad.rules.1.status",
		"integrations.fx.workflows.bad.rules.1.body_file",
		"integrations.fx.workflows.bad.rules.2.match",
		"integrations.fx.workflows.bad.rules.3.error",
	}
	for _, k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("no error for %s", k)
		}
	}
	if t.Failed() {
		t.Log(err)
	}
	if msg := got["integrations.crm.headers.X-Key"]; !strings.Contains(msg, "MISSING") {
		t.Errorf("missing secret message %q does not name the variable", msg)
	}
	if strings.Contains(err.Error(), "literal-token") {
		t.Error("an error message holds a header value")
	}
	if slices.ContainsFunc(fes, func(e *FieldError) bool { return len(e.Key) == 0 }) {
		t.Error("an error without a key")
	}
}

func TestSecretsFromFileAndCA(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "token"), []byte("file-secret\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("not a certificate"), 0o600)
	crm := newCRM(t, func(w http.ResponseWriter, _ *http.Request, _ int64) { jsonReply(w, 200, `{}`) })
	s := newService(t, httpConfig(crm.URL, func(ic *IntegrationConfig) {
		ic.Headers = map[string]string{"X-Api-Key": "${file:token}", "X-Price": "$$5 and $ more"}
	}), Options{BaseDir: dir})
	wantBranch(t, execute(t, s, baseRequest("wf")), OnSuccess, 200)
	h := crm.recorded()[0].header
	if h.Get("X-Api-Key") != "file-secret" || h.Get("X-Price") != "$5 and $ more" {
		t.Errorf("headers %v", h)
	}
	_, err := New(httpConfig(crm.URL, func(ic *IntegrationConfig) { ic.CAFile = "ca.pem" }), Options{BaseDir: dir})
	if err == nil || !strings.Contains(err.Error(), "integrations.crm.ca_file: no PEM certificate") {
		t.Errorf("CA error %v", err)
	}
}

func TestTLSVerifiedByDefault(t *testing.T) {
	srv := newTLSCRM(t)
	s := newService(t, httpConfig(srv.URL, nil), Options{})
	res := execute(t, s, baseRequest("wf"))
	wantBranch(t, res, OnError, 0)
	if !strings.Contains(res.Err.Message, "TLS certificate") || res.Attempts != 1 {
		t.Errorf("message %q attempts %d", res.Err.Message, res.Attempts)
	}
	// With the server's CA in ca_file it is trusted.
	dir := t.TempDir()
	writeCA(t, srv, filepath.Join(dir, "ca.pem"))
	s = newService(t, httpConfig(srv.URL, func(ic *IntegrationConfig) { ic.CAFile = "ca.pem" }), Options{BaseDir: dir})
	wantBranch(t, execute(t, s, baseRequest("wf")), OnSuccess, 200)
}

func TestTimeoutRule(t *testing.T) {
	s := newService(t, Config{Integrations: map[string]IntegrationConfig{
		"slow": {BaseURL: "http://127.0.0.1:1", TimeoutMS: 9000},
		"fast": {BaseURL: "http://127.0.0.1:1"},
	}}, Options{})
	tests := []struct {
		config  string
		step    int64
		channel string
		want    time.Duration
	}{
		{"slow", 1500, "2500", 1500 * time.Millisecond},
		{"slow", 0, "2500", 2500 * time.Millisecond},
		{"slow", 0, "-5", 9 * time.Second},
		{"slow", -1, "abc", 9 * time.Second},
		{"fast", 0, "", DefaultTimeout},
		{"unknown", 0, "", DefaultTimeout},
		{"fast", 99999999, "700", 700 * time.Millisecond},
		{"fast", 0, "900000", DefaultTimeout}, // over CheckTimeoutMs's bound, like a step's
	}
	for _, tt := range tests {
		if got := s.Timeout(tt.config, tt.step, tt.channel); got != tt.want {
			t.Errorf("Timeout(%q, %d, %q) = %v, want %v", tt.config, tt.step, tt.channel, got, tt.want)
		}
	}
}

func TestCompilePath(t *testing.T) {
	good := []string{"/", "/a", "/a/", "/a/{id}", "/a/{id}/b/{x.y}", "/v1/contacts:search", "/a%2Fb", "/x/{a}-{b}"}
	bad := []string{"", "a", "/a//b", "/a/../b", "/./a", "/a/%2e%2E/b", "/a?x", "/a#f", "/a b", "/{", "/}", "/{1x}", "/{}", "/a/%zz", `/a\b`}
	for _, p := range good {
		if _, err := compilePath(p); err != nil {
			t.Errorf("compilePath(%q): %v", p, err)
		}
	}
	for _, p := range bad {
		if _, err := compilePath(p); err == nil {
			t.Errorf("compilePath(%q) accepted", p)
		}
	}
}

// Every duration in milliseconds has one bound, MaxMs; zero is refused
// unless it means something, and then the message says what. The keys of
// an integration and of a fixture rule are checked by that rule.
func TestCheckMs(t *testing.T) {
	for _, tt := range []struct {
		ms        int64
		zeroMeans string
		want      string // "" accepted
	}{
		{1, "", ""},
		{MaxMs, "", ""},
		{0, "", "must be from 1 to 600000 milliseconds, not 0"},
		{MaxMs + 1, "", "must be from 1 to 600000 milliseconds, not 600001"},
		{-5, "", "must be from 1 to 600000 milliseconds, not -5"},
		{0, "no grace", ""},
		{MaxMs, "no grace", ""},
		{-1, "no grace", "must be from 0 (no grace) to 600000 milliseconds, not -1"},
		{1 << 62, "no grace", "must be from 0 (no grace) to 600000 milliseconds, not 4611686018427387904"},
	} {
		got := ""
		if err := CheckMs(tt.ms, tt.zeroMeans); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("CheckMs(%d, %q) = %q, want %q", tt.ms, tt.zeroMeans, got, tt.want)
		}
	}
	_, err := New(Config{Integrations: map[string]IntegrationConfig{
		"crm": {BaseURL: "https://crm.example", TimeoutMS: MaxMs + 1, AttemptTimeoutMS: -1, Workflows: map[string]WorkflowConfig{"wf": {}}},
		"fx":  {Kind: "fixture", Workflows: map[string]WorkflowConfig{"wf": {Rules: []FixtureRule{{DelayMS: MaxMs + 1}}}}},
	}}, Options{BaseDir: t.TempDir()})
	for _, want := range []string{
		"integrations.crm.timeout_ms: must be from 0 (the default, 6000) to 600000 milliseconds, not 600001",
		"integrations.crm.attempt_timeout_ms: must be from 0 (the step timeout only) to 600000 milliseconds, not -1",
		"integrations.fx.workflows.wf.rules.0.delay_ms: must be from 0 (no delay) to 600000 milliseconds, not 600001",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no error %q in %v", want, err)
		}
	}
}
