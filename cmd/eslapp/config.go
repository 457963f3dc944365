package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/eslapp/eslapp/callflow"
	"github.com/eslapp/eslapp/conf"
	"github.com/eslapp/eslapp/crm"
	"github.com/eslapp/eslapp/esl"
)

// Config is eslapp's TOML configuration (conf/eslapp.toml). Values are kept
// as written; load checks them and converts them for the packages.
type Config struct {
	Server       ServerConfig                     `toml:"server"`
	Socketless   SocketlessConfig                 `toml:"socketless"`
	Log          LogConfig                        `toml:"log"`
	Sounds       SoundsConfig                     `toml:"sounds"`
	TTS          TTSConfig                        `toml:"tts"`
	Prompts      PromptsConfig                    `toml:"prompts"`
	Tenants      map[string]crm.TenantConfig      `toml:"tenants"`
	Integrations map[string]crm.IntegrationConfig `toml:"integrations"`
	Flows        map[string]callflow.FlowConfig   `toml:"flows"`
}

// SoundsConfig is [sounds].
type SoundsConfig struct {
	// Dir is where relative sound names in sequences are found, by eslapp
	// (to check them) and by FreeSWITCH (to play them): both must see the
	// same path. A relative dir is taken from the working directory and
	// made absolute. Default "sounds".
	Dir string `toml:"dir"`
}

// TTSConfig is [tts].
type TTSConfig struct {
	Engine string `toml:"engine"` // default flite
	Voice  string `toml:"voice"`  // default kal
}

// PromptsConfig is [prompts].
type PromptsConfig struct {
	Language            string            `toml:"language"`             // say language, default en
	Prefixes            map[string]string `toml:"prefixes"`             // extra prefix characters: { "~" = "currency" }
	PlaybackTerminators *string           `toml:"playback_terminators"` // default "none"; "" keeps the channel's
	HoldMusic           *string           `toml:"hold_music"`           // default "holdmusic.wav"; "" for silence
	Policy              string            `toml:"policy"`               // dialplan-mode default: interrupt
	GraceMs             int64             `toml:"grace_ms"`             // dialplan-mode default: 0
}

// ServerConfig is [server].
type ServerConfig struct {
	Listen         string   `toml:"listen"`          // default 127.0.0.1:8084
	MetricsListen  string   `toml:"metrics_listen"`  // Prometheus /metrics; "" disables
	Pprof          bool     `toml:"pprof"`           // also serve /debug/pprof/ on metrics_listen
	Allow          []string `toml:"allow"`           // source networks; default loopback
	MaxCalls       int      `toml:"max_calls"`       // 0: no limit
	DrainTimeout   string   `toml:"drain_timeout"`   // default 30s
	CommandTimeout string   `toml:"command_timeout"` // default 5s
	MaxConnecting  *int     `toml:"max_connecting"`  // connections not yet through connect; default 256
	GoMaxProcs     *int     `toml:"gomaxprocs"`      // CPUs eslapp runs on; default 1, 0: all
	// SharedSecret, a ${env:}/${file:} reference, must be presented by
	// every call in the channel variable SharedSecretVar (default
	// wfe_secret) before eslapp asks the CRM anything; "" disables.
	SharedSecret    string `toml:"shared_secret"`
	SharedSecretVar string `toml:"shared_secret_var"`
}

// SocketlessConfig is [socketless]: the inbound connections to the
// FreeSWITCH hosts over which eslapp takes the calls a dialplan hands over
// without a socket (a CUSTOM event, then hold music or park).
type SocketlessConfig struct {
	Enabled bool `toml:"enabled"`
	// Address is FreeSWITCH's inbound Event Socket, host:port (a
	// ${env:NAME} or ${file:PATH} reference works); default 127.0.0.1:8021.
	Address string `toml:"address"`
	// Password must be a reference: ${env:NAME} or ${file:PATH}.
	Password string `toml:"password"`
	// Hosts name several FreeSWITCH hosts instead of Address and
	// Password: one connection each.
	Hosts []SocketlessHostConfig `toml:"hosts"`
	// Subclass is the CUSTOM event the dialplan fires; default eslapp::call.
	Subclass      string `toml:"subclass"`
	ProbeInterval string `toml:"probe_interval"` // default 5s
	MaxBackoff    string `toml:"max_backoff"`    // default 2s
	// ClaimStagger delays a contended call's claim per call running here
	// (default 5ms, up to 250ms in all; "0s": none): the least loaded
	// eslapp claims first.
	ClaimStagger string `toml:"claim_stagger"`
	// WaitMusic is what the dialplan plays while a call waits to be
	// claimed, as FreeSWITCH's Application-Data has it (default
	// local_stream://eslapp_hold, the shipped extensions'; "none": ask
	// for every event): FreeSWITCH is asked not to send the event of its
	// end, which eslapp does not need.
	WaitMusic string `toml:"wait_music"`
}

