package crm

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"github.com/eslapp/eslapp/conf"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-cleanhttp"
)

// Options are what New needs besides the configuration.
type Options struct {
	// Logger receives one line per step (with the call UUID) and, at debug
	// level, retryablehttp's per-attempt lines. Nil discards.
	Logger *slog.Logger
	// BaseDir resolves relative ${file:...}, ca_file and body_file paths:
	// the directory of the configuration file. Empty: the working directory.
	BaseDir string
	// LookupEnv resolves ${env:NAME}; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Now is the circuit breaker's clock; nil means time.Now.
	Now func() time.Time
	// OnBreakerChange, if set, is called after a workflow's breaker
	// changes state (for metrics and alerts). It must not block.
	OnBreakerChange func(configID, workflowID string, from, to BreakerState)
}

// integration is a checked [integrations.ID] with its shared HTTP client.
type integration struct {
	id            string
	tenant        string
	enabled       bool
	base          *url.URL
	headers       []header
	timeout       time.Duration // 0: DefaultTimeout
	retries       int
	maxResponse   int64
	maxPayload    int
	invalidStatus []int
	workflows     map[string]*workflow

	client    *http.Client    // shared by every step of this integration
	transport *http.Transport // nil for fixtures; closed by Service.Close
}

type workflow struct {
	id      string
	method  string
	path    pathTemplate
	query   []queryParam // nil: no query string
	headers []header
	enabled bool
	// breaker is this workflow's own: one workflow failing (a slow report
	// endpoint) must not stop the others of its integration.
	breaker *breaker
}

// header is a configured request header. Values are kept as Secret even
// when they hold no reference: one type, one way to reveal them.
type header struct {
	name  string // canonical
	value conf.Secret
}

// reservedHeader reports headers the client sets itself; configuring them
// would break idempotency, correlation or framing.
func reservedHeader(canon string) bool {
	switch canon {
	case "Connection", "Content-Length", "Expect", "Host", "Idempotency-Key", "Keep-Alive",
		"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "X-Request-Id":
		return true
	}
	return false
}

// checker collects every problem in a configuration.
type checker struct {
	errs FieldErrors
	res  conf.Resolver
}

func (c *checker) add(key []string, format string, args ...any) {
	c.errs = append(c.errs, &FieldError{Key: slices.Clone(key), Msg: fmt.Sprintf(format, args...)})
}

