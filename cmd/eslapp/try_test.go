package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

// eslapp try runs one call through the engine and the FreeSWITCH double
// and prints its timeline; the exit status says whether it ended on the
// expected branch. Times, the call's UUID and the sounds' directory are
// masked in the golden files (testdata/try/*.golden).
func TestTryGolden(t *testing.T) {
	t.Setenv("TRY_TEST_TOKEN", "unused-by-fixtures")
	cfg := filepath.Join("testdata", "try", "eslapp.toml")
	sounds, _ := filepath.Abs(filepath.Join("..", "..", "sounds"))
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"flow_success", []string{"-flow", "lookup"}, 0},
		// The same call socket-less: announced, parked, run over an
		// inbound connection, transferred to its branch.
		{"flow_success_socketless", []string{"-flow", "lookup", "-socketless"}, 0},
		{"dialplan_error_socketless", []string{"-dialplan", filepath.Join("testdata", "try", "broken.vars.toml"), "-expect", "OnError", "-socketless"}, 0},
		// Not found is an answer: OnSuccess with {"found":false}.
		{"flow_not_found", []string{"-flow", "lookup", "-caller", "9995550100"}, 0},
		{"flow_expect_other", []string{"-flow", "lookup", "-expect", "OnTimeout"}, 2},
		{"dialplan_error", []string{"-dialplan", filepath.Join("testdata", "try", "broken.vars.toml")}, 2},
		{"dialplan_error_expected", []string{"-dialplan", filepath.Join("testdata", "try", "broken.vars.toml"), "-expect", "OnError"}, 0},
		{"dialplan_var", []string{"-dialplan", filepath.Join("testdata", "try", "broken.vars.toml"), "-var", "wfe_workflow_id=lookup"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, append([]string{"try", "-config", cfg}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, errOut)
			}
			checkGolden(t, filepath.Join("testdata", "try", tc.name+".golden"), maskTry(out, sounds))
		})
	}
}

var (
	tryTimes = regexp.MustCompile(`\+\d+\.\d{3}s`)
	tryUUID  = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	tryMs    = regexp.MustCompile(`wfe_elapsed_ms=\d+`)
)

func maskTry(s, sounds string) string {
	s = strings.ReplaceAll(s, sounds, "SOUNDS")
	s = tryTimes.ReplaceAllString(s, "+T")
	s = tryUUID.ReplaceAllString(s, "UUID")
	return tryMs.ReplaceAllString(s, "wfe_elapsed_ms=N")
}

// try cannot run without a call to make, on an unknown flow, or on a
// configuration with problems: exit 1.
func TestTryCannotRun(t *testing.T) {
	cfg := filepath.Join("testdata", "try", "eslapp.toml")
	t.Setenv("TRY_TEST_TOKEN", "x")
	for _, args := range [][]string{
		{"try", "-config", cfg},
		{"try", "-config", cfg, "-flow", "nope"},
		{"try", "-config", cfg, "-flow", "lookup", "-crm", "maybe"},
		{"try", "-config", cfg, "-flow", "lookup", "-var", "not a var"},
		{"try", "-config", filepath.Join("testdata", "graph", "broken.toml"), "-flow", "broken"},
	} {
		if code, _, errOut := runCmd(t, args...); code != 1 || errOut == "" {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// -crm live sends the real request: the CRM here is a test server that
// records it.
func TestTryLiveCRM(t *testing.T) {
	var got atomic.Value
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Method + " " + r.URL.Path + " " + r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"live":true}`)
	}))
	defer crm.Close()
	t.Setenv("TRY_TEST_TOKEN", "t0k")
	cfg := filepath.Join(t.TempDir(), "eslapp.toml")
	sounds, _ := filepath.Abs(filepath.Join("..", "..", "sounds"))
	writeFile(t, cfg, `[sounds]
dir = "`+sounds+`"
[integrations.crm]
base_url = "`+crm.URL+`"
headers = { Authorization = "Bearer ${env:TRY_TEST_TOKEN}" }
[[integrations.crm.workflows.lookup.rules]]
body = '{"fixture":true}'
`)
	vars := filepath.Join(t.TempDir(), "vars.toml")
	writeFile(t, vars, "wfe_config_id = \"crm\"\nwfe_workflow_id = \"lookup\"\nwfe_payload = '{\"phone\":\"{ANI}\"}'\n")
	code, out, errOut := runCmd(t, "try", "-config", cfg, "-dialplan", vars, "-crm", "live")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if g, _ := got.Load().(string); g != "POST /lookup Bearer t0k" {
		t.Errorf("the CRM saw %q", g)
	}
	if !strings.Contains(out, `workflowResultOutput={"live":true}`) {
		t.Errorf("timeline:\n%s", out)
	}
}

// -crm fixture still checks the configuration as it would run: an http
// integration whose path needs a secret that is not set cannot pass.
func TestTryChecksBeforeFixtures(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "eslapp.toml")
	sounds, _ := filepath.Abs(filepath.Join("..", "..", "sounds"))
	writeFile(t, cfg, `[sounds]
dir = "`+sounds+`"
[integrations.crm]
base_url = "https://crm.invalid"
[integrations.crm.workflows.lookup]
path = "/run?code=${env:TRY_TEST_UNSET_KEY}"
`)
	vars := filepath.Join(t.TempDir(), "vars.toml")
	writeFile(t, vars, "wfe_config_id = \"crm\"\nwfe_workflow_id = \"lookup\"\n")
	if code, _, errOut := runCmd(t, "try", "-config", cfg, "-dialplan", vars); code != 1 || !strings.Contains(errOut, "TRY_TEST_UNSET_KEY") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// A flow that ends in a hangup: its outputs are set before the hangup,
// and its branch is the last step's outcome.
func TestTryFlowEndingInHangup(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "eslapp.toml")
	sounds, _ := filepath.Abs(filepath.Join("..", "..", "sounds"))
	writeFile(t, cfg, `[sounds]
dir = "`+sounds+`"
[prompts]
hold_music = ""
[integrations.crm]
kind = "fixture"
[[integrations.crm.workflows.lookup.rules]]
body = '{}'
[flows.bye]
start = "find"
[flows.bye.actions.find]
type = "workflow_execute"
config_id = "crm"
workflow_id = "lookup"
branches = { Default = "end" }
[flows.bye.actions.end]
type = "hangup"
`)
	code, out, errOut := runCmd(t, "try", "-config", cfg, "-flow", "bye")
	if code != 0 || !strings.Contains(out, "branch  OnSuccess") {
		t.Errorf("exit %d: %s%s", code, out, errOut)
	}
}