// SocketlessHostConfig is one [[socketless.hosts]].
type SocketlessHostConfig struct {
	Address  string `toml:"address"`
	Password string `toml:"password"`
}

// LogConfig is [log].
type LogConfig struct {
	Level  string `toml:"level"`  // debug, info (default), warn, error
	Format string `toml:"format"` // text (default) or json
}

// Settings are the checked, converted values the rest of the binary uses.
type Settings struct {
	MetricsListen  string
	Pprof          bool
	Listen         string
	Allow          []netip.Prefix // none: esl's default, loopback
	MaxCalls       int
	DrainTimeout   time.Duration
	CommandTimeout time.Duration
	// MaxConnecting bounds the connections that have not completed
	// connect; MaxConnectBytes what each may send before it does.
	MaxConnecting   int
	MaxConnectBytes int
	// GoMaxProcs is runtime.GOMAXPROCS for serve: 1 unless configured (0:
	// every CPU); a GOMAXPROCS environment variable wins over both.
	GoMaxProcs int
	LogLevel   string
	LogJSON    bool
	// Socketless is nil unless [socketless] is enabled.
	Socketless *SocketlessSettings
	// SharedSecret is empty unless configured; SharedSecretVar names the
	// channel variable that carries it.
	SharedSecret    conf.Secret
	SharedSecretVar string
}

// SocketlessSettings are [socketless], checked.
type SocketlessSettings struct {
	Hosts        []SocketlessHost // at least one
	Subclass     string
	ProbeEvery   time.Duration
	MaxBackoff   time.Duration
	ClaimStagger time.Duration // negative: none
	WaitMusic    string        // "": none
}

// SocketlessHost is one FreeSWITCH host's inbound Event Socket.
type SocketlessHost struct {
	Address  string
	Password conf.Secret
}

// source is a configuration read once: the file's values, its TOML
// metadata (the flows' actions decode their own tables from it), where each
// key is, and the settings serve starts with. Building the services from it
// (build) is a separate stage, once the logger and the metrics exist.
type source struct {
	name    string // the file, or "embedded conf/eslapp.toml"
	baseDir string // resolves relative secret and fixture paths
	cfg     Config
	md      toml.MetaData
	lines   map[string]int
	set     *Settings
	errs    conf.FieldErrors // in [server] and [log]; build reports them with the rest
}

// readConfig reads a configuration file; see parseSource.
func readConfig(path string) (*source, error) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > conf.MaxConfigBytes {
		return nil, &configProblems{lines: []configLine{{text: fmt.Sprintf("%s: %d bytes, over the limit of %d MiB for a configuration file", path, fi.Size(), conf.MaxConfigBytes>>20)}}}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return parseSource(path, string(data), filepath.Dir(path))
}

// parseSource decodes a configuration and checks [server] and [log] (their
// problems are reported by build, with every other). file names it in
// errors, baseDir resolves the relative paths of secrets and fixture files.
func parseSource(file, data, baseDir string) (*source, error) {
	if len(data) > conf.MaxConfigBytes {
		return nil, &configProblems{lines: []configLine{{text: fmt.Sprintf("%s: %d bytes, over the limit of %d MiB for a configuration file", file, len(data), conf.MaxConfigBytes>>20)}}}
	}
	lines, err := conf.KeyLines(data)
	var deep *conf.DepthError
	if errors.As(err, &deep) {
		return nil, &configProblems{lines: []configLine{{line: deep.Line,
			text: fmt.Sprintf("%s:%d: %s: keys and values nested more than %d deep (tables, dotted keys, inline tables and arrays together)", file, deep.Line, deep.Key, conf.MaxKeyDepth)}}}
	}
	src := &source{name: file, baseDir: baseDir, lines: lines}
	md, err := toml.Decode(data, &src.cfg)
	if err != nil {
		return nil, decodeError(file, err)
	}
	src.md = md
	src.set = checkServer(&src.cfg, &src.errs)
	src.set.Socketless = checkSocketless(&src.cfg, baseDir, &src.errs)
	checkSharedSecret(&src.cfg, baseDir, src.set, &src.errs)
	checkLog(&src.cfg, src.set, &src.errs)
	return src, nil
}

