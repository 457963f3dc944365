package callflow_test

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/eslapp/eslapp/internal/testlog"

	"github.com/BurntSushi/toml"

	"github.com/eslapp/eslapp/callflow"
	"github.com/eslapp/eslapp/conf"
	"github.com/eslapp/eslapp/crm"
	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/esl/esltest"
	"github.com/eslapp/eslapp/prompts"
)

var update = flag.Bool("update", false, "rewrite the expected sections of testdata/calls/*.txt")

// A golden call file is a whole call: the configuration (TOML: tenants,
// integrations, flows), what the call brings and does (channel variables,
// media lengths, a hangup...), then what eslapp must do: the commands on the
// wire, how the call left eslapp, the channel variables it set and the
// events it fired. Sections are "-- name --" lines; the ones after "call"
// are rewritten by go test ./callflow -run Golden -update.
type goldenFile struct {
	comment  string
	sections map[string]string
	order    []string
}

func parseGolden(b []byte) goldenFile {
	g := goldenFile{sections: map[string]string{}}
	cur := ""
	var buf strings.Builder
	flush := func() {
		if cur == "" {
			g.comment = buf.String()
		} else {
			g.sections[cur] = buf.String()
			g.order = append(g.order, cur)
		}
		buf.Reset()
	}
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if m := sectionRE.FindStringSubmatch(strings.TrimRight(line, "\n")); m != nil {
			flush()
			cur = m[1]
			continue
		}
		buf.WriteString(line)
	}
	flush()
	return g
}

var sectionRE = regexp.MustCompile(`^-- (\w+) --$`)

// goldenConfig is the part of eslapp's configuration a call file sets.
type goldenConfig struct {
	Tenants      map[string]crm.TenantConfig      `toml:"tenants"`
	Integrations map[string]crm.IntegrationConfig `toml:"integrations"`
	Flows        map[string]callflow.FlowConfig   `toml:"flows"`
	Prompts      struct {
		Policy string `toml:"policy"`
	} `toml:"prompts"`
	// WaitMargin is the engine's (how late FreeSWITCH may be before the
	// call counts as stuck); the default 10 s when empty.
	WaitMargin string `toml:"wait_margin"`
	// SharedSecret is the engine's SharedSecret (in wfe_secret).
	SharedSecret string `toml:"shared_secret"`
}

