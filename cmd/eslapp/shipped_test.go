package main

import (
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eslapp/eslapp/esl/esltest"
)

// The shipped configuration runs: eslapp starts on it, and a call through
// the shipped demo flow (wfe_flow=demo) finds the caller in demo-crm, opens
// a ticket and is transferred to the agent extension. Another call in
// dialplan mode takes OnSuccess. Only the listen addresses are changed, to
// free ports.
func TestShippedConfigRunsCalls(t *testing.T) {
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	addr, stop := startShipped(t, fs)
	defer stop()
	short := func(string) (time.Duration, bool) { return 300 * time.Millisecond, true }

	flow, err := fs.Dial(context.Background(), addr, esltest.CallOptions{
		CallerIDNumber: "1235550100",
		Vars:           map[string]string{"wfe_flow": "demo"},
		Media:          short,
	})
	if err != nil {
		t.Fatal(err)
	}
	dialplan, err := fs.Dial(context.Background(), addr, esltest.CallOptions{
		CallerIDNumber: "9995550100",
		Vars: map[string]string{
			"wfe_config_id": "demo-crm", "wfe_workflow_id": "search-by-phone",
			"wfe_payload": `{"phone":"{ANI}"}`, "wfe_sequence": `"hold.wav"`,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*esltest.Call{flow, dialplan} {
		select {
		case <-c.Done():
		case <-time.After(20 * time.Second):
			t.Fatal("call not over")
		}
	}
	if o := flow.Outcome(); o.Kind != esltest.Transferred || o.TransferDest != "1000 XML default" {
		t.Errorf("demo flow: %v %q", o.Kind, o.TransferDest)
	}
	if v, _ := flow.Var("crm_contact_id"); v != "C-1001" {
		t.Errorf("crm_contact_id = %q", v)
	}
	if v, _ := flow.Var("ticket"); !strings.Contains(v, "T-4711") {
		t.Errorf("ticket = %q", v)
	}
	if v, _ := dialplan.Var("wfe_branch"); v != "OnSuccess" || dialplan.Outcome().Kind != esltest.Resumed {
		t.Errorf("dialplan mode: wfe_branch %q, %v", v, dialplan.Outcome().Kind)
	}
	if v, _ := dialplan.Var("workflowResultOutput"); v != `{"found":false}` {
		t.Errorf("dialplan mode result %q", v)
	}
}

// The dialplan snippets in conf/freeswitch work with the shipped
// configuration: the channel variables each extension sets (expanded the way
// FreeSWITCH's set expands them) give a call that takes OnSuccess or, in
// flow mode, reaches the agent; and every branch eslapp can set has an
// extension in crm_branches.xml.
func TestFreeSWITCHDialplanSnippets(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	type action struct {
		App  string `xml:"application,attr"`
		Data string `xml:"data,attr"`
	}
	type extension struct {
		Name string `xml:"name,attr"`
		Cond struct {
			Expr    string   `xml:"expression,attr"`
			Actions []action `xml:"action"`
		} `xml:"condition"`
	}
	var include struct {
		Extensions []extension `xml:"extension"`
		Context    struct {
			Extensions []extension `xml:"extension"`
		} `xml:"context"`
	}
	read := func(name string) {
		b, err := os.ReadFile(filepath.Join(root, "conf", "freeswitch", "dialplan", name))
		if err != nil {
			t.Fatal(err)
		}
		include.Extensions = nil
		if err := xml.Unmarshal(b, &include); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	read("crm_branches.xml")
	branches := ""
	for _, e := range include.Context.Extensions {
		branches += e.Cond.Expr
	}
	for _, b := range []string{"OnSuccess", "OnTimeout", "OnError", "OnInvalidInput", "OnInvalidWorkflow", "OnAgentIntegrationDisabled"} {
		if !strings.Contains(branches, b) {
			t.Errorf("crm_branches.xml has no extension for %s", b)
		}
	}

	read(filepath.Join("default", "eslapp.xml"))
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	addr, stop := startShipped(t, fs)
	defer stop()
	expand := &esltest.Expander{
		Lookup: func(name string, _ int) (string, bool) { return "", false },
		API:    func(name, args string) (string, bool) { t.Errorf("the dialplan runs API %s", name); return "", false },
	}
	// The pick-up net: ${sched_api(+N GROUP uuid_transfer ${uuid} DEST)}.
	pickRE := regexp.MustCompile(`^eslapp_pick=\$\{sched_api\(\+(\d+) eslapp-pick-\$\{uuid\} uuid_transfer \$\{uuid\} (.+)\)\}$`)
	for _, e := range include.Extensions {
		vars := map[string]string{}
		socket, event, pick, pickDest, music := false, "", 0, "", ""
		for _, a := range e.Cond.Actions {
			if m := pickRE.FindStringSubmatch(a.Data); a.App == "set" && m != nil {
				pick, _ = strconv.Atoi(m[1])
				pickDest = m[2]
				continue
			}
			switch a.App {
			case "set":
				// switch_core_session_exec expands the argument, then set
				// expands the value once more.
				name, value, _ := strings.Cut(expand.Expand(a.Data), "=")
				vars[name] = expand.Expand(value)
			case "multiset":
				// The same, after switch_separate_string's split ("^^|").
				for _, part := range esltest.SeparateString(expand.Expand(a.Data), ' ', 256) {
					name, value, _ := strings.Cut(part, "=")
					vars[name] = expand.Expand(value)
				}
			case "socket":
				socket = true
			case "event":
				event = a.Data
			case "playback":
				if event != "" {
					music = a.Data // what the call waits in
				}
			}
			if socket {
				break
			}
		}
		media := func(string) (time.Duration, bool) { return 300 * time.Millisecond, true }
		var c *esltest.Call
		var err error
		switch {
		case socket:
			// Held socket: the pick-up net armed before "socket" too (an
			// eslapp that stands still must not keep the caller waiting),
			// which eslapp deletes first thing.
			if pick == 0 || pickDest != "OnError XML crm_branches" {
				t.Fatalf("%s: held socket without the pick-up net to OnError (+%d %q)", e.Name, pick, pickDest)
			}
			o := esltest.CallOptions{UUID: esltest.NewUUID(), CallerIDNumber: "1235550100", Vars: vars, Media: media}
			group := "eslapp-pick-" + o.UUID
			id := fs.Schedule(time.Duration(pick)*time.Second, group, "uuid_transfer "+o.UUID+" "+pickDest)
			vars["eslapp_pick"] = "+OK Added: " + strconv.FormatUint(uint64(id), 10)
			c, err = fs.Dial(context.Background(), addr, o)
			if err == nil {
				defer func(name string) {
					if n := fs.ScheduledTasks(group); n != 0 {
						t.Errorf("%s: eslapp left the pick-up net armed (%d tasks)", name, n)
					}
				}(e.Name)
			}
		case event != "":
			// Socket-less: the pick-up net armed before the event, which
			// names eslapp's subclass; the call waits in hold music.
			sub, ok := strings.CutPrefix(event, "Event-Name=CUSTOM,Event-Subclass=")
			if !ok || pick == 0 || music == "" {
				t.Fatalf("%s: event %q, pick-up net +%d %q, music %q", e.Name, event, pick, pickDest, music)
			}
			c, err = fs.Socketless(context.Background(), esltest.SocketlessOptions{
				CallOptions: esltest.CallOptions{CallerIDNumber: "1235550100", Vars: vars, Media: media},
				Subclass:    sub, Pick: time.Duration(pick) * time.Second, PickDest: pickDest, Music: music,
			})
		default:
			t.Fatalf("%s hands the call to eslapp neither by socket nor by event", e.Name)
		}
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.Done():
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: call not over", e.Name)
		}
		// The dialplan sets playback_terminators: eslapp runs no set of
		// its own for it (an application less per call).
		for _, cmd := range c.Commands() {
			if cmd.App == "set" {
				t.Errorf("%s: eslapp ran set %s, which the dialplan already set", e.Name, cmd.AppArg)
			}
		}
		branch, _ := c.Var("wfe_branch")
		out := c.Outcome()
		switch {
		case out.NetFired:
			t.Errorf("%s: the safety net fired (%s)", e.Name, out.TransferDest)
		case out.Kind == esltest.Transferred && out.TransferDest == "1000 XML default",
			branch == "OnSuccess" && out.Kind == esltest.Resumed,
			branch == "OnSuccess" && out.Kind == esltest.Transferred && out.TransferDest == "OnSuccess XML crm_branches":
			t.Logf("%s: %v %s", e.Name, out.Kind, branch)
		default:
			t.Errorf("%s: outcome %v %q, wfe_branch %q, error %q", e.Name, out.Kind, out.TransferDest, branch, varOf(c, "workflowErrorOutput"))
		}
	}
}

func varOf(c *esltest.Call, name string) string {
	v, _ := c.Var(name)
	return v
}

// startShipped runs eslapp serve on the shipped configuration, on free
// ports, from the repository root, its socket-less connection on fs's
// inbound Event Socket.
func startShipped(t *testing.T, fs *esltest.FreeSWITCH) (addr string, stop func()) {
	t.Helper()
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	shipped, err := os.ReadFile(filepath.Join(root, "conf", "eslapp.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := regexp.MustCompile(`(?m)^listen = .*$`).ReplaceAllString(string(shipped), `listen = "127.0.0.1:0"`)
	cfg = regexp.MustCompile(`(?m)^metrics_listen = .*$`).ReplaceAllString(cfg, `metrics_listen = "127.0.0.1:0"`)
	t.Setenv("FREESWITCH_ESL_PASSWORD", "shipped-test")
	inbound, err := fs.ListenInbound("shipped-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fs.StopInbound)
	cfg = regexp.MustCompile(`(?m)^address = "127.0.0.1:8021"$`).ReplaceAllString(cfg, `address = "`+inbound+`"`)
	path := filepath.Join(t.TempDir(), "eslapp.toml")
	writeFile(t, path, cfg)
	t.Chdir(root)
	srv := startServing(t, path)
	waitSubscribed(t, fs, srv)
	return srv.addr, func() { srv.stop(t) }
}

// Every configuration the pages in docs/ show is valid, as the README's are
// (TestShownConfigsAreValid): each TOML block loads and builds as eslapp
// would run it. A problem is named by its line in the page.
func TestDocsConfigsAreValid(t *testing.T) {
	t.Chdir(filepath.Join("..", ".."))
	t.Setenv("ACME_TOKEN", "example") // the pages' example secrets
	t.Setenv("FREESWITCH_ESL_PASSWORD", "example")
	t.Setenv("FN_KEY", "example")
	t.Setenv("FS1_ESL_PASSWORD", "example")
	t.Setenv("FS2_ESL_PASSWORD", "example")
	pages, err := filepath.Glob(filepath.Join("docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := 0
	for _, page := range pages {
		for _, b := range tomlBlocks(t, page) {
			blocks++
			_, built, err := parseConfig(b.name, b.text, ".", nil)
			if err != nil {
				t.Errorf("%v", err)
			}
			built.close()
		}
	}
	if blocks == 0 {
		t.Fatalf("no TOML block in docs/ (%d pages)", len(pages))
	}
}

// tomlBlock is one ```toml block of a Markdown page.
type tomlBlock struct {
	name string // the page
	// text is the block, after as many empty lines as precede it in the
	// page: a line of the block is its line in the page.
	text string
}

var tomlBlockRE = regexp.MustCompile("(?s)```toml\n(.*?)```")

// tomlBlocks returns a page's ```toml blocks.
func tomlBlocks(t *testing.T, page string) []tomlBlock {
	t.Helper()
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	var out []tomlBlock
	for _, m := range tomlBlockRE.FindAllStringSubmatchIndex(text, -1) {
		out = append(out, tomlBlock{
			name: filepath.ToSlash(page),
			text: strings.Repeat("\n", strings.Count(text[:m[2]], "\n")) + text[m[2]:m[3]],
		})
	}
	return out
}