// problems renders FieldErrors as one line each, FILE:LINE: KEY: [note]
// message, in the order of their lines.
func (src *source) problems(es conf.FieldErrors, note string) *configProblems {
	p := &configProblems{}
	for _, e := range es {
		p.lines = append(p.lines, configLine{line: conf.LineOf(src.lines, toml.Key(e.Key)),
			text: src.at(toml.Key(e.Key)) + conf.KeyString(e.Key) + ": " + note + e.Msg})
	}
	sort.SliceStable(p.lines, func(i, j int) bool { return p.lines[i].line < p.lines[j].line })
	return p
}

// at is "FILE:LINE: " for a key ("FILE: " when its line is not known).
func (src *source) at(key toml.Key) string {
	if l := conf.LineOf(src.lines, key); l > 0 {
		return src.name + ":" + strconv.Itoa(l) + ": "
	}
	return src.name + ": "
}

// configProblems is what check prints: every problem of a configuration,
// one line each.
type configProblems struct{ lines []configLine }

type configLine struct {
	line int
	text string
}

func (p *configProblems) Error() string {
	out := make([]string, len(p.lines))
	for i, l := range p.lines {
		out[i] = l.text
	}
	return strings.Join(out, "\n")
}

// loadConfig reads and builds a configuration in one go (check, tests).
func loadConfig(path string, logger *slog.Logger) (*source, *built, error) {
	src, err := readConfig(path)
	if err != nil {
		return nil, nil, err
	}
	b, err := src.build(logger, nil)
	return src, b, err
}

// parseConfig is loadConfig for a configuration given as text.
func parseConfig(file, data, baseDir string, logger *slog.Logger) (*source, *built, error) {
	src, err := parseSource(file, data, baseDir)
	if err != nil {
		return nil, nil, err
	}
	b, err := src.build(logger, nil)
	return src, b, err
}

// decodeError turns the toml package's error into file:line form.
func decodeError(file string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &configProblems{lines: []configLine{{line: pe.Position.Line,
			text: fmt.Sprintf("%s:%d: %s%s", file, pe.Position.Line, keyPrefix(pe.LastKey), pe.Message)}}}
	}
	// Type mismatches come as "toml: line N (last key "k"): message".
	msg := err.Error()
	if m := decodeErrorRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &configProblems{lines: []configLine{{line: line, text: fmt.Sprintf("%s:%d: %s%s", file, line, keyPrefix(m[2]), m[3])}}}
	}
	return &configProblems{lines: []configLine{{text: file + ": " + strings.TrimPrefix(msg, "toml: ")}}}
}

func keyPrefix(k string) string {
	if k == "" {
		return ""
	}
	return k + ": "
}

var decodeErrorRE = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

func checkServer(cfg *Config, errs *conf.FieldErrors) *Settings {
	c := fieldChecker{errs}
	s := &Settings{
		Listen:         esl.DefaultListen,
		MaxCalls:       cfg.Server.MaxCalls,
		DrainTimeout:   30 * time.Second,
		CommandTimeout: esl.DefaultCommandTimeout,
	}
	s.MetricsListen, s.Pprof = cfg.Server.MetricsListen, cfg.Server.Pprof
	if s.Pprof && s.MetricsListen == "" {
		c.errorf(toml.Key{"server", "pprof"}, "needs metrics_listen: pprof is served there")
	}
	if s.MetricsListen != "" {
		if err := checkListenAddr(s.MetricsListen); err != nil {
			c.errorf(toml.Key{"server", "metrics_listen"}, "%v", err)
		}
	}
	if cfg.Server.Listen != "" {
		s.Listen = cfg.Server.Listen
		if err := checkListenAddr(s.Listen); err != nil {
			c.errorf(toml.Key{"server", "listen"}, "%v", err)
		}
	}
	for _, a := range cfg.Server.Allow {
		p, err := parseNetwork(a)
		if err != nil {
			c.errorf(toml.Key{"server", "allow"}, "%v", err)
			continue
		}
		s.Allow = append(s.Allow, p)
	}
	if s.MaxCalls < 0 {
		c.errorf(toml.Key{"server", "max_calls"}, "must be 0 (no limit) or more, not %d", s.MaxCalls)
	}
	s.MaxConnecting = esl.DefaultMaxConnecting
	if cfg.Server.MaxConnecting != nil {
		s.MaxConnecting = *cfg.Server.MaxConnecting
		if s.MaxConnecting < 1 {
			c.errorf(toml.Key{"server", "max_connecting"}, "must be 1 or more, not %d", s.MaxConnecting)
		}
	}
	s.MaxConnectBytes = maxConnectBytes(cfg)
	s.GoMaxProcs = 1
	if cfg.Server.GoMaxProcs != nil {
		s.GoMaxProcs = *cfg.Server.GoMaxProcs
		if s.GoMaxProcs < 0 {
			c.errorf(toml.Key{"server", "gomaxprocs"}, "must be 0 (every CPU) or more, not %d", s.GoMaxProcs)
		}
	}
	c.duration(toml.Key{"server", "drain_timeout"}, cfg.Server.DrainTimeout, &s.DrainTimeout)
	c.duration(toml.Key{"server", "command_timeout"}, cfg.Server.CommandTimeout, &s.CommandTimeout)
	return s
}

