package itest

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-audio/wav"

	"github.com/eslapp/eslapp/esl"
)

// The FreeSWITCH configuration in conf/freeswitch is checked the way
// FreeSWITCH 1.10 reads it, without FreeSWITCH: fsPreprocess follows
// switch_xml.c's preprocess() line by line (includes, set, env-set,
// exec-set, $${var}), and the result must be one XML document holding what
// eslapp and the tests rely on.

// fsPreprocessor emulates FreeSWITCH's XML preprocessor.
type fsPreprocessor struct {
	confDir   string
	vars      map[string]string
	env       map[string]string
	out       strings.Builder
	problems  []string
	inComment bool
}

var (
	directiveRE = regexp.MustCompile(`(?i)^\s*<X-PRE-PROCESS\s+cmd="([^"]*)"\s+data="([^"]*)"\s*/>\s*$`)
	globalVarRE = regexp.MustCompile(`\$\$\{([^}]*)\}`)
)

// fsBuiltins are the global variables FreeSWITCH sets before it reads its
// configuration (switch_core_init), with the Debian packages' paths.
var fsBuiltins = map[string]string{
	"hostname": "fs", "local_ip_v4": "172.28.84.10", "local_mask_v4": "255.255.255.0",
	"local_ip_v6": "::1", "base_dir": "/usr", "conf_dir": "/etc/freeswitch",
	"log_dir": "/var/log/freeswitch", "run_dir": "/run/freeswitch",
	"db_dir": "/var/lib/freeswitch/db", "mod_dir": "/usr/lib/freeswitch/mod",
	"sounds_dir": "/usr/share/freeswitch/sounds", "recordings_dir": "/var/lib/freeswitch/recordings",
	"storage_dir": "/var/lib/freeswitch/storage", "cache_dir": "/var/cache/freeswitch",
	"script_dir": "/usr/share/freeswitch/scripts", "temp_dir": "/tmp",
	"certs_dir": "/etc/freeswitch/tls", "core_uuid": "00000000-0000-0000-0000-000000000000",
}

func (p *fsPreprocessor) problem(file string, line int, format string, args ...any) {
	rel, _ := filepath.Rel(p.confDir, file)
	p.problems = append(p.problems, fmt.Sprintf("%s:%d: %s", rel, line, fmt.Sprintf(format, args...)))
}

func (p *fsPreprocessor) file(path string, depth int) {
	b, err := os.ReadFile(path)
	if err != nil {
		p.problem(path, 0, "%v", err)
		return
	}
	for i, raw := range strings.SplitAfter(string(b), "\n") {
		n := i + 1
		line := globalVarRE.ReplaceAllStringFunc(raw, func(m string) string {
			name := globalVarRE.FindStringSubmatch(m)[1]
			v, ok := p.vars[name]
			if !ok {
				p.problem(path, n, "$${%s} is not set (it would expand to nothing)", name)
			}
			return v
		})
		// preprocess() skips these lines whole, for validators' sake.
		if strings.Contains(line, "<include>") || strings.Contains(line, "</include>") || strings.Contains(line, "<?") {
			continue
		}
		if idx := strings.Index(strings.ToLower(line), "x-pre-process"); idx >= 0 {
			m := directiveRE.FindStringSubmatch(line)
			switch {
			case idx == 0 || line[idx-1] != '<':
				p.problem(path, n, "FreeSWITCH drops this line: it names the preprocessor outside a directive")
				continue
			case m == nil:
				p.problem(path, n, "a preprocessor directive must stand alone on its line as <X-PRE-PROCESS cmd=\"...\" data=\"...\"/>")
				continue
			case p.inComment:
				p.problem(path, n, "a preprocessor directive inside a comment still runs")
			}
			p.directive(path, n, strings.ToLower(m[1]), m[2], depth)
			continue
		}
		p.out.WriteString(line)
		p.trackComments(line)
	}
}

func (p *fsPreprocessor) trackComments(line string) {
	for {
		if p.inComment {
			i := strings.Index(line, "-->")
			if i < 0 {
				return
			}
			p.inComment, line = false, line[i+3:]
		} else {
			i := strings.Index(line, "<!--")
			if i < 0 {
				return
			}
			p.inComment, line = true, line[i+4:]
		}
	}
}

