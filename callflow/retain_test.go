package callflow_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/eslapp/eslapp/esl/esltest"
)

// A call keeps only the channel variables it may read (wfe_*, those its
// templates and the workflow paths name, and the few the engine reads by
// name) and drops the rest; what it keeps still reaches the CRM path, the
// payload and a later action of a flow.
func TestCallKeepsTheChannelVariablesItReads(t *testing.T) {
	var mu sync.Mutex
	var paths, bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 512)
		n, _ := r.Body.Read(b)
		mu.Lock()
		paths, bodies = append(paths, r.URL.Path), append(bodies, string(b[:n]))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	cfg := fmt.Sprintf(`[integrations.crm]
base_url = %q
retries = 0
[integrations.crm.workflows.lookup]
path = "/accounts/{account_no}"

[flows.f]
start = "step"
[flows.f.actions.step]
type = "workflow_execute"
config_id = "crm"
workflow_id = "lookup"
payload = '{"who":"{customer_tier}"}'
branches = { Default = "keep" }
[flows.f.actions.keep]
type = "set"
vars = { seen = "{late_var}" }
next = "back"
[flows.f.actions.back]
type = "continue"
`, srv.URL)
	e := newEngine(t, cfg, testLog(t))
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	c := runCall(t, e, fs, callScript{opts: esltest.CallOptions{Vars: map[string]string{
		"wfe_flow": "f", "account_no": "ACC-42", "customer_tier": "gold", "late_var": "still here",
		"unrelated_big_var": "dropped",
	}}})
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 1 || paths[0] != "/accounts/ACC-42" || bodies[0] != `{"who":"gold"}` {
		t.Fatalf("CRM saw %q %q", paths, bodies)
	}
	if v, _ := c.Var("seen"); v != "still here" {
		t.Errorf("a later action read %q from the channel, want %q", v, "still here")
	}
}