// checkSocketless checks [socketless]; nil when it is not enabled.
func checkSocketless(cfg *Config, baseDir string, errs *conf.FieldErrors) *SocketlessSettings {
	c := fieldChecker{errs}
	sc := cfg.Socketless
	if !sc.Enabled {
		return nil
	}
	res := conf.Resolver{BaseDir: baseDir}
	s := &SocketlessSettings{Subclass: esl.DefaultStartSubclass, ProbeEvery: esl.DefaultProbeEvery, MaxBackoff: esl.DefaultMaxBackoff,
		ClaimStagger: esl.DefaultClaimStagger, WaitMusic: esl.DefaultWaitMusic}
	host := func(key toml.Key, address, password string) (SocketlessHost, bool) {
		h := SocketlessHost{Address: esl.DefaultInboundAddress}
		ok := true
		if address != "" {
			v, _, err := res.Resolve(address)
			switch {
			case err != nil:
				c.errorf(append(key, "address"), "%v", err)
				ok = false
			default:
				h.Address = v.Reveal()
				if host, port, err := net.SplitHostPort(h.Address); err != nil || host == "" || port == "" {
					c.errorf(append(key, "address"), "%q is not host:port", conf.Clip(h.Address, 80))
					ok = false
				}
			}
		}
		switch v, hasRef, err := res.Resolve(password); {
		case password == "":
			c.errorf(append(key, "password"), "is required: event_socket.conf's password, as ${env:NAME} or ${file:PATH}")
		case err != nil:
			c.errorf(append(key, "password"), "%v", err)
		case !hasRef:
			c.errorf(append(key, "password"), "is written in the file: reference it as ${env:NAME} or ${file:PATH}")
		case strings.ContainsAny(v.Reveal(), "\r\n"):
			c.errorf(append(key, "password"), "holds a line break")
		default:
			h.Password = v
			return h, ok
		}
		return h, false
	}
	switch {
	case len(sc.Hosts) > 0 && (sc.Address != "" || sc.Password != ""):
		c.errorf(toml.Key{"socketless", "hosts"}, "name the hosts either with address and password or with [[socketless.hosts]], not both")
	case len(sc.Hosts) > 0:
		seen := map[string]bool{}
		for i, hc := range sc.Hosts {
			key := toml.Key{"socketless", "hosts", strconv.Itoa(i)}
			if h, ok := host(key, hc.Address, hc.Password); ok {
				if seen[h.Address] {
					c.errorf(append(key, "address"), "%s is named twice", h.Address)
					continue
				}
				seen[h.Address] = true
				s.Hosts = append(s.Hosts, h)
			}
		}
	default:
		if h, ok := host(toml.Key{"socketless"}, sc.Address, sc.Password); ok {
			s.Hosts = append(s.Hosts, h)
		}
	}
	if sc.Subclass != "" {
		s.Subclass = sc.Subclass
		if !esl.IsEventSubclass(s.Subclass) {
			c.errorf(toml.Key{"socketless", "subclass"}, "%q is not an event subclass (letters, digits and _ : - .)", conf.Clip(s.Subclass, 80))
		}
	}
	c.duration(toml.Key{"socketless", "probe_interval"}, sc.ProbeInterval, &s.ProbeEvery)
	c.duration(toml.Key{"socketless", "max_backoff"}, sc.MaxBackoff, &s.MaxBackoff)
	if sc.ClaimStagger != "" {
		d, err := time.ParseDuration(sc.ClaimStagger)
		switch {
		case err != nil || d < 0:
			c.errorf(toml.Key{"socketless", "claim_stagger"}, "%q is not a duration of 0 or more (examples: \"200us\", \"1ms\", \"0s\")", sc.ClaimStagger)
		case d == 0:
			s.ClaimStagger = -1 // none
		default:
			s.ClaimStagger = d
		}
	}
	switch sc.WaitMusic {
	case "":
	case "none":
		s.WaitMusic = ""
	default:
		s.WaitMusic = sc.WaitMusic
		if !esl.IsWaitMusic(sc.WaitMusic) {
			c.errorf(toml.Key{"socketless", "wait_music"}, "%q cannot be matched by FreeSWITCH's event filter: one line of at most 512 printable bytes, not starting with a space, +, - or / (\"none\" asks for every event)", conf.Clip(sc.WaitMusic, 80))
		}
	}
	return s
}