func (p *fsPreprocessor) directive(path string, n int, cmd, data string, depth int) {
	name, value, hasValue := strings.Cut(data, "=")
	name, value = strings.TrimSpace(name), strings.TrimLeft(value, " ")
	switch cmd {
	case "set":
		if hasValue {
			p.vars[name] = value
		}
	case "exec-set":
		// FreeSWITCH runs the command through the shell; the tests only
		// need a value.
		p.vars[name] = "exec-set-output"
	case "env-set":
		if !strings.HasPrefix(value, "$") {
			p.problem(path, n, "env-set takes NAME=$ENVIRONMENT_VARIABLE")
		} else if v, ok := p.env[value[1:]]; ok {
			p.vars[name] = v
		}
	case "include":
		if depth > 10 {
			p.problem(path, n, "includes nested too deep")
			return
		}
		pattern := data
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(p.confDir, pattern)
		}
		files, _ := filepath.Glob(pattern)
		if len(files) == 0 {
			p.problem(path, n, "include %q matches no file", data)
		}
		for _, f := range files {
			p.file(f, depth+1)
		}
	default:
		p.problem(path, n, "unknown preprocessor command %q", cmd)
	}
}

// fsNode is any element of the preprocessed document.
type fsNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []fsNode   `xml:",any"`
}

