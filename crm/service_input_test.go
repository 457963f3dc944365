package crm

import (
	"context"
	"errors"
	"testing"
)

// An input the step engine rejected is OnInvalidInput, but disabled agent
// integrations still come first (they outrank invalid input), and nothing is
// sent.
func TestInputErrorRanksAfterDisabled(t *testing.T) {
	svc, err := New(Config{
		Tenants: map[string]TenantConfig{"off": {AgentIntegrations: new(bool)}},
		Integrations: map[string]IntegrationConfig{
			"demo": {Kind: "fixture", Workflows: map[string]WorkflowConfig{"wf": {Rules: []FixtureRule{{Body: `{}`}}}}},
		},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	bad := errors.New("sequence: unterminated quote at column 3")
	res := svc.Execute(context.Background(), Request{ConfigID: "demo", WorkflowID: "wf", InputError: bad})
	if res.Branch != OnInvalidInput || res.Attempts != 0 || res.Err == nil || res.Err.Message == "" {
		t.Fatalf("got %+v", res)
	}
	res = svc.Execute(context.Background(), Request{Tenant: "off", ConfigID: "demo", WorkflowID: "wf", InputError: bad})
	if res.Branch != OnAgentIntegrationDisabled {
		t.Fatalf("disabled tenant: %v", res.Branch)
	}
}
