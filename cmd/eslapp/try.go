package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/eslapp/eslapp/callflow"
	"github.com/eslapp/eslapp/conf"
	"github.com/eslapp/eslapp/crm"
	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/esl/esltest"
	"github.com/eslapp/eslapp/prompts"
)

// eslapp try: one call without a phone. The real engine runs the call
// against esl/esltest, the FreeSWITCH double, and the timeline of what
// FreeSWITCH would have received, what the caller would have heard and
// what the CRM was asked is printed. Exit 0 when the call ends on the
// expected branch (OnSuccess unless -expect), 2 on another, 1 when it
// cannot run: a deployment pipeline can gate on it.

// Exit codes of try.
const (
	tryExpected = 0
	tryCannot   = 1
	tryOther    = 2
)

type varFlags map[string]string

func (v varFlags) String() string { return "" }
func (v varFlags) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || !esl.IsVarName(name) {
		return fmt.Errorf("%q: want NAME=VALUE", s)
	}
	v[name] = value
	return nil
}

func tryCmd(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("eslapp try", flag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("config", conf.DefaultPath, "configuration `file`")
	flowName := flags.String("flow", "", "run this flow (flow mode)")
	dialplan := flags.String("dialplan", "", "a TOML `file` of the channel variables the dialplan sets (dialplan mode)")
	crmMode := flags.String("crm", "fixture", "fixture: http integrations answer from their workflows' rules ({} when none); live: ask the real CRM")
	expect := flags.String("expect", string(crm.OnSuccess), "the branch that makes the exit status 0")
	caller := flags.String("caller", "1235550100", "the caller's number (ANI)")
	socketless := flags.Bool("socketless", false, "run the call the socket-less way (announced and parked, run over an inbound connection) instead of on its own socket")
	vars := varFlags{}
	flags.Var(vars, "var", "a channel variable NAME=VALUE (repeatable; wins over -dialplan)")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: eslapp try [-config FILE] (-flow NAME | -dialplan VARS.toml) [-var K=V ...] [-crm fixture|live] [-expect BRANCH] [-socketless]")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return tryCannot
	}
	if (*flowName == "") == (*dialplan == "") {
		fmt.Fprintln(stderr, "eslapp try: give -flow NAME or -dialplan VARS.toml")
		return tryCannot
	}
	if *crmMode != "fixture" && *crmMode != "live" {
		fmt.Fprintf(stderr, "eslapp try: -crm %q: fixture or live\n", *crmMode)
		return tryCannot
	}
	explicit := configGiven(flags)

	channel := map[string]string{}
	if *dialplan != "" {
		var m map[string]any
		if _, err := toml.DecodeFile(*dialplan, &m); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", *dialplan, err)
			return tryCannot
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if !esl.IsVarName(k) {
				fmt.Fprintf(stderr, "%s: %q is not a channel variable name\n", *dialplan, k)
				return tryCannot
			}
			channel[k] = fmt.Sprint(m[k])
		}
	} else {
		channel["wfe_flow"] = *flowName
	}
	maps.Copy(channel, vars)

	src, err := load(*configPath, explicit)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return tryCannot
	}
	if *flowName != "" {
		if _, ok := src.cfg.Flows[*flowName]; !ok {
			fmt.Fprintf(stderr, "%s has no flow %q\n", src.name, *flowName)
			return tryCannot
		}
	}
	// A dry run talks to no FreeSWITCH: the socket-less connection's
	// settings (its password's environment variable) do not matter here.
	src.errs = slices.DeleteFunc(src.errs, func(e *conf.FieldError) bool { return len(e.Key) > 0 && e.Key[0] == "socketless" })
	if *crmMode == "fixture" {
		// The configuration as it will run must pass check first (paths,
		// queries, headers and their secrets): a fixture skips them.
		checked, err := src.build(nil, nil)
		checked.close()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return tryCannot
		}
		fixtureIntegrations(src.cfg.Integrations)
	}
	tl := &timeline{start: time.Now()}
	rec := &recordingCRM{tl: tl}
	g, err := newGeneration(src, genOptions{workflows: func(w callflow.Workflows) callflow.Workflows {
		rec.Workflows = w
		return rec
	}})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return tryCannot
	}
	defer g.close()
	c, err := runTryCall(g, tryCall{caller: *caller, vars: channel, socketless: *socketless}, tl)
	if err != nil {
		fmt.Fprintln(stderr, "eslapp try:", err)
		return tryCannot
	}
	branch := tl.print(stdout, c, channel, *crmMode, rec.lastBranch())
	if branch == *expect {
		return tryExpected
	}
	return tryOther
}