func (n fsNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// all returns the children named tag whose attributes match the pairs
// (name, value, ...).
func (n fsNode) all(tag string, attrs ...string) []fsNode {
	var out []fsNode
	for _, c := range n.Nodes {
		if c.XMLName.Local != tag {
			continue
		}
		ok := true
		for i := 0; i+1 < len(attrs); i += 2 {
			ok = ok && c.attr(attrs[i]) == attrs[i+1]
		}
		if ok {
			out = append(out, c)
		}
	}
	return out
}

func (n fsNode) one(t *testing.T, tag string, attrs ...string) fsNode {
	t.Helper()
	found := n.all(tag, attrs...)
	if len(found) != 1 {
		t.Fatalf("<%s %s> holds %d <%s %v>, want 1", n.XMLName.Local, n.attr("name"), len(found), tag, attrs)
	}
	return found[0]
}

// params maps a settings block's <param name value> to a map.
func (n fsNode) params() map[string]string {
	m := map[string]string{}
	for _, p := range n.all("param") {
		m[p.attr("name")] = p.attr("value")
	}
	return m
}

// loadFSConf preprocesses conf/freeswitch/freeswitch.xml with the given
// environment and parses the result.
func loadFSConf(t *testing.T, env map[string]string) (fsNode, string) {
	t.Helper()
	p := &fsPreprocessor{confDir: filepath.Join(repoRoot(t), "conf", "freeswitch"), vars: map[string]string{}, env: env}
	for k, v := range fsBuiltins {
		p.vars[k] = v
	}
	p.file(filepath.Join(p.confDir, "freeswitch.xml"), 0)
	for _, pr := range p.problems {
		t.Error(pr)
	}
	var doc fsNode
	if err := xml.Unmarshal([]byte(p.out.String()), &doc); err != nil {
		t.Fatalf("the preprocessed configuration is not XML: %v\n%s", err, p.out.String())
	}
	return doc, p.out.String()
}

func TestFreeSWITCHConfTree(t *testing.T) {
	env := map[string]string{
		"FREESWITCH_ESL_PASSWORD":  "itest-password",
		"FREESWITCH_ESL_LISTEN_IP": "0.0.0.0",
		"ESLAPP_TEST_NET":          "172.28.84.0/24",
	}
	doc, text := loadFSConf(t, env)
	if dir := os.Getenv("ESLAPP_ITEST_OUT"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "freeswitch.preprocessed.xml"), []byte(text), 0o644)
	}
	if doc.XMLName.Local != "document" {
		t.Fatalf("root element <%s>", doc.XMLName.Local)
	}
	conf := doc.one(t, "section", "name", "configuration")
	cfg := func(name string) fsNode { return conf.one(t, "configuration", "name", name) }

	// The modules eslapp needs, mod_ssml above all (tts:// is a mod_ssml
	// file format).
	var loaded []string
	for _, m := range cfg("modules.conf").one(t, "modules").all("load") {
		loaded = append(loaded, m.attr("module"))
	}
	for _, m := range []string{"mod_event_socket", "mod_sofia", "mod_dptools", "mod_commands", "mod_dialplan_xml",
		"mod_sndfile", "mod_tone_stream", "mod_local_stream", "mod_say_en", "mod_flite", "mod_ssml"} {
		if !slices.Contains(loaded, m) {
			t.Errorf("modules.conf does not load %s", m)
		}
	}

	// The inbound Event Socket: the password and address from the
	// environment, behind the test network's ACL.
	es := cfg("event_socket.conf").one(t, "settings").params()
	if es["password"] != "itest-password" || es["listen-ip"] != "0.0.0.0" || es["apply-inbound-acl"] != "eslapp_test" {
		t.Errorf("event_socket.conf: %v", es)
	}
	// Without FREESWITCH_ESL_PASSWORD the password is random, never empty
	// nor ClueCon, and the socket stays on loopback.
	bare, _ := loadFSConf(t, map[string]string{})
	esBare := bare.one(t, "section", "name", "configuration").one(t, "configuration", "name", "event_socket.conf").one(t, "settings").params()
	if pw := esBare["password"]; pw == "" || strings.EqualFold(pw, "ClueCon") || esBare["listen-ip"] != "127.0.0.1" {
		t.Errorf("event_socket.conf without the environment: %v", esBare)
	}

	// The ACL both the SIP profile and the Event Socket apply.
	acl := cfg("acl.conf").one(t, "network-lists").one(t, "list", "name", "eslapp_test")
	var cidrs []string
	for _, n := range acl.all("node", "type", "allow") {
		cidrs = append(cidrs, n.attr("cidr"))
	}
	if acl.attr("default") != "deny" || !slices.Contains(cidrs, "172.28.84.0/24") || !slices.Contains(cidrs, "127.0.0.0/8") {
		t.Errorf("acl eslapp_test: default %q, allows %v", acl.attr("default"), cidrs)
	}

	// One SIP profile without authentication, closed to other networks.
	profile := cfg("sofia.conf").one(t, "profiles").one(t, "profile", "name", "eslapp").one(t, "settings").params()
	for k, v := range map[string]string{"auth-calls": "false", "apply-inbound-acl": "eslapp_test", "context": "default",
		"sip-port": "5080", "dtmf-type": "rfc2833", "rfc2833-pt": "101"} {
		if profile[k] != v {
			t.Errorf("sofia profile eslapp: %s = %q, want %q", k, profile[k], v)
		}
	}
	sw := cfg("switch.conf").one(t, "settings").params()
	if sw["sessions-per-second"] == "" || sw["max-sessions"] == "" {
		t.Errorf("switch.conf: %v", sw)
	}

	// The profile binds 127.0.0.1 unless ESLAPP_SIP_IP names another
	// address, and the ACL admits that address: SIPp calling it sends from
	// it. The core logs at info (debug costs FreeSWITCH about 11 ms of CPU
	// per call) unless FREESWITCH_LOGLEVEL says otherwise, and the console
	// follows the core.
	bareConf := bare.one(t, "section", "name", "configuration")
	bareProfile := bareConf.one(t, "configuration", "name", "sofia.conf").one(t, "profiles").one(t, "profile", "name", "eslapp").one(t, "settings").params()
	if bareProfile["sip-ip"] != "127.0.0.1" || bareProfile["rtp-ip"] != "127.0.0.1" {
		t.Errorf("sofia profile eslapp without the environment: sip-ip %q rtp-ip %q, want 127.0.0.1", bareProfile["sip-ip"], bareProfile["rtp-ip"])
	}
	if sw := bareConf.one(t, "configuration", "name", "switch.conf").one(t, "settings").params(); sw["loglevel"] != "info" {
		t.Errorf("switch.conf loglevel %q without the environment, want info", sw["loglevel"])
	}
	moved, _ := loadFSConf(t, map[string]string{"ESLAPP_SIP_IP": "192.0.2.7", "FREESWITCH_LOGLEVEL": "warning"})
	movedConf := moved.one(t, "section", "name", "configuration")
	movedProfile := movedConf.one(t, "configuration", "name", "sofia.conf").one(t, "profiles").one(t, "profile", "name", "eslapp").one(t, "settings").params()
	if movedProfile["sip-ip"] != "192.0.2.7" {
		t.Errorf("ESLAPP_SIP_IP=192.0.2.7: sip-ip %q", movedProfile["sip-ip"])
	}
	var movedCIDRs []string
	for _, n := range movedConf.one(t, "configuration", "name", "acl.conf").one(t, "network-lists").one(t, "list", "name", "eslapp_test").all("node", "type", "allow") {
		movedCIDRs = append(movedCIDRs, n.attr("cidr"))
	}
	if !slices.Contains(movedCIDRs, "192.0.2.7/32") {
		t.Errorf("ESLAPP_SIP_IP=192.0.2.7: the ACL allows %v, not the profile's address", movedCIDRs)
	}
	for _, name := range []string{"switch.conf", "console.conf"} {
		if lv := movedConf.one(t, "configuration", "name", name).one(t, "settings").params()["loglevel"]; lv != "warning" {
			t.Errorf("FREESWITCH_LOGLEVEL=warning: %s loglevel %q", name, lv)
		}
	}

	// The dialplan: eslapp's extensions, the agent stand-in every branch
	// transfers to, and the crm_branches context.
	dialplan := doc.one(t, "section", "name", "dialplan")
	def := dialplan.one(t, "context", "name", "default")
	exts := def.all("extension")
	expr := func(e fsNode) string { return e.one(t, "condition").attr("expression") }
	find := func(ctx fsNode, dest string) (fsNode, bool) {
		for _, e := range ctx.all("extension") {
			if ok, _ := regexp.MatchString(expr(e), dest); ok {
				return e, true // the first match wins, as in mod_dialplan_xml
			}
		}
		return fsNode{}, false
	}
	for _, dest := range []string{"7000", "7001", "7002", "7010", "7011", "7019", "7021", "7022", "1000", "7080", "7081", "7090"} {
		if _, ok := find(def, dest); !ok {
			t.Errorf("context default has no extension for %s", dest)
		}
	}
	if last := exts[len(exts)-1]; expr(last) != "^.*$" {
		t.Errorf("the catch-all must come last, found %q", expr(last))
	}
	// Held socket: every socket action connects to the address list of
	// ESLAPP_SOCKETS (default 8084, then 8085), async and full.
	for _, dest := range []string{"7000", "7001", "7002", "7015", "7021", "7022"} {
		e, _ := find(def, dest)
		var socket string
		for _, a := range e.one(t, "condition").all("action", "application", "socket") {
			socket = a.attr("data")
		}
		if socket != "127.0.0.1:8084|127.0.0.1:8085 async full" {
			t.Errorf("%s: socket %q", dest, socket)
		}
	}
	// The shipped held-socket extensions arm the pick-up net right before
	// the socket and cancel it right after (an eslapp that stands still
	// must not keep the caller in silence; eslapp deletes the net first).
	for _, dest := range []string{"7000", "7001", "7002"} {
		e, _ := find(def, dest)
		var apps []string
		for _, a := range e.one(t, "condition").all("action") {
			app := a.attr("application")
			switch {
			case app == "set" && a.attr("data") == heldPickNet:
				app = "set-pick-up-net"
			case app == "sched_cancel" && a.attr("data") != "eslapp-pick-${uuid}":
				t.Errorf("%s: sched_cancel %q, want eslapp-pick-${uuid}", dest, a.attr("data"))
			}
			apps = append(apps, app)
		}
		if got, want := strings.Join(apps, " "), "answer multiset set-pick-up-net socket sched_cancel transfer"; got != want {
			t.Errorf("%s runs %q, want %q", dest, got, want)
		}
	}
	// Socket-less: every extension that announces a call to eslapp has
	// the same shape (checkSocketless), 7010, 7011 and 7019 among them;
	// 7018 and 7016 keep an older dialplan's shape (the negative control
	// of the pool's claim tests; the previous release's plan, for its
	// cost), 7017 waits without music (its cost), 7012 keeps the earlier
	// +2 pick-up net (what the longer one wins at the limit).
	var socketless []string
	for _, e := range exts {
		if expr(e) == "^7018$" || expr(e) == "^7017$" || expr(e) == "^7016$" || expr(e) == "^7012$" {
			continue
		}
		for _, a := range e.one(t, "condition").all("action", "application", "event") {
			if strings.Contains(a.attr("data"), esl.DefaultStartSubclass) {
				socketless = append(socketless, expr(e))
				checkSocketless(t, e)
			}
		}
	}
	for _, dest := range []string{"7010", "7011", "7019"} {
		if e, ok := find(def, dest); !ok || !slices.Contains(socketless, expr(e)) {
			t.Errorf("%s is not socket-less", dest)
		}
	}
	branches := dialplan.one(t, "context", "name", "crm_branches")
	for _, b := range []string{"OnSuccess", "OnTimeout", "OnError", "OnInvalidInput", "OnInvalidWorkflow", "OnAgentIntegrationDisabled"} {
		e, ok := find(branches, b)
		if !ok {
			t.Errorf("crm_branches has no extension for %s", b)
			continue
		}
		for _, a := range e.one(t, "condition").all("action") {
			switch a.attr("application") {
			case "transfer":
				dest, _, _ := strings.Cut(a.attr("data"), " ")
				if _, ok := find(def, dest); !ok || !strings.HasSuffix(a.attr("data"), " XML default") {
					t.Errorf("crm_branches %s transfers to %q, which the default context does not have", b, a.attr("data"))
				}
			case "playback":
				if f := a.attr("data"); !strings.HasPrefix(f, "/usr/share/eslapp/sounds/") {
					t.Errorf("crm_branches %s plays %q, not from eslapp's sounds", b, f)
				}
			}
		}
	}

	// say needs the language block, with macros under phrases.
	lang := doc.one(t, "section", "name", "languages").one(t, "language", "name", "en")
	if lang.attr("say-module") != "en" || lang.attr("sound-prefix") != "/usr/share/freeswitch/sounds/en/us/callie" {
		t.Errorf("language en: %v", lang.Attrs)
	}
	lang.one(t, "phrases").one(t, "macros")
}