func sub(key []string, more ...string) []string {
	return append(slices.Clone(key), more...)
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

// load checks cfg and builds the integrations. It reports every problem,
// not only the first.
func load(cfg Config, opts Options) (map[string]bool, map[string]*integration, FieldErrors) {
	lookupEnv := opts.LookupEnv
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	c := &checker{res: conf.Resolver{LookupEnv: lookupEnv, BaseDir: opts.BaseDir}}

	tenants := map[string]bool{DefaultTenant: true}
	for _, name := range slices.Sorted(maps.Keys(cfg.Tenants)) {
		if !ValidID(name) {
			c.add([]string{"tenants", name}, "tenant name must match [A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
		}
		tenants[name] = boolOr(cfg.Tenants[name].AgentIntegrations, true)
	}

	integrations := make(map[string]*integration, len(cfg.Integrations))
	for _, id := range slices.Sorted(maps.Keys(cfg.Integrations)) {
		key := []string{"integrations", id}
		if !ValidID(id) {
			c.add(key, "configuration id must match [A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
		}
		if in := c.integration(id, cfg.Integrations[id], key, tenants); in != nil {
			integrations[id] = in
		}
	}
	return tenants, integrations, c.errs
}

func (c *checker) integration(id string, ic IntegrationConfig, key []string, tenants map[string]bool) *integration {
	in := &integration{
		id:            id,
		tenant:        ic.Tenant,
		enabled:       boolOr(ic.Enabled, true),
		timeout:       time.Duration(ic.TimeoutMS) * time.Millisecond,
		retries:       DefaultRetries,
		maxResponse:   ic.MaxResponseBytes,
		maxPayload:    ic.MaxPayloadBytes,
		invalidStatus: ic.InvalidWorkflowStatus,
		workflows:     make(map[string]*workflow, len(ic.Workflows)),
	}
	if in.tenant == "" {
		in.tenant = DefaultTenant
	} else if _, ok := tenants[in.tenant]; !ok {
		c.add(sub(key, "tenant"), "tenant %q is not defined under [tenants]", conf.Clip(in.tenant, 64))
	}

	fixture := false
	switch ic.Kind {
	case "", "http":
	case "fixture":
		fixture = true
	default:
		c.add(sub(key, "kind"), "must be \"http\" or \"fixture\", not %q", conf.Clip(ic.Kind, 40))
	}

	c.limits(ic, key, in)
	maxRedirects := DefaultMaxRedirects
	if ic.MaxRedirects != nil {
		maxRedirects = *ic.MaxRedirects
		if maxRedirects < 0 || maxRedirects > 10 {
			c.add(sub(key, "max_redirects"), "must be from 0 to 10, not %d", maxRedirects)
		}
	}
	failures := DefaultBreakerFailures
	if ic.BreakerFailures != nil {
		failures = *ic.BreakerFailures
		if failures < 0 {
			c.add(sub(key, "breaker_failures"), "must be 0 (disabled) or more, not %d", failures)
		}
	}
	cooldown := DefaultBreakerCooldown
	if ic.BreakerCooldown != "" {
		d, err := time.ParseDuration(ic.BreakerCooldown)
		if err != nil || d <= 0 {
			c.add(sub(key, "breaker_cooldown"), "%q is not a positive duration (examples: \"10s\", \"1m\")", conf.Clip(ic.BreakerCooldown, 40))
		} else {
			cooldown = d
		}
	}
	for _, wid := range slices.Sorted(maps.Keys(ic.Workflows)) {
		wkey := sub(key, "workflows", wid)
		if wf := c.workflow(wid, ic.Workflows[wid], wkey, fixture); wf != nil {
			wf.breaker = &breaker{threshold: max(failures, 0), cooldown: cooldown}
			in.workflows[wid] = wf
		}
	}

	attempt := time.Duration(ic.AttemptTimeoutMS) * time.Millisecond
	if err := CheckMs(int64(ic.AttemptTimeoutMS), "the step timeout only"); err != nil {
		c.add(sub(key, "attempt_timeout_ms"), "%v", err)
		attempt = 0
	}
	client := &http.Client{CheckRedirect: checkRedirect(maxRedirects), Timeout: attempt}
	if fixture {
		in.base, _ = url.Parse(fixtureBaseURL)
		client.Transport = c.fixture(ic, key)
	} else {
		in.base = c.baseURL(ic.BaseURL, sub(key, "base_url"))
		in.headers = c.headers(ic.Headers, sub(key, "headers"))
		in.transport = c.transport(ic, key)
		client.Transport = keepIdle{in.transport}
	}
	in.client = client
	return in
}

// limits checks the numeric keys of an integration.
func (c *checker) limits(ic IntegrationConfig, key []string, in *integration) {
	if err := CheckMs(int64(ic.TimeoutMS), fmt.Sprintf("the default, %d", DefaultTimeout.Milliseconds())); err != nil {
		c.add(sub(key, "timeout_ms"), "%v", err)
		in.timeout = 0
	}
	if ic.Retries != nil {
		in.retries = *ic.Retries
		if in.retries < 0 || in.retries > 10 {
			c.add(sub(key, "retries"), "must be from 0 to 10, not %d", in.retries)
			in.retries = 0
		}
	}
	switch {
	case in.maxResponse == 0:
		in.maxResponse = DefaultMaxResponseBytes
	case in.maxResponse < 0 || in.maxResponse > 64<<20:
		c.add(sub(key, "max_response_bytes"), "must be from 1 to %d, not %d", 64<<20, in.maxResponse)
	}
	switch {
	case in.maxPayload == 0:
		in.maxPayload = DefaultMaxPayloadBytes
	case in.maxPayload < 0 || in.maxPayload > 16<<20:
		c.add(sub(key, "max_payload_bytes"), "must be from 1 to %d, not %d", 16<<20, in.maxPayload)
	}
	for _, st := range ic.InvalidWorkflowStatus {
		if st < 400 || st > 599 {
			c.add(sub(key, "invalid_workflow_status"), "%d: only 4xx and 5xx statuses can mean \"no such workflow\"", st)
		}
	}
}

func (c *checker) workflow(id string, wc WorkflowConfig, key []string, fixture bool) *workflow {
	if !ValidID(id) {
		c.add(key, "workflow id must match [A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
	}
	wf := &workflow{id: id, method: strings.ToUpper(wc.Method), enabled: boolOr(wc.Enabled, true)}
	switch wf.method {
	case "":
		wf.method = http.MethodPost
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		c.add(sub(key, "method"), "must be GET, POST, PUT, PATCH or DELETE, not %q", conf.Clip(wc.Method, 20))
	}
	p := wc.Path
	if p == "" || fixture {
		// Fixture requests are routed by workflow id; its path is unused.
		p = "/" + url.PathEscape(id)
	}
	p, query, hasQuery := strings.Cut(p, "?")
	t, err := compilePath(p)
	if err != nil {
		c.add(sub(key, "path"), "%v", err)
	}
	wf.path = t
	if hasQuery {
		if wf.query, err = compileQuery(query, c.res); err != nil {
			c.add(sub(key, "path"), "query: %v", err)
		}
	}
	if !fixture {
		wf.headers = c.headers(wc.Headers, sub(key, "headers"))
	}
	if fixture && wf.enabled && len(wc.Rules) == 0 {
		c.add(key, "a workflow of a fixture integration needs at least one [[...rules]] entry")
	}
	return wf
}

// fixture builds the rules of every workflow of a fixture integration.
func (c *checker) fixture(ic IntegrationConfig, key []string) *fixtureTransport {
	ft := &fixtureTransport{workflows: make(map[string][]fixtureRule, len(ic.Workflows))}
	for _, wid := range slices.Sorted(maps.Keys(ic.Workflows)) {
		wc := ic.Workflows[wid]
		rules := make([]fixtureRule, 0, len(wc.Rules))
		for i, r := range wc.Rules {
			rkey := sub(key, "workflows", wid, "rules", fmt.Sprint(i))
			rules = append(rules, compileRule(r, rkey, c.res, &c.errs))
		}
		ft.workflows["/"+url.PathEscape(wid)] = rules
	}
	return ft
}

func (c *checker) baseURL(raw string, key []string) *url.URL {
	if raw == "" {
		c.add(key, "required for kind = \"http\" (example: \"https://crm.example.com/api\")")
		return &url.URL{Scheme: "http", Host: "base-url.invalid"}
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		c.add(key, "not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		c.add(key, "must start with https:// or http://")
	case u.Host == "":
		c.add(key, "has no host")
	case u.User != nil:
		c.add(key, "must not hold user info: put credentials in a header as ${env:NAME}")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		c.add(key, "must not hold a query or fragment")
	case slices.Contains(strings.Split(u.Path, "/"), ".."), slices.Contains(strings.Split(u.Path, "/"), "."):
		c.add(key, "must not hold \".\" or \"..\" segments")
	default:
		return u
	}
	return &url.URL{Scheme: "http", Host: "base-url.invalid"}
}

// headers resolves configured header values. Messages name the header and
// the reference, never a value.
func (c *checker) headers(m map[string]string, key []string) []header {
	var out []header
	for _, name := range slices.Sorted(maps.Keys(m)) {
		hkey := sub(key, name)
		canon := http.CanonicalHeaderKey(name)
		switch {
		case !validHeaderName(name):
			c.add(hkey, "not a valid header name")
			continue
		case reservedHeader(canon):
			c.add(hkey, "set by eslapp itself; it cannot be configured")
			continue
		}
		val, hasRef, err := c.res.Resolve(m[name])
		if err != nil {
			c.add(hkey, "%v", err)
			continue
		}
		if credentialHeader(name) && !hasRef {
			c.add(hkey, "holds a credential written in the file: reference it as ${env:NAME} or ${file:PATH}")
			continue
		}
		if !validHeaderValue(val.Reveal()) {
			c.add(hkey, "value (after resolving references) holds a control character or newline")
			continue
		}
		out = append(out, header{name: canon, value: val})
	}
	return out
}

// transport is the integration's connection pool. The defaults of
// cleanhttp keep only GOMAXPROCS+1 idle connections per host: on a 2-core
// machine a burst of 200 concurrent steps would open and close connections
// all the time, so the idle pool is sized for that burst.
func (c *checker) transport(ic IntegrationConfig, key []string) *http.Transport {
	t := cleanhttp.DefaultPooledTransport()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 60 * time.Second
	t.TLSHandshakeTimeout = 5 * time.Second
	t.ResponseHeaderTimeout = 0 // the step deadline bounds every attempt
	t.MaxResponseHeaderBytes = 64 << 10
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if ic.CAFile != "" {
		pem, err := os.ReadFile(c.res.Path(ic.CAFile))
		if err != nil {
			c.add(sub(key, "ca_file"), "%v", err)
		} else {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				c.add(sub(key, "ca_file"), "no PEM certificate found in %s", ic.CAFile)
			}
			tlsConf.RootCAs = pool
		}
	}
	t.TLSClientConfig = tlsConf
	t.Protocols = new(http.Protocols)
	switch ic.HTTP2 {
	case "", "auto":
		t.Protocols.SetHTTP1(true)
		t.Protocols.SetHTTP2(true)
	case "h2c":
		if !strings.HasPrefix(ic.BaseURL, "http://") {
			c.add(sub(key, "http2"), "h2c is HTTP/2 without TLS: base_url must be http://")
		}
		t.Protocols.SetUnencryptedHTTP2(true)
		t.Protocols.SetHTTP2(true)
	case "off":
		t.Protocols.SetHTTP1(true)
	default:
		c.add(sub(key, "http2"), "%q: one of auto, h2c, off", ic.HTTP2)
	}
	return t
}

// keepIdle hides the transport's CloseIdleConnections from http.Client.
// retryablehttp calls Client.CloseIdleConnections whenever a request gives
// up; with one pool shared by hundreds of concurrent calls, one failing step
// would tear down every other call's idle connection. Service.Close closes
// them instead.
type keepIdle struct {
	rt http.RoundTripper
}

func (k keepIdle) RoundTrip(r *http.Request) (*http.Response, error) { return k.rt.RoundTrip(r) }

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