// checkSharedSecret checks [server] shared_secret and shared_secret_var.
func checkSharedSecret(cfg *Config, baseDir string, s *Settings, errs *conf.FieldErrors) {
	c := fieldChecker{errs}
	s.SharedSecretVar = "wfe_secret"
	if v := cfg.Server.SharedSecretVar; v != "" {
		s.SharedSecretVar = v
		if !esl.IsVarName(v) {
			c.errorf(toml.Key{"server", "shared_secret_var"}, "%q is not a channel variable name", conf.Clip(v, 80))
		}
	}
	if cfg.Server.SharedSecret == "" {
		return
	}
	res := conf.Resolver{BaseDir: baseDir}
	switch v, hasRef, err := res.Resolve(cfg.Server.SharedSecret); {
	case err != nil:
		c.errorf(toml.Key{"server", "shared_secret"}, "%v", err)
	case !hasRef:
		c.errorf(toml.Key{"server", "shared_secret"}, "is written in the file: reference it as ${env:NAME} or ${file:PATH}")
	case len(v.Reveal()) < 16:
		c.errorf(toml.Key{"server", "shared_secret"}, "is shorter than 16 characters (openssl rand -hex 16 makes one)")
	case strings.ContainsAny(v.Reveal(), "\x00\r\n'\"|\\$ "):
		c.errorf(toml.Key{"server", "shared_secret"}, "holds a character a dialplan cannot pass verbatim (quote, backslash, |, $, space or a line break)")
	default:
		s.SharedSecret = v
	}
}

// maxConnectBytes bounds a connect reply: FreeSWITCH's own headers and the
// dialplan's variables (room for 512 KiB), plus wfe_payload URL-encoded,
// which may be three times the largest payload an integration takes.
func maxConnectBytes(cfg *Config) int {
	largest := crm.DefaultMaxPayloadBytes
	for _, ic := range cfg.Integrations {
		largest = max(largest, ic.MaxPayloadBytes)
	}
	return 512<<10 + 3*largest
}

func checkLog(cfg *Config, s *Settings, errs *conf.FieldErrors) {
	c := fieldChecker{errs}
	s.LogLevel = "info"
	if cfg.Log.Level != "" {
		s.LogLevel = cfg.Log.Level
		if !slices.Contains([]string{"debug", "info", "warn", "error"}, s.LogLevel) {
			c.errorf(toml.Key{"log", "level"}, "must be debug, info, warn or error, not %q", s.LogLevel)
		}
	}
	switch cfg.Log.Format {
	case "", "text":
	case "json":
		s.LogJSON = true
	default:
		c.errorf(toml.Key{"log", "format"}, "must be text or json, not %q", cfg.Log.Format)
	}
}

// fieldChecker adds FieldErrors with a format.
type fieldChecker struct{ errs *conf.FieldErrors }

func (c fieldChecker) errorf(key toml.Key, format string, args ...any) {
	c.errs.Add(key, fmt.Sprintf(format, args...))
}

// duration parses a Go duration ("30s", "1m30s") into *dst when set.
func (c fieldChecker) duration(key toml.Key, v string, dst *time.Duration) {
	if v == "" {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		c.errorf(key, "%q is not a positive duration (examples: \"500ms\", \"30s\", \"2m\")", v)
		return
	}
	*dst = d
}

// checkListenAddr accepts host:port with a literal IP (or empty host) and a
// numeric port; eslapp does not resolve names for the address it binds.
func checkListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (example: \"127.0.0.1:8084\")", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("%q: host must be an IP address", addr)
		}
	}
	return nil
}

// parseNetwork accepts a CIDR prefix or a single address.
func parseNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a network (example: \"10.0.0.0/8\")", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or network", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