// The pick-up net: armed before the announcement, in the scheduler group
// eslapp claims the call by (sched_del eslapp-pick-UUID), and moving the
// call to OnError if nobody does. +3 (2 to 3.5 s): at FreeSWITCH's limit
// claims came after a +2 net (BENCHMARKS.md, issue 22).
const pickNet = "eslapp_pick=${sched_api(+3 eslapp-pick-${uuid} uuid_transfer ${uuid} OnError XML crm_branches)}"

// heldPickNet is the held socket's pick-up net, the same: armed before the
// socket, whose connect and reply come before eslapp's claim.
const heldPickNet = pickNet

// checkSocketless checks a socket-less extension: answer, the inputs (with
// the branch context and no terminators), the pick-up net, the event of
// eslapp's subclass, the hold music, and park last; no socket, and no net
// of the dialplan's own (sched_transfer): eslapp arms its nets itself.
func checkSocketless(t *testing.T, e fsNode) {
	t.Helper()
	name := e.attr("name")
	var apps []string
	for _, a := range e.one(t, "condition").all("action") {
		app, data := a.attr("application"), a.attr("data")
		apps = append(apps, app)
		switch app {
		case "multiset":
			for _, want := range []string{"^^|", "|playback_terminators=none", "|wfe_branch=OnError", "|wfe_context=crm_branches"} {
				if !strings.Contains(data, want) {
					t.Errorf("%s: multiset %q lacks %q", name, data, want)
				}
			}
		case "set":
			if data != pickNet {
				t.Errorf("%s: set %q, want the pick-up net %q", name, data, pickNet)
			}
		case "event":
			if want := "Event-Name=CUSTOM,Event-Subclass=" + esl.DefaultStartSubclass; data != want {
				t.Errorf("%s: event %q, want %q", name, data, want)
			}
		case "playback":
			if data != "local_stream://eslapp_hold" {
				t.Errorf("%s: plays %q, want the hold music local_stream://eslapp_hold", name, data)
			}
		}
	}
	if got, want := strings.Join(apps, " "), "answer multiset set event playback park"; got != want {
		t.Errorf("%s runs %q, want %q (no socket, no sched_transfer)", name, got, want)
	}
}