func soundsDir(t testing.TB) string {
	dir, err := filepath.Abs(filepath.Join("..", "sounds"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// newEngine builds an engine from a configuration snippet.
func newEngine(t testing.TB, cfgText string, log *slog.Logger, mutate ...func(*callflow.Config)) *callflow.Engine {
	t.Helper()
	var cfg goldenConfig
	md, err := toml.Decode(cfgText, &cfg)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	renderer, err := prompts.NewRenderer(prompts.RenderConfig{SoundsDir: soundsDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := crm.New(crm.Config{Tenants: cfg.Tenants, Integrations: cfg.Integrations}, crm.Options{Logger: log})
	if err != nil {
		t.Fatalf("crm: %v", err)
	}
	t.Cleanup(svc.Close)
	flows, err := callflow.CompileFlows(&md, cfg.Flows, renderer)
	if err != nil {
		t.Fatalf("flows: %v", err)
	}
	var margin time.Duration
	if cfg.WaitMargin != "" {
		if margin, err = time.ParseDuration(cfg.WaitMargin); err != nil {
			t.Fatalf("wait_margin: %v", err)
		}
	}
	ecfg := callflow.Config{
		Flows: flows, Renderer: renderer, CRM: svc, Logger: log,
		PlaybackTerminators: "none", HoldMusic: "holdmusic.wav", DefaultPolicy: cfg.Prompts.Policy,
		WaitMargin: margin,
	}
	if cfg.SharedSecret != "" {
		ecfg.SharedSecret, ecfg.SharedSecretVar = conf.NewSecret(cfg.SharedSecret), "wfe_secret"
	}
	for _, m := range mutate {
		m(&ecfg)
	}
	e, err := callflow.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// callScript is the "call" section: what the caller and FreeSWITCH do.
type callScript struct {
	opts    esltest.CallOptions
	media   map[string]time.Duration
	defMed  time.Duration
	actions []timedAction
	show    []string
}

type timedAction struct {
	after time.Duration
	what  string // hangup, cut, dtmf
	arg   string
}

func parseCall(t *testing.T, text string) callScript {
	t.Helper()
	cs := callScript{media: map[string]time.Duration{}, defMed: 10 * time.Second}
	cs.opts = esltest.CallOptions{UUID: "11111111-2222-4333-8444-555555555555", Vars: map[string]string{}, CallerIDNumber: "1235550100"}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		word, rest, _ := strings.Cut(line, " ")
		dur := func(s string) time.Duration {
			d, err := time.ParseDuration(s)
			if err != nil {
				t.Fatalf("call: %q: %v", line, err)
			}
			return d
		}
		switch word {
		case "var":
			name, value, _ := strings.Cut(rest, "=")
			cs.opts.Vars[name] = value
		case "caller":
			cs.opts.CallerIDNumber = rest
		case "ani":
			cs.opts.ANI = rest
		case "media":
			if f := strings.Fields(rest); len(f) == 2 {
				cs.media[f[0]] = dur(f[1])
			} else {
				cs.defMed = dur(rest)
			}
		case "notfull":
			cs.opts.NotFull = true
		case "withhold":
			cs.opts.Withhold = append(cs.opts.Withhold, strings.Fields(rest)...)
		case "appstartdelay":
			cs.opts.AppStartDelay = dur(rest)
		case "hangup", "cut", "dtmf", "shutdown":
			f := strings.Fields(rest)
			a := timedAction{after: dur(f[0]), what: word}
			if len(f) > 1 {
				a.arg = f[1]
			}
			cs.actions = append(cs.actions, a)
		case "show":
			cs.show = append(cs.show, strings.Fields(rest)...)
		default:
			t.Fatalf("call: unknown directive %q", line)
		}
	}
	cs.opts.Media = func(path string) (time.Duration, bool) {
		base := filepath.Base(path)
		if strings.HasPrefix(base, "missing") {
			return 0, false
		}
		if d, ok := cs.media[base]; ok {
			return d, true
		}
		return cs.defMed, true
	}
	return cs
}

func TestGoldenCalls(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "calls", "*.txt"))
	if len(files) == 0 {
		t.Fatal("no call files")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			t.Parallel()
			runGolden(t, f)
		})
	}
}

func runGolden(t *testing.T, file string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	g := parseGolden(raw)
	log := testLog(t)
	e := newEngine(t, expandIncludes(t, g.sections["config"]), log)
	cs := parseCall(t, g.sections["call"])

	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	c := runCall(t, e, fs, cs)
	got := map[string]string{
		"commands": renderCommands(c, cs.opts.UUID, soundsDir(t)),
		"outcome":  renderOutcome(c),
		"vars":     renderVars(c, cs.show),
		"events":   renderEventsFor(fs, cs.opts.UUID, soundsDir(t)),
	}
	if *update {
		var b bytes.Buffer
		b.WriteString(g.comment)
		for _, name := range []string{"config", "call"} {
			fmt.Fprintf(&b, "-- %s --\n%s", name, g.sections[name])
		}
		for _, name := range []string{"commands", "outcome", "vars", "events"} {
			if got[name] == "" && name == "events" {
				continue
			}
			fmt.Fprintf(&b, "-- %s --\n%s", name, got[name])
		}
		if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, name := range []string{"commands", "outcome", "vars", "events"} {
		if want := g.sections[name]; got[name] != want {
			t.Errorf("%s:\n--- got\n%s--- want\n%s", name, got[name], want)
		}
	}
}

// runCall runs one call through a server with the engine and returns the
// double's side once the call has left eslapp.
func runCall(t testing.TB, e *callflow.Engine, fs *esltest.FreeSWITCH, cs callScript) *esltest.Call {
	t.Helper()
	var log *slog.Logger
	if _, bench := t.(*testing.B); !bench {
		log = testLog(t)
	}
	// The hostile values (64 KiB caller names) make connect replies larger
	// than any SIP message could: allow them.
	addr, r := serveServer(t, esl.RunnerConfig{Handler: e.Handle, Refuse: e.Refuse, VarFilter: e.ChannelVars, Logger: log, CommandTimeout: 3 * time.Second},
		esl.ServerConfig{Logger: log, CommandTimeout: 3 * time.Second, MaxConnectBytes: 8 << 20})
	start := time.Now()
	c, err := fs.Dial(context.Background(), addr, cs.opts)
	if err != nil {
		t.Fatal(err)
	}
	return play(t, c, cs, start, func() { go r.Shutdown(expired()) })
}

// play acts out the call script's caller and FreeSWITCH actions on c, from
// start, and waits for the call to end; shutdown stands for eslapp's drain
// deadline passing.
func play(t testing.TB, c *esltest.Call, cs callScript, start time.Time, shutdown func()) *esltest.Call {
	t.Helper()
	for _, a := range cs.actions {
		time.Sleep(time.Until(start.Add(a.after)))
		switch a.what {
		case "hangup":
			c.Hangup("NORMAL_CLEARING")
		case "cut":
			c.CutTCP()
		case "dtmf":
			c.PressDTMF(rune(a.arg[0]))
		case "shutdown":
			shutdown() // the drain deadline, already over: the calls left end at once
		}
	}
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("call not over after 30 s; commands:\n%s", renderCommands(c, cs.opts.UUID, soundsDir(t)))
	}
	return c
}

// expired is a context already done, as a drain deadline that has passed.
func expired() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// renderCommands lists the commands, one per line. Runs of the same
// command (a prompt looping) become one line marked "(repeated)": how many
// times depends on timing.
func renderCommands(c *esltest.Call, uuid, sounds string) string {
	var b strings.Builder
	prev, repeated := "", false
	flush := func() {
		if prev != "" {
			if repeated {
				prev += " (repeated)"
			}
			b.WriteString(prev + "\n")
		}
	}
	for _, cmd := range c.Commands() {
		line := cmd.Name
		switch {
		case cmd.Name == "sendmsg" && cmd.CallCommand == "execute":
			line += " " + cmd.App
			if cmd.AppArg != "" {
				line += " " + cmd.AppArg
			}
			if cmd.Loops != 1 {
				line += fmt.Sprintf(" (loops %d)", cmd.Loops)
			}
		case cmd.Name == "sendmsg":
			line += " call-command " + cmd.CallCommand
			if v, ok := cmd.Header("hangup-cause"); ok {
				line += " " + v
			}
		case cmd.Arg() != "":
			line += " " + cmd.Arg()
		}
		line = mask(line, uuid, sounds)
		if line == prev {
			repeated = true
			continue
		}
		flush()
		prev, repeated = line, false
	}
	flush()
	return b.String()
}

var elapsedRE = regexp.MustCompile(`wfe_elapsed_ms=\d+`)

func mask(s, uuid, sounds string) string {
	s = strings.ReplaceAll(s, uuid, "UUID")
	s = strings.ReplaceAll(s, sounds, "SOUNDS")
	return elapsedRE.ReplaceAllString(s, "wfe_elapsed_ms=N")
}

func renderOutcome(c *esltest.Call) string {
	o := c.Outcome()
	s := o.Kind.String()
	if o.TransferDest != "" {
		s += " to " + o.TransferDest
	}
	if o.HangupCause != "" {
		s += " cause " + o.HangupCause
	}
	return s + "\n"
}

func renderVars(c *esltest.Call, extra []string) string {
	names := append([]string{"wfe_branch", "wfe_elapsed_ms", "workflowResultOutput", "workflowErrorOutput"}, extra...)
	var b strings.Builder
	for _, n := range names {
		v, ok := c.Var(n)
		switch {
		case !ok:
			fmt.Fprintf(&b, "%s (unset)\n", n)
		case n == "wfe_elapsed_ms":
			fmt.Fprintf(&b, "%s=N\n", n)
		default:
			fmt.Fprintf(&b, "%s=%q\n", n, v)
		}
	}
	if ex := c.APIExecutions(); len(ex) > 0 {
		fmt.Fprintf(&b, "FreeSWITCH RAN %v\n", ex)
	}
	return b.String()
}

// renderEventsFor lists the events fired, the call's UUID masked.
func renderEventsFor(fs *esltest.FreeSWITCH, uuid, sounds string) string {
	var b strings.Builder
	for _, ev := range fs.FiredEvents() {
		if ev.Subclass == esl.DefaultStartSubclass {
			continue // the socket-less dialplan's, not eslapp's
		}
		fmt.Fprintf(&b, "%s %s", ev.Name, ev.Subclass)
		if ev.QueuedTo != "" {
			b.WriteString(" QUEUED TO A CHANNEL")
		}
		b.WriteString("\n")
		var hs []string
		for _, h := range ev.Headers {
			if fsAddedHeader(h.Name) {
				continue
			}
			v := h.Value
			if h.Name == "Workflow-Elapsed-Ms" {
				v = "N"
			}
			hs = append(hs, "  "+h.Name+": "+v)
		}
		sort.Strings(hs)
		for _, h := range hs {
			b.WriteString(mask(h, uuid, sounds) + "\n")
		}
		if len(ev.Body) > 0 {
			fmt.Fprintf(&b, "  body %s\n", ev.Body)
		}
	}
	return b.String()
}

// testLog keeps a test's log and prints it if the test fails.
func testLog(t testing.TB) *slog.Logger { return testlog.Logger(t) }

// fsAddedHeader: headers FreeSWITCH adds to every event it fires (they vary
// by host and time) or that frame it; the rest are eslapp's.
func fsAddedHeader(name string) bool {
	switch name {
	case "Event-Subclass", "Content-Length", "Command", "Core-UUID", "Event-Name", "Event-Sequence", "Event-UUID":
		return true
	}
	return strings.HasPrefix(name, "Event-Date-") || strings.HasPrefix(name, "Event-Calling-") || strings.HasPrefix(name, "FreeSWITCH-")
}

// expandIncludes replaces each "@NAME" line of a call file's configuration
// with testdata/calls/NAME.toml: the base configuration most calls share
// (base.toml) and the flow that routes every outcome (route.toml), so that
// a call file holds only what its case adds.
func expandIncludes(t *testing.T, cfg string) string {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.SplitAfter(cfg, "\n") {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "@")
		if !ok {
			b.WriteString(line)
			continue
		}
		inc, err := os.ReadFile(filepath.Join("testdata", "calls", name+".toml"))
		if err != nil {
			t.Fatalf("config: %v", err)
		}
		b.Write(inc)
		b.WriteString("\n")
	}
	return b.String()
}

// serve runs an eslapp server on a free port for the test's length and
// returns its address.
func serve(t testing.TB, rcfg esl.RunnerConfig, cfg esl.ServerConfig) string {
	t.Helper()
	addr, _ := serveServer(t, rcfg, cfg)
	return addr
}

func serveServer(t testing.TB, rcfg esl.RunnerConfig, cfg esl.ServerConfig) (string, *esl.Runner) {
	t.Helper()
	r, err := esl.NewRunner(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := esl.NewServer(r, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(r.Close)
	return ln.Addr().String(), r
}