// fixtureIntegrations turns every http integration into a fixture whose
// workflows answer from their rules, or {} when they have none.
func fixtureIntegrations(ics map[string]crm.IntegrationConfig) {
	for id, ic := range ics {
		if ic.Kind == "fixture" {
			continue
		}
		ic.Kind = "fixture"
		wfs := make(map[string]crm.WorkflowConfig, len(ic.Workflows))
		for wid, wf := range ic.Workflows {
			if len(wf.Rules) == 0 {
				wf.Rules = []crm.FixtureRule{{Body: "{}"}}
			}
			wfs[wid] = wf
		}
		ic.Workflows = wfs
		ics[id] = ic
	}
}

// tryCall is the call try places.
type tryCall struct {
	caller     string
	vars       map[string]string
	socketless bool
}

// runTryCall places the call on the double with the generation's engine —
// on its own socket through a server on loopback, or socket-less: the
// double announces and parks it and eslapp runs it over an inbound
// connection — and waits until it has left eslapp.
func runTryCall(g *generation, call tryCall, tl *timeline) (*esltest.Call, error) {
	discard := slog.New(slog.DiscardHandler)
	runner, err := esl.NewRunner(esl.RunnerConfig{Bind: g.engine.Binding, Logger: discard})
	if err != nil {
		return nil, err
	}
	defer runner.Close()
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	opts := esltest.CallOptions{CallerIDNumber: call.caller, Vars: call.vars, Media: catalogMedia(g.b.catalog)}
	tl.start = time.Now()
	var c *esltest.Call
	if call.socketless {
		addr, err := fs.ListenInbound("try")
		if err != nil {
			return nil, err
		}
		defer fs.StopInbound()
		in, err := esl.NewInbound(runner, esl.InboundConfig{Address: addr, Password: "try", Logger: discard})
		if err != nil {
			return nil, err
		}
		go in.Serve()
		if err := waitInbound(in, 5*time.Second); err != nil {
			return nil, err
		}
		tl.start = time.Now()
		// The shipped dialplan: the pick-up net (+3), hold music while
		// the call waits.
		c, err = fs.Socketless(context.Background(), esltest.SocketlessOptions{CallOptions: opts,
			Pick: 3 * time.Second, PickDest: "OnError XML default", Music: "local_stream://eslapp_hold"})
		if err != nil {
			return nil, err
		}
	} else {
		srv, err := esl.NewServer(runner, esl.ServerConfig{Logger: discard})
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		go func() { _ = srv.Serve(ln) }()
		if c, err = fs.Dial(context.Background(), ln.Addr().String(), opts); err != nil {
			return nil, err
		}
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Minute):
		return nil, errors.New("the call did not end within 10 minutes")
	}
	return c, nil
}

// waitInbound waits until the inbound connection is up.
func waitInbound(in *esl.Inbound, within time.Duration) error {
	deadline := time.Now().Add(within)
	for in.Stats().State != esl.InboundConnected {
		if time.Now().After(deadline) {
			return fmt.Errorf("no inbound connection to the double: %s", in.Stats().LastError)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// catalogMedia tells the double how long a sound plays: its length from
// the sound catalog (a second when not known).
func catalogMedia(catalog *prompts.Catalog) func(path string) (time.Duration, bool) {
	return func(path string) (time.Duration, bool) {
		if catalog == nil {
			return time.Second, true
		}
		s := catalog.Sound(path)
		if s.Err() != nil {
			return 0, false
		}
		if !s.Known {
			return time.Second, true
		}
		return s.Length, true
	}
}

// recordingCRM notes each request and answer on the timeline.
type recordingCRM struct {
	callflow.Workflows
	tl *timeline

	mu   sync.Mutex
	last crm.Branch // the last step's outcome
}

func (r *recordingCRM) Execute(ctx context.Context, req crm.Request) crm.Result {
	r.tl.add(fmt.Sprintf("request  %s / %s  %s", req.ConfigID, req.WorkflowID, clipLine(string(req.Payload))))
	res := r.Workflows.Execute(ctx, req)
	r.tl.add("answer   " + describeResult(res))
	r.note(res)
	return res
}

func (r *recordingCRM) Precheck(req crm.Request) (crm.Result, bool) {
	res, rejected := r.Workflows.Precheck(req)
	if rejected {
		r.tl.add("no request: " + describeResult(res))
		r.note(res)
	}
	return res, rejected
}

func (r *recordingCRM) note(res crm.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = res.Branch
}

// lastBranch is the last step's outcome: the branch of a call whose flow
// ended in a hangup, which sets no outputs.
func (r *recordingCRM) lastBranch() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.last)
}

func describeResult(res crm.Result) string {
	s := string(res.Branch)
	if res.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", res.Status)
	}
	if len(res.Body) > 0 {
		s += "  " + clipLine(string(res.Body))
	}
	if res.Err != nil {
		s += "  " + res.Err.Message
	}
	return s
}

func clipLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return conf.Clip(s, 160)
}

// timeline is what the CRM was asked and answered, with the time since
// the call started; the rest of the call's timeline is the double's record.
type timeline struct {
	mu     sync.Mutex
	start  time.Time
	events []tlEvent
}

type tlEvent struct {
	at   time.Duration
	text string
}

func (tl *timeline) add(text string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.events = append(tl.events, tlEvent{at: time.Since(tl.start), text: text})
}

func (tl *timeline) since(t time.Time) string {
	return fmt.Sprintf("+%.3fs", t.Sub(tl.start).Seconds())
}

// print writes the call's timeline and returns its branch: wfe_branch as
// eslapp set it, else (a flow that hung up) the last step's outcome.
func (tl *timeline) print(w io.Writer, c *esltest.Call, vars map[string]string, crmMode, lastStep string) string {
	mode := "dialplan mode"
	if f := vars["wfe_flow"]; f != "" {
		mode = "flow " + f
	}
	fmt.Fprintf(w, "eslapp try: one call, %s, CRM %s\n", mode, crmMode)
	fmt.Fprintln(w, "\nCRM")
	tl.mu.Lock()
	for _, e := range tl.events {
		fmt.Fprintf(w, "  +%.3fs  %s\n", e.at.Seconds(), e.text)
	}
	tl.mu.Unlock()
	fmt.Fprintln(w, "\nthe caller hears")
	for _, p := range c.Played() {
		what := strings.Join(p.Files, " ! ")
		if len(p.Texts) > 0 {
			what = strings.Join(p.Texts, " | ")
		}
		if what == "" {
			what = p.Arg
		}
		end := p.Status
		if p.Broken {
			end = "stopped (uuid_break)"
		}
		fmt.Fprintf(w, "  %s  %s %s  → %s\n", tl.since(p.At), p.App, clipLine(what), end)
	}
	fmt.Fprintln(w, "\nFreeSWITCH receives")
	for _, cmd := range c.Commands() {
		line := cmd.Name
		switch {
		case cmd.Name == "sendmsg" && cmd.CallCommand == "execute":
			line += " " + cmd.App
			if cmd.AppArg != "" {
				line += " " + cmd.AppArg
			}
		case cmd.Name == "sendmsg":
			line += " " + cmd.CallCommand
		case cmd.Arg() != "":
			line += " " + cmd.Arg()
		}
		fmt.Fprintf(w, "  %s  %s\n", tl.since(cmd.At), clipLine(line))
	}
	branch, _ := c.Var("wfe_branch")
	if branch == "" && lastStep != "" {
		branch = lastStep
		fmt.Fprintf(w, "\nbranch  %s (the last step's: the call ended without outputs)\n", branch)
	} else {
		fmt.Fprintf(w, "\nbranch  %s\n", branch)
	}
	out := c.Outcome()
	switch out.Kind {
	case esltest.Transferred:
		fmt.Fprintf(w, "left    transferred to %s\n", out.TransferDest)
	case esltest.Resumed:
		fmt.Fprintln(w, "left    back to the dialplan (resume): it goes on after socket")
	default:
		fmt.Fprintf(w, "left    %v %s\n", out.Kind, out.HangupCause)
	}
	fmt.Fprintln(w, "\noutputs (channel variables eslapp set)")
	for _, name := range setVars(c) {
		v, ok := c.Var(name)
		if !ok {
			fmt.Fprintf(w, "  %s (unset)\n", name)
			continue
		}
		fmt.Fprintf(w, "  %s=%s\n", name, clipLine(v))
	}
	return branch
}

// setVars are the variables eslapp's set and multiset commands named, in
// order.
func setVars(c *esltest.Call) []string {
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, cmd := range c.Commands() {
		switch cmd.App {
		case "set":
			name, _, _ := strings.Cut(cmd.AppArg, "=")
			add(name)
		case "multiset":
			for _, part := range esltest.SeparateString(cmd.AppArg, ' ', 256) {
				name, _, _ := strings.Cut(part, "=")
				add(strings.TrimSpace(name))
			}
		}
	}
	return names
}