// The settings that differ between FreeSWITCH processes of a pool come from
// the environment, with the old fixed values as defaults.
func TestFreeSWITCHConfPerProcess(t *testing.T) {
	type settings struct{ sipPort, eslPort, rtpStart, rtpEnd, sockets, coreDB string }
	read := func(env map[string]string) settings {
		doc, _ := loadFSConf(t, env)
		conf := doc.one(t, "section", "name", "configuration")
		params := func(name string) map[string]string {
			return conf.one(t, "configuration", "name", name).one(t, "settings").params()
		}
		profile := conf.one(t, "configuration", "name", "sofia.conf").one(t, "profiles").one(t, "profile", "name", "eslapp").one(t, "settings").params()
		sw := params("switch.conf")
		got := settings{sipPort: profile["sip-port"], eslPort: params("event_socket.conf")["listen-port"],
			rtpStart: sw["rtp-start-port"], rtpEnd: sw["rtp-end-port"], coreDB: sw["core-db-name"]}
		// Every socket action of every context names the same list.
		for _, ctx := range doc.one(t, "section", "name", "dialplan").all("context") {
			for _, e := range ctx.all("extension") {
				for _, c := range e.all("condition") {
					for _, a := range c.all("action", "application", "socket") {
						addrs, opts, _ := strings.Cut(a.attr("data"), " ")
						if opts != "async full" || (got.sockets != "" && addrs != got.sockets) {
							t.Errorf("extension %s: socket %q", e.attr("name"), a.attr("data"))
						}
						got.sockets = addrs
					}
				}
			}
		}
		return got
	}
	if got, want := read(map[string]string{}), (settings{"5080", "8021", "16384", "32768",
		"127.0.0.1:8084|127.0.0.1:8085", "/dev/shm/freeswitch-core.db"}); got != want {
		t.Errorf("without the environment:\n got %+v\nwant %+v", got, want)
	}
	env := map[string]string{
		"ESLAPP_SIP_PORT": "5082", "FREESWITCH_ESL_PORT": "8022",
		"FREESWITCH_RTP_START": "32770", "FREESWITCH_RTP_END": "49152",
		"ESLAPP_SOCKETS":     "10.0.0.2:8084|10.0.0.3:8084|127.0.0.1:8085",
		"FREESWITCH_CORE_DB": "/dev/shm/fs-b/core.db",
	}
	if got, want := read(env), (settings{"5082", "8022", "32770", "49152",
		"10.0.0.2:8084|10.0.0.3:8084|127.0.0.1:8085", "/dev/shm/fs-b/core.db"}); got != want {
		t.Errorf("with %v:\n got %+v\nwant %+v", env, got, want)
	}
}

