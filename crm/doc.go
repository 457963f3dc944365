// Package crm runs the HTTP side of the Workflow Execute step: it validates
// a step's inputs, calls a CRM workflow (or a configured fixture), and turns
// whatever happened into exactly one outcome — one of the six branches of
// BRIEF §1, or a hangup.
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
package crm
