package crm

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// http2 = "h2c" talks HTTP/2 to an http:// CRM, so that concurrent steps
// share one connection.
func TestH2C(t *testing.T) {
	var mu sync.Mutex
	protos := map[string]int{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos[r.Proto]++
		mu.Unlock()
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()

	svc, err := New(Config{Integrations: map[string]IntegrationConfig{
		"h2": {BaseURL: srv.URL, HTTP2: "h2c", Workflows: map[string]WorkflowConfig{"wf": {}}},
	}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res := svc.Execute(context.Background(), Request{ConfigID: "h2", WorkflowID: "wf", Payload: []byte(`{}`)}); res.Branch != OnSuccess {
				t.Errorf("%+v", res)
			}
		}()
	}
	wg.Wait()
	if protos["HTTP/2.0"] != 20 {
		t.Fatalf("protocols seen: %v", protos)
	}
	if _, err := New(Config{Integrations: map[string]IntegrationConfig{
		"bad": {BaseURL: "https://crm.example.com", HTTP2: "h2c", Workflows: map[string]WorkflowConfig{"wf": {}}},
	}}, Options{}); err == nil {
		t.Fatal("h2c accepted for an https base_url")
	}
}