// The hold music of the socket-less extensions: the stream eslapp_hold at
// 8 and 16 kHz, each from a directory of eslapp's sounds that holds
// holdmusic.wav six times over and nothing else (a stream plays every file
// of its directory, and pauses 1 s each time it starts it again), as
// sounds/generate.sh makes it.
func TestFreeSWITCHHoldMusicStream(t *testing.T) {
	doc, _ := loadFSConf(t, map[string]string{"ESLAPP_SOUNDS_DIR": "/srv/eslapp/sounds"})
	ls := doc.one(t, "section", "name", "configuration").one(t, "configuration", "name", "local_stream.conf")
	sounds := filepath.Join(repoRoot(t), "sounds")
	for _, c := range []struct{ name, rate string }{{"eslapp_hold", "8000"}, {"eslapp_hold/16000", "16000"}} {
		d := ls.one(t, "directory", "name", c.name)
		if want := "/srv/eslapp/sounds/hold/" + c.rate; d.attr("path") != want {
			t.Errorf("local_stream %s: path %q, want %q", c.name, d.attr("path"), want)
		}
		p := d.params()
		if p["rate"] != c.rate || p["channels"] != "1" || p["shuffle"] != "false" {
			t.Errorf("local_stream %s: %v", c.name, p)
		}
		dir := filepath.Join(sounds, "hold", c.rate)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Error(err)
			continue
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if len(names) != 1 || names[0] != "holdmusic.wav" {
			t.Errorf("%s holds %v, want holdmusic.wav alone", dir, names)
		}
		stream, err1 := wavSamples(filepath.Join(dir, "holdmusic.wav"))
		music, err2 := wavSamples(filepath.Join(sounds, c.rate, "holdmusic.wav"))
		if err1 != nil || err2 != nil {
			t.Errorf("reading the hold music: %v %v", err1, err2)
			continue
		}
		if len(music) == 0 || !slices.Equal(stream, slices.Repeat(music, 6)) {
			t.Errorf("sounds/hold/%s/holdmusic.wav is not sounds/%s/holdmusic.wav six times over (%d samples, want 6 × %d; sounds/generate.sh makes it)",
				c.rate, c.rate, len(stream), len(music))
		}
	}
}

// wavSamples reads a wav file's samples.
func wavSamples(path string) ([]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf, err := wav.NewDecoder(f).FullPCMBuffer()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return buf.Data, nil
}
