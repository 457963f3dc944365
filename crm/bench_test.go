package crm

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkExecute measures the client's overhead per step against a local
// server that answers at once: validation, headers, retryablehttp, the
// breaker, reading and compacting the body, classification.
func BenchmarkExecute(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"found":true,"contact":{"id":"C-1001","name":"Ada Lovelace","balance":"12.50"}}`)
	}))
	defer srv.Close()
	env := func(string) (string, bool) { return "token", true }
	s, err := New(httpConfig(srv.URL, func(ic *IntegrationConfig) {
		ic.Headers = map[string]string{"Authorization": "Bearer ${env:T}"}
	}), Options{LookupEnv: env})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	req := baseRequest("wf")
	ctx := context.Background()

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if res := s.Execute(ctx, req); res.Branch != OnSuccess {
				b.Fatalf("%+v", res)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if res := s.Execute(ctx, req); res.Branch != OnSuccess {
					b.Errorf("%+v", res)
					return
				}
			}
		})
	})
}

// BenchmarkExecuteFixture is the same step without a network: what the
// package itself costs.
func BenchmarkExecuteFixture(b *testing.B) {
	s, err := New(Config{Integrations: map[string]IntegrationConfig{"fx": {
		Kind: "fixture",
		Workflows: map[string]WorkflowConfig{"search": {Rules: []FixtureRule{
			{Match: map[string]any{"phone": "123*"}, Body: `{"found":true,"contact":{"id":"C-1001","name":"Ada Lovelace"}}`},
			{Body: `{"found":false}`},
		}}},
	}}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	req := Request{ConfigID: "fx", WorkflowID: "search", Payload: []byte(`{"phone":"1235550100"}`), CallUUID: "u", StepID: "s"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res := s.Execute(ctx, req); res.Branch != OnSuccess {
			b.Fatalf("%+v", res)
		}
	}
}
