// Package crm runs the HTTP side of the Workflow Execute step: it validates
// a step's inputs, calls a CRM workflow (or a configured fixture), and turns
// whatever happened into exactly one outcome — one of the six branches
// (Branch), or a hangup.
//
// The pieces, in the order a step meets them:
//
//   - Config and New: the [tenants] and [integrations] tables, checked in
//     one pass that reports every problem as a *FieldError naming its key.
//     Header values may reference secrets (${env:NAME}, ${file:PATH}); they
//     are resolved at load and held as Secret, which never prints.
//   - Service.Execute: validation (no request for the first three
//     outcomes), the circuit breaker, then go-retryablehttp under one
//     context whose deadline is the step timeout and whose parent is the
//     call.
//   - Classify: the one function from Evidence to Branch and StepError.
//
// A fixture integration answers from rules through an http.RoundTripper, so
// demos and dry runs take the same path as a real CRM.
//
// It must not know about calls: no FreeSWITCH, no prompts, no channel
// variables (the step engine, callflow, renders a Request and routes on the
// Result); and it reads no configuration file (cmd/eslapp decodes the TOML
// and hands it a Config). The rules for values both check and a call meet —
// ids (ValidID), durations in milliseconds (CheckMs) — are exported so that
// the packages that read those values apply the same ones.
package crm
