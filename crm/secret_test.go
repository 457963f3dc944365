package crm

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

const testSecret = "s3cr3t-T0KEN-4f9d2c"

func secretEnv(val string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if name == "CRM_TOKEN" {
			return val, true
		}
		return "", false
	}
}

// A failing run at debug level, retries included, never logs the secret;
// neither do results, errors or any way of printing the configuration.
func TestSecretNeverLeaks(t *testing.T) {
	var seen []string
	crm := newCRM(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		seen = append(seen, r.Header.Get("Authorization"))
		if r.Method == http.MethodPost {
			drop(w)
			return
		}
		w.WriteHeader(500)
	})
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := newService(t, httpConfig(crm.URL, func(ic *IntegrationConfig) {
		ic.Headers = map[string]string{"Authorization": "Bearer ${env:CRM_TOKEN}", "X-Api-Key": "${env:CRM_TOKEN}"}
		ic.Retries = intp(1)
	}), Options{Logger: logger, LookupEnv: secretEnv(testSecret)})

	var out strings.Builder
	for _, wf := range []string{"wf", "get"} {
		res := s.Execute(context.Background(), baseRequest(wf))
		if res.Branch != OnError {
			t.Fatalf("%s: %+v", wf, res)
		}
		b, _ := json.Marshal(res.Err)
		fmt.Fprintf(&out, "%s %v %+v %#v\n", b, res.Err, res, res)
	}
	if len(seen) == 0 || seen[0] != "Bearer "+testSecret {
		t.Fatalf("the CRM did not get the secret: %q", seen)
	}
	in := s.integrations["crm"]
	logger.Debug("dump", "integration", in, "headers", in.headers, "secret", in.headers[0].value)
	fmt.Fprintf(&out, "%v %+v %#v %s %d %x %q\n", *in, in.headers, in.headers, in.headers[0].value, in.headers[0].value, in.headers[0].value, in.headers[0].value)
	b, _ := json.Marshal(in.headers[0].value)
	out.Write(b)

	text := logs.String()
	if !strings.Contains(text, "crm: request failed") || !strings.Contains(text, "crm: workflow executed") {
		t.Errorf("expected retryablehttp and summary lines at debug, got:\n%s", text)
	}
	if strings.Contains(text, "[DEBUG]") {
		t.Error("retryablehttp printed its own [DEBUG] lines")
	}
	for where, s := range map[string]string{"logs": text, "results and printing": out.String()} {
		if strings.Contains(s, testSecret) {
			t.Errorf("the secret appears in %s:\n%s", where, s)
		}
	}
}

// Errors about header values never quote them.
func TestSecretNotInValidationErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		env     string
		headers map[string]string
	}{
		"literal credential": {"", map[string]string{"X-Auth-Token": testSecret}},
		"newline in secret":  {testSecret + "\nX-Evil: 1", map[string]string{"Authorization": "Bearer ${env:CRM_TOKEN}"}},
		"control character":  {testSecret + "\x01", map[string]string{"X-Api-Key": "${env:CRM_TOKEN}"}},
		"bad reference":      {testSecret, map[string]string{"X-Api-Key": "${env:CRM_TOKEN} ${oops"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(httpConfig("https://crm.example", func(ic *IntegrationConfig) { ic.Headers = tc.headers }),
				Options{LookupEnv: secretEnv(tc.env)})
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error holds the secret: %v", err)
			}
		})
	}
}
