package crm

import (
	"github.com/eslapp/eslapp/conf"
	"time"
)

// Config is the CRM part of eslapp's TOML configuration: the [tenants] and
// [integrations] tables. cmd/ decodes it (the toml tags are the key names)
// and passes it to New, which checks it, applies defaults and resolves
// secrets. Pointer fields tell "unset" from an explicit zero or false.
type Config struct {
	Tenants      map[string]TenantConfig      `toml:"tenants"`
	Integrations map[string]IntegrationConfig `toml:"integrations"`
}

// TenantConfig is [tenants.NAME]. The tenant "default" exists even when it
// is not configured, with agent integrations on.
type TenantConfig struct {
	AgentIntegrations *bool `toml:"agent_integrations"` // default true
}

// IntegrationConfig is [integrations.CONFIG_ID].
type IntegrationConfig struct {
	Kind    string `toml:"kind"`    // "http" (default) or "fixture"
	Tenant  string `toml:"tenant"`  // default "default"
	Enabled *bool  `toml:"enabled"` // default true

	// HTTP integrations. A fixture integration ignores these keys (and does
	// not resolve the secrets in Headers), so turning an integration into a
	// fixture for a dry run is a change of kind plus rules.
	BaseURL string            `toml:"base_url"` // absolute http(s) URL, no user info, query or fragment
	Headers map[string]string `toml:"headers"`  // values may hold ${env:NAME} / ${file:PATH}
	CAFile  string            `toml:"ca_file"`  // PEM bundle; when set, the only roots trusted
	// HTTP2 is "auto" (default: HTTP/2 when the CRM offers it over TLS,
	// else HTTP/1.1), "h2c" (HTTP/2 without TLS, for an http:// base_url
	// whose server speaks it) or "off" (HTTP/1.1 only). HTTP/2 carries every
	// concurrent step on one connection; HTTP/1.1 needs a connection, two
	// goroutines and two 4 KiB buffers per step in flight.
	HTTP2 string `toml:"http2"`

	TimeoutMS             int    `toml:"timeout_ms"`              // step timeout fallback; default 6000
	AttemptTimeoutMS      int    `toml:"attempt_timeout_ms"`      // per attempt; default 0 = the step timeout only
	Retries               *int   `toml:"retries"`                 // default 2
	MaxRedirects          *int   `toml:"max_redirects"`           // same origin only; default 3
	MaxResponseBytes      int64  `toml:"max_response_bytes"`      // default 1 MiB
	MaxPayloadBytes       int    `toml:"max_payload_bytes"`       // default 64 KiB
	InvalidWorkflowStatus []int  `toml:"invalid_workflow_status"` // default none
	BreakerFailures       *int   `toml:"breaker_failures"`        // default 5; 0 disables
	BreakerCooldown       string `toml:"breaker_cooldown"`        // Go duration; default "30s"

	Workflows map[string]WorkflowConfig `toml:"workflows"`
}

// WorkflowConfig is [integrations.CONFIG_ID.workflows.WORKFLOW_ID].
type WorkflowConfig struct {
	Method  string            `toml:"method"`  // default POST
	Path    string            `toml:"path"`    // default "/WORKFLOW_ID"; may hold {var}
	Headers map[string]string `toml:"headers"` // added to the integration's
	Enabled *bool             `toml:"enabled"` // default true

	// Rules answer requests of a fixture integration: the first that
	// matches the payload gives the response. Ignored by kind "http".
	Rules []FixtureRule `toml:"rules"`
}

// FixtureRule is one [[integrations.ID.workflows.WF.rules]] entry.
type FixtureRule struct {
	// Match compares top-level payload fields with patterns in path.Match
	// syntax ("123*"); values may be strings, numbers or booleans. An empty
	// Match matches every request.
	Match    map[string]any    `toml:"match"`
	Status   int               `toml:"status"`    // default 200
	Body     string            `toml:"body"`      // sent as is (invalid JSON is allowed, to demo OnError)
	BodyFile string            `toml:"body_file"` // read at load; relative to the config directory
	Headers  map[string]string `toml:"headers"`   // response headers, e.g. Retry-After
	DelayMS  int               `toml:"delay_ms"`  // before answering; cancelled with the request
	// Error fails the request instead of answering: "reset" (connection
	// reset after the request was sent), "refused" (connection refused:
	// never sent, so retried) or "timeout" (never answers).
	Error string `toml:"error"`
}

// Defaults for keys that are not set.
const (
	DefaultTimeout          = 6000 * time.Millisecond
	DefaultRetries          = 2
	DefaultMaxRedirects     = 3
	DefaultMaxResponseBytes = 1 << 20
	DefaultMaxPayloadBytes  = 64 << 10
	DefaultBreakerFailures  = 5
	DefaultBreakerCooldown  = 30 * time.Second
	DefaultTenant           = "default"
)

// FieldError and FieldErrors are the configuration's problems, one type
// for every package that checks a part of it.
type (
	FieldError  = conf.FieldError
	FieldErrors = conf.FieldErrors
)

// ValidID reports whether s is a well-formed configuration, workflow or
// tenant id: [A-Za-z0-9][A-Za-z0-9._:-]{0,127}, which a URL, a log line
// and a channel variable carry as it is.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == ':' || c == '-'):
		default:
			return false
		}
	}
	return true
}
