package itest

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// docker/ kept consistent without Docker: the eslapp configurations of the
// compose file against conf/eslapp.toml, and the compose file against
// itself, the FreeSWITCH configuration as each FreeSWITCH service's
// environment makes it, the eslapp configurations, Kamailio's dispatcher
// list and the Dockerfiles. .ci/docker-e2e runs all of it for real.

// docker/eslapp.toml is the shipped demo configuration with the
// containers' paths and addresses: it must not drift from
// conf/eslapp.toml, it must agree with the FreeSWITCH configuration and the
// compose file, and eslapp check must accept it.
func TestDockerEslappConfig(t *testing.T) {
	root := repoRoot(t)
	docker, shipped := decodeTOML(t, "docker/eslapp.toml"), decodeTOML(t, "conf/eslapp.toml")
	sameAsShipped(t, "docker/eslapp.toml", docker, shipped)

	server, _ := docker["server"].(map[string]any)
	sounds, _ := docker["sounds"].(map[string]any)
	listen, _ := server["listen"].(string)
	dir, _ := sounds["dir"].(string)

	// FreeSWITCH's socket application reaches eslapp in the shared network
	// namespace (the first address of its list, ESLAPP_SOCKETS: the one
	// eslapp of the compose file), and both play the prompts from the same
	// path.
	c := loadCompose(t)
	doc, _ := loadFSConf(t, c.fsEnv(t, "freeswitch"))
	def := doc.one(t, "section", "name", "dialplan").one(t, "context", "name", "default")
	for _, e := range def.all("extension") {
		for _, a := range e.one(t, "condition").all("action", "application", "socket") {
			addrs, _, _ := strings.Cut(a.attr("data"), " ")
			if first, _, _ := strings.Cut(addrs, "|"); first != listen {
				t.Errorf("extension %s connects to %s first, docker/eslapp.toml listens on %s", e.attr("name"), first, listen)
			}
		}
	}
	branches := doc.one(t, "section", "name", "dialplan").one(t, "context", "name", "crm_branches")
	for _, e := range branches.all("extension") {
		for _, a := range e.one(t, "condition").all("action", "application", "playback") {
			if !strings.HasPrefix(a.attr("data"), dir+"/") {
				t.Errorf("crm_branches plays %s, outside docker/eslapp.toml's sounds dir %s", a.attr("data"), dir)
			}
		}
	}
	// Socket-less calls: the Event Socket of FreeSWITCH in the shared
	// namespace.
	socketless, _ := docker["socketless"].(map[string]any)
	esl := doc.one(t, "section", "name", "configuration").one(t, "configuration", "name", "event_socket.conf").one(t, "settings").params()
	if want := "127.0.0.1:" + esl["listen-port"]; socketless["address"] != want {
		t.Errorf("docker/eslapp.toml [socketless] address %v, FreeSWITCH's Event Socket is %s in the shared namespace", socketless["address"], want)
	}

	// The service mounts this file where eslapp reads it, and docker stop
	// waits out its drain and the hand-back.
	c.eslappService(t, "eslapp", "./eslapp.toml", docker)
	if c.str("eslapp", "network_mode") != "service:freeswitch" {
		t.Errorf("compose.yaml: eslapp must share freeswitch's network namespace (network_mode: service:freeswitch), got %q", c.str("eslapp", "network_mode"))
	}

	if testing.Short() {
		t.Skip("-short: eslapp check of docker/eslapp.toml not run")
	}
	eslappCheck(t, filepath.Join(root, "docker", "eslapp.toml"), dir)
}

// docker/eslapp-pool.toml is the configuration of the pool's two eslapps
// (compose profile pool): the shipped demo from [tts] on, listening on
// the harness network for both FreeSWITCH of the pool and logged in to
// both.
func TestDockerPoolConfig(t *testing.T) {
	root := repoRoot(t)
	pool, shipped := decodeTOML(t, "docker/eslapp-pool.toml"), decodeTOML(t, "conf/eslapp.toml")
	sameAsShipped(t, "docker/eslapp-pool.toml", pool, shipped)
	c := loadCompose(t)

	server, _ := pool["server"].(map[string]any)
	sounds, _ := pool["sounds"].(map[string]any)
	dir, _ := sounds["dir"].(string)
	listen, _ := server["listen"].(string)
	_, port, err := splitHostPortStr(listen)
	if err != nil {
		t.Fatalf("docker/eslapp-pool.toml listen %q: %v", listen, err)
	}

	fss := c.match(func(name string) bool { return c.isFreeSWITCH(name) && c.inProfile(name, "pool") })
	eslapps := c.match(func(name string) bool { return c.isEslapp(name) && c.inProfile(name, "pool") })
	if len(fss) < 2 || len(eslapps) < 2 {
		t.Fatalf("compose.yaml: the profile pool has FreeSWITCH %v and eslapps %v, want two of each at least", fss, eslapps)
	}
	for _, e := range eslapps {
		c.eslappService(t, e, "./eslapp-pool.toml", pool)
		if c.str(e, "network_mode") != "" || !c.onHarness(e) {
			t.Errorf("compose.yaml: %s must be on the harness network, in its own namespace (FreeSWITCH's socket application reaches it by name)", e)
		}
		for _, fs := range fss {
			if !slices.Contains(c.list(e, "depends_on"), fs) {
				t.Errorf("compose.yaml: %s must depend on %s", e, fs)
			}
		}
	}

	// The harness network may reach the outbound socket (both FreeSWITCH
	// connect from it); nothing else but loopback.
	subnet := c.subnet(t)
	var admitted bool
	for _, a := range anyStrings(server["allow"]) {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			t.Errorf("docker/eslapp-pool.toml allow %q: %v", a, err)
			continue
		}
		if p.Contains(subnet.Addr()) && p.Bits() <= subnet.Bits() {
			admitted = true
		} else if !p.Addr().IsLoopback() {
			t.Errorf("docker/eslapp-pool.toml allow %s: more than the harness network %s and loopback", a, subnet)
		}
	}
	if !admitted {
		t.Errorf("docker/eslapp-pool.toml allow %v does not admit the harness network %s", server["allow"], subnet)
	}

	// Each FreeSWITCH of the pool: its socket application lists every
	// eslapp of the pool at the port it listens on, and the eslapps log in
	// to every FreeSWITCH's Event Socket.
	var wantHosts []string
	for _, fs := range fss {
		doc, _ := loadFSConf(t, c.fsEnv(t, fs))
		esl := doc.one(t, "section", "name", "configuration").one(t, "configuration", "name", "event_socket.conf").one(t, "settings").params()
		wantHosts = append(wantHosts, fs+":"+esl["listen-port"])
		def := doc.one(t, "section", "name", "dialplan").one(t, "context", "name", "default")
		for _, e := range def.all("extension") {
			for _, a := range e.one(t, "condition").all("action", "application", "socket") {
				addrs, _, _ := strings.Cut(a.attr("data"), " ")
				var hosts []string
				for _, addr := range strings.Split(addrs, "|") {
					host, p, err := splitHostPortStr(addr)
					if err != nil || p != port {
						t.Errorf("%s: extension %s connects to %s, the pool's eslapps listen on port %s", fs, e.attr("name"), addr, port)
					}
					hosts = append(hosts, host)
				}
				slices.Sort(hosts)
				if !slices.Equal(hosts, eslapps) {
					t.Errorf("%s: extension %s connects to %v, the pool's eslapps are %v", fs, e.attr("name"), hosts, eslapps)
				}
			}
		}
	}
	socketless, _ := pool["socketless"].(map[string]any)
	var hosts []string
	for _, h := range anyMaps(socketless["hosts"]) {
		hosts = append(hosts, fmt.Sprint(h["address"]))
		if h["password"] != "${env:FREESWITCH_ESL_PASSWORD}" {
			t.Errorf("docker/eslapp-pool.toml: host %v logs in with %v, not the password compose gives (${env:FREESWITCH_ESL_PASSWORD})", h["address"], h["password"])
		}
	}
	slices.Sort(hosts)
	slices.Sort(wantHosts)
	if !slices.Equal(hosts, wantHosts) || socketless["enabled"] != true {
		t.Errorf("docker/eslapp-pool.toml [socketless]: enabled %v, hosts %v; the pool's FreeSWITCH Event Sockets are %v", socketless["enabled"], hosts, wantHosts)
	}

	if testing.Short() {
		t.Skip("-short: eslapp check of docker/eslapp-pool.toml not run")
	}
	eslappCheck(t, filepath.Join(root, "docker", "eslapp-pool.toml"), dir)
}

// The compose file as a whole: what every FreeSWITCH and every eslapp
// needs, the pool's addresses, Kamailio's list and defines, and the
// Dockerfiles' fixes for building without a registry.
func TestDockerCompose(t *testing.T) {
	root := repoRoot(t)
	c := loadCompose(t)
	docker := decodeTOML(t, "docker/eslapp.toml")
	sounds, _ := docker["sounds"].(map[string]any)
	dir, _ := sounds["dir"].(string)
	subnet := c.subnet(t)

	for _, name := range c.names() {
		// Images no registry has: built here, never pulled.
		if c.get(name, "build") != nil {
			if c.str(name, "pull_policy") != "never" || !regexp.MustCompile(`^eslapp/[a-z]+:local$`).MatchString(c.str(name, "image")) {
				t.Errorf("compose.yaml: %s builds image %q with pull_policy %q: want eslapp/NAME:local, never pulled", name, c.str(name, "image"), c.str(name, "pull_policy"))
			}
			ctx := filepath.Join(root, "docker", c.str(name, "build", "context"))
			file := filepath.Join(ctx, c.str(name, "build", "dockerfile"))
			if _, err := os.Stat(file); err != nil {
				t.Errorf("compose.yaml: %s: %v", name, err)
			}
			if filepath.Clean(ctx) == root {
				if _, err := os.Stat(file + ".dockerignore"); err != nil {
					t.Errorf("compose.yaml: %s builds from the repository root without %s.dockerignore (the whole tree would be its context)", name, filepath.Base(file))
				}
			}
		}
		// The descriptor limit is a variable: a container cannot get more
		// than the Docker daemon's own hard limit, 20000 on some hosts.
		if c.get(name, "ulimits") != nil {
			for _, k := range []string{"soft", "hard"} {
				raw, _ := c.get(name, "ulimits", "nofile", k).(string)
				m := regexp.MustCompile(`^\$\{ESLAPP_NOFILE:-(\d+)\}$`).FindStringSubmatch(raw)
				if m == nil {
					t.Errorf("compose.yaml: %s nofile %s is %q, want ${ESLAPP_NOFILE:-N}", name, k, raw)
				} else if n, _ := strconv.Atoi(m[1]); n > 20000 {
					t.Errorf("compose.yaml: %s nofile %s defaults to %d, above the 20000 hard limit some Docker hosts keep", name, k, n)
				}
			}
		}
		if c.isFreeSWITCH(name) || c.isEslapp(name) {
			if c.get(name, "ulimits") == nil {
				t.Errorf("compose.yaml: %s has no nofile limit (${ESLAPP_NOFILE})", name)
			}
			if mount := "../sounds:" + dir + ":ro"; !slices.Contains(c.list(name, "volumes"), mount) {
				t.Errorf("compose.yaml: %s must mount %s (the sounds dir of eslapp's and FreeSWITCH's configuration)", name, mount)
			}
		}
		if c.isFreeSWITCH(name) || c.isEslapp(name) || name == "itest" {
			// FreeSWITCH refuses to start without it, and eslapp logs in
			// with it: required, never defaulted.
			env := "FREESWITCH_ESL_PASSWORD"
			if name == "itest" {
				env = "ESLAPP_FS_ESL_PASSWORD"
			}
			if raw, _ := c.get(name, "environment", env).(string); !strings.HasPrefix(raw, "${FREESWITCH_ESL_PASSWORD:?") {
				t.Errorf("compose.yaml: %s %s is %q, want ${FREESWITCH_ESL_PASSWORD:?...}", name, env, raw)
			}
		}
	}

	// Every FreeSWITCH: on the harness network at the address its SIP
	// profile binds, admitting the harness network (callers, Kamailio, the
	// pool's eslapps), with the sounds where eslapp's configuration says.
	fss := c.match(c.isFreeSWITCH)
	for _, fs := range fss {
		env := c.fsEnv(t, fs)
		if env["ESLAPP_TEST_NET"] != subnet.String() {
			t.Errorf("compose.yaml: %s ESLAPP_TEST_NET is %q, want the harness network %s", fs, env["ESLAPP_TEST_NET"], subnet)
		}
		if env["ESLAPP_SOUNDS_DIR"] != dir {
			t.Errorf("compose.yaml: %s ESLAPP_SOUNDS_DIR is %q, want %s", fs, env["ESLAPP_SOUNDS_DIR"], dir)
		}
		ip := c.str(fs, "networks", "harness", "ipv4_address")
		a, err := netip.ParseAddr(ip)
		if err != nil || !subnet.Contains(a) {
			t.Errorf("compose.yaml: %s is at %q on the harness network %s", fs, ip, subnet)
		}
		doc, _ := loadFSConf(t, env)
		profile := doc.one(t, "section", "name", "configuration").one(t, "configuration", "name", "sofia.conf").
			one(t, "profiles").one(t, "profile", "name", "eslapp").one(t, "settings").params()
		if profile["sip-ip"] != ip {
			t.Errorf("compose.yaml: %s's SIP profile binds %q (ESLAPP_SIP_IP), its address is %q", fs, profile["sip-ip"], ip)
		}
	}

	// The pool's Kamailio: its list names the pool's FreeSWITCH at their
	// SIP profiles, it listens on the container's interface, admits the
	// harness network's callers and starts after the FreeSWITCH it
	// resolves.
	poolFS := c.match(func(name string) bool { return c.isFreeSWITCH(name) && c.inProfile(name, "pool") })
	if !c.inProfile("kamailio", "pool") || !c.onHarness("kamailio") {
		t.Fatalf("compose.yaml: kamailio must be in the profile pool, on the harness network")
	}
	var want []string
	for _, fs := range poolFS {
		doc, _ := loadFSConf(t, c.fsEnv(t, fs))
		profile := doc.one(t, "section", "name", "configuration").one(t, "configuration", "name", "sofia.conf").
			one(t, "profiles").one(t, "profile", "name", "eslapp").one(t, "settings").params()
		want = append(want, "sip:"+fs+":"+profile["sip-port"])
		if !slices.Contains(c.list("kamailio", "depends_on"), fs) {
			t.Errorf("compose.yaml: kamailio must depend on %s (the dispatcher list's names resolve when Kamailio starts)", fs)
		}
	}
	defines := map[string]string{}
	args := c.list("kamailio", "command")
	for i := 0; i < len(args); i++ {
		if args[i] == "-A" && i+1 < len(args) {
			k, v, _ := strings.Cut(args[i+1], "=")
			defines[k] = v
			i++
		} else {
			t.Errorf("compose.yaml: kamailio's command has %q; it passes -A NAME=VALUE defines only", args[i])
		}
	}
	if l := defines["LISTEN"]; l == "" || strings.Contains(l, "0.0.0.0") {
		t.Errorf("compose.yaml: kamailio LISTEN=%q: an interface or an address, never 0.0.0.0 (conf/kamailio/README.md)", l)
	}
	if defines["CALLER_NET"] != strconv.Quote(subnet.String()) {
		t.Errorf("compose.yaml: kamailio CALLER_NET=%s, want %q (the harness network, quoted)", defines["CALLER_NET"], subnet.String())
	}
	list, err := strconv.Unquote(defines["DS_LIST"])
	if err != nil {
		t.Errorf("compose.yaml: kamailio DS_LIST=%s, want a quoted path", defines["DS_LIST"])
	}
	vols := c.list("kamailio", "volumes")
	for _, m := range []string{"./kamailio-dispatcher.list:" + list + ":ro", "../conf/kamailio/kamailio.cfg:/etc/kamailio/kamailio.cfg:ro"} {
		if !slices.Contains(vols, m) {
			t.Errorf("compose.yaml: kamailio must mount %s (has %v)", m, vols)
		}
	}
	var got []string
	text, err := os.ReadFile(filepath.Join(root, "docker", "kamailio-dispatcher.list"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(text), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 4 || f[0] != "1" {
			t.Errorf("docker/kamailio-dispatcher.list: %q: want 1 sip:HOST:PORT FLAGS PRIORITY (set 1, the pool)", line)
			continue
		}
		got = append(got, f[1])
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("docker/kamailio-dispatcher.list names %v, the pool's FreeSWITCH are %v", got, want)
	}
	kd := readFile(t, filepath.Join(root, "docker", "kamailio.Dockerfile"))
	for _, s := range []string{"COPY conf/kamailio/kamailio.cfg /etc/kamailio/kamailio.cfg", "COPY docker/kamailio-dispatcher.list " + list, `"-f", "/etc/kamailio/kamailio.cfg"`} {
		if !strings.Contains(kd, s) {
			t.Errorf("docker/kamailio.Dockerfile lacks %s", s)
		}
	}

	// Building without a registry: no syntax line (it makes BuildKit fetch
	// the Dockerfile frontend's image), and SIPp as a user other than root
	// may open the raw socket its DTMF needs.
	files, _ := filepath.Glob(filepath.Join(root, "docker", "*.Dockerfile"))
	for _, f := range files {
		if regexp.MustCompile(`(?mi)^#\s*syntax\s*=`).MatchString(readFile(t, f)) {
			t.Errorf("%s: a # syntax= line makes every build fetch the frontend's image from a registry", filepath.Base(f))
		}
	}
	for _, f := range []string{"sipp.Dockerfile", "itest.Dockerfile"} {
		if !strings.Contains(readFile(t, filepath.Join(root, "docker", f)), "setcap cap_net_raw+ep /usr/bin/sipp") {
			t.Errorf("docker/%s: SIPp needs cap_net_raw (setcap cap_net_raw+ep /usr/bin/sipp) to play DTMF as a user", f)
		}
	}
}

func decodeTOML(t *testing.T, rel string) map[string]any {
	t.Helper()
	var m map[string]any
	if _, err := toml.DecodeFile(filepath.Join(repoRoot(t), rel), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// sameAsShipped: only [server], [socketless], [sounds] and [log] may
// differ from conf/eslapp.toml (the files say: everything from [tts] on).
func sameAsShipped(t *testing.T, name string, m, shipped map[string]any) {
	t.Helper()
	local := []string{"server", "socketless", "sounds", "log"}
	for _, k := range union(m, shipped) {
		if !slices.Contains(local, k) && !reflect.DeepEqual(m[k], shipped[k]) {
			t.Errorf("%s [%s] differs from conf/eslapp.toml: copy it over", name, k)
		}
	}
}

// eslappCheck runs eslapp check on a docker configuration with its sounds
// dir pointed at this checkout's copy.
func eslappCheck(t *testing.T, path, dir string) {
	t.Helper()
	text := readFile(t, path)
	line := `dir = "` + dir + `"`
	if strings.Count(text, line) != 1 {
		t.Fatalf("%s: expected one line %s", path, line)
	}
	cfg := filepath.Join(t.TempDir(), filepath.Base(path))
	patched := strings.Replace(text, line, `dir = "`+filepath.Join(repoRoot(t), "sounds")+`"`, 1)
	if err := os.WriteFile(cfg, []byte(patched), 0o644); err != nil {
		t.Fatal(err)
	}
	check := exec.Command(eslappBinary(t), "check", "-config", cfg)
	check.Env = append(os.Environ(), "FREESWITCH_ESL_PASSWORD=docker-test") // compose passes it
	out, err := check.CombinedOutput()
	if err != nil {
		t.Errorf("eslapp check %s: %v\n%s", filepath.Base(path), err, out)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func union(a, b map[string]any) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func anyStrings(v any) []string {
	var out []string
	switch l := v.(type) {
	case []any:
		for _, e := range l {
			out = append(out, fmt.Sprint(e))
		}
	case []string:
		out = l
	}
	return out
}

func anyMaps(v any) []map[string]any {
	switch l := v.(type) {
	case []map[string]any:
		return l
	case []any:
		var out []map[string]any
		for _, e := range l {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

func splitHostPortStr(addr string) (host, port string, err error) {
	i := strings.LastIndexByte(addr, ':')
	if i <= 0 || i == len(addr)-1 {
		return "", "", fmt.Errorf("%q is not HOST:PORT", addr)
	}
	return addr[:i], addr[i+1:], nil
}

// ---------------------------------------------------------------------------
// docker/compose.yaml, read without Docker: services by name, each value as
// written, and as compose interpolates it with no variable set (defaults).

type composeFile struct {
	services map[string]any
	networks map[string]any
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	doc, err := parseYAMLSubset(readFile(t, filepath.Join(repoRoot(t), "docker", "compose.yaml")))
	if err != nil {
		t.Fatalf("docker/compose.yaml: %v", err)
	}
	top, _ := doc.(map[string]any)
	services, _ := top["services"].(map[string]any)
	networks, _ := top["networks"].(map[string]any)
	if len(services) == 0 {
		t.Fatal("docker/compose.yaml: no services")
	}
	return composeFile{services: services, networks: networks}
}

func (c composeFile) names() []string {
	var out []string
	for k := range c.services {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// match is the names of the services that match, sorted.
func (c composeFile) match(match func(string) bool) []string {
	var out []string
	for _, n := range c.names() {
		if match(n) {
			out = append(out, n)
		}
	}
	return out
}

// get is the value at the path, as written.
func (c composeFile) get(service string, path ...string) any {
	var v any = c.services[service]
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// str is the string at the path, interpolated with the defaults.
func (c composeFile) str(service string, path ...string) string {
	s, _ := c.get(service, path...).(string)
	return interpolateDefaults(s)
}

// list is the list at the path (a flow or block sequence; depends_on's
// long form gives its keys), interpolated.
func (c composeFile) list(service string, path ...string) []string {
	var out []string
	switch v := c.get(service, path...).(type) {
	case []any:
		for _, e := range v {
			out = append(out, interpolateDefaults(fmt.Sprint(e)))
		}
	case map[string]any:
		for k := range v {
			out = append(out, k)
		}
		slices.Sort(out)
	case string:
		out = append(out, interpolateDefaults(v))
	}
	return out
}

func (c composeFile) inProfile(service, profile string) bool {
	return slices.Contains(c.list(service, "profiles"), profile)
}

func (c composeFile) onHarness(service string) bool {
	return slices.Contains(c.list(service, "networks"), "harness")
}

func (c composeFile) isFreeSWITCH(service string) bool {
	return c.str(service, "image") == "eslapp/freeswitch:local"
}

func (c composeFile) isEslapp(service string) bool {
	return c.str(service, "image") == "eslapp/eslapp:local"
}

// subnet is the harness network's, by default.
func (c composeFile) subnet(t *testing.T) netip.Prefix {
	t.Helper()
	h, _ := c.networks["harness"].(map[string]any)
	ipam, _ := h["ipam"].(map[string]any)
	cfg := anyMaps(ipam["config"])
	if len(cfg) != 1 {
		t.Fatalf("compose.yaml: the harness network needs one ipam config, has %d", len(cfg))
	}
	raw, _ := cfg[0]["subnet"].(string)
	p, err := netip.ParsePrefix(interpolateDefaults(raw))
	if err != nil {
		t.Fatalf("compose.yaml: harness subnet %q: %v", raw, err)
	}
	return p
}

// fsEnv is a FreeSWITCH service's environment, with the defaults and a
// stand-in password.
func (c composeFile) fsEnv(t *testing.T, service string) map[string]string {
	t.Helper()
	env := map[string]string{}
	m, ok := c.get(service, "environment").(map[string]any)
	if !ok {
		t.Fatalf("compose.yaml: %s has no environment mapping", service)
	}
	for k, v := range m {
		env[k] = interpolateDefaults(fmt.Sprint(v))
	}
	env["FREESWITCH_ESL_PASSWORD"] = "docker-test"
	return env
}

// eslappService checks an eslapp service against its configuration file
// (mounted from docker/): mounted where its command reads it, and stopped
// only after its drain and hand-back.
func (c composeFile) eslappService(t *testing.T, service, file string, cfg map[string]any) {
	t.Helper()
	path := "/etc/eslapp/eslapp.toml" // the image's CMD
	if cmd := c.list(service, "command"); len(cmd) > 0 {
		i := slices.Index(cmd, "-config")
		if i < 0 || i+1 >= len(cmd) {
			t.Errorf("compose.yaml: %s's command %v names no -config", service, cmd)
			return
		}
		path = cmd[i+1]
	}
	if m := file + ":" + path + ":ro"; !slices.Contains(c.list(service, "volumes"), m) {
		t.Errorf("compose.yaml: %s must mount %s (its configuration, where it reads it)", service, m)
	}
	server, _ := cfg["server"].(map[string]any)
	drain, err := time.ParseDuration(fmt.Sprint(server["drain_timeout"]))
	if err != nil {
		t.Errorf("%s drain_timeout: %v", file, err)
	}
	raw := c.str(service, "stop_grace_period")
	if raw == "" {
		t.Errorf("compose.yaml: %s has no stop_grace_period (Docker's 10 s default kills a longer drain)", service)
	} else if grace, err := time.ParseDuration(raw); err != nil || grace < drain+5*time.Second {
		t.Errorf("compose.yaml: %s stop_grace_period %s must exceed drain_timeout %s by the hand-back's few seconds", service, raw, drain)
	}
}

var composeVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolateDefaults is compose's interpolation with no variable set:
// ${V:-default} and ${V-default} give the default, the rest nothing.
func interpolateDefaults(s string) string {
	s = strings.ReplaceAll(s, "$$", "\x00")
	s = composeVar.ReplaceAllStringFunc(s, func(m string) string {
		sub := composeVar.FindStringSubmatch(m)
		if sub[2] == ":-" || sub[2] == "-" {
			return sub[3]
		}
		return ""
	})
	return strings.ReplaceAll(s, "\x00", "$")
}

// parseYAMLSubset reads the YAML compose.yaml is written in: block
// mappings and sequences, flow sequences of scalars, plain and quoted
// scalars, comments, anchors, aliases and merge keys (<<). Anything else
// (block scalars, flow mappings, tabs) is an error, so that the test never
// reads the file differently from compose without saying so. Scalars stay
// strings.
func parseYAMLSubset(src string) (any, error) {
	p := &yamlParser{anchors: map[string]any{}}
	for i, raw := range strings.Split(src, "\n") {
		text := strings.TrimLeft(raw, " ")
		if strings.HasPrefix(text, "\t") {
			return nil, fmt.Errorf("line %d: a tab in the indentation", i+1)
		}
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		p.lines = append(p.lines, yamlLine{no: i + 1, indent: len(raw) - len(text), text: strings.TrimRight(text, " \r")})
	}
	v, next := p.block(0, 0)
	if p.err == nil && next < len(p.lines) {
		p.fail(p.lines[next].no, "unexpected indentation")
	}
	return v, p.err
}

type yamlLine struct {
	no, indent int
	text       string
}

type yamlParser struct {
	lines   []yamlLine
	anchors map[string]any
	err     error
}

func (p *yamlParser) fail(line int, format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("line %d: %s", line, fmt.Sprintf(format, args...))
	}
}

func isSeqItem(s string) bool { return s == "-" || strings.HasPrefix(s, "- ") }

// block reads the node starting at line i, indented at least indent.
func (p *yamlParser) block(i, indent int) (any, int) {
	if p.err != nil || i >= len(p.lines) || p.lines[i].indent < indent {
		return nil, i
	}
	if isSeqItem(p.lines[i].text) {
		return p.sequence(i, p.lines[i].indent)
	}
	return p.mapping(i, p.lines[i].indent)
}

func (p *yamlParser) sequence(i, indent int) ([]any, int) {
	var out []any
	for p.err == nil && i < len(p.lines) && p.lines[i].indent == indent && isSeqItem(p.lines[i].text) {
		ln := p.lines[i]
		rest := strings.TrimLeft(strings.TrimPrefix(ln.text, "-"), " ")
		switch {
		case rest == "":
			var v any
			v, i = p.block(i+1, indent+1)
			out = append(out, v)
		case yamlKey.MatchString(rest):
			// A mapping whose first key shares the dash's line.
			p.lines[i] = yamlLine{no: ln.no, indent: indent + len(ln.text) - len(rest), text: rest}
			var v any
			v, i = p.mapping(i, p.lines[i].indent)
			out = append(out, v)
		default:
			out = append(out, p.scalar(rest, ln.no))
			i++
		}
	}
	return out, i
}

var yamlKey = regexp.MustCompile(`^([A-Za-z0-9_.<-]+):(?: |$)`)

func (p *yamlParser) mapping(i, indent int) (map[string]any, int) {
	m := map[string]any{}
	var merged []map[string]any
	for p.err == nil && i < len(p.lines) && p.lines[i].indent == indent {
		ln := p.lines[i]
		k := yamlKey.FindStringSubmatch(ln.text)
		if k == nil {
			p.fail(ln.no, "want KEY: VALUE, have %q", ln.text)
			return m, i
		}
		key, rest := k[1], strings.TrimSpace(ln.text[len(k[0]):])
		i++
		anchor := ""
		if strings.HasPrefix(rest, "&") {
			anchor, rest, _ = strings.Cut(rest[1:], " ")
			rest = strings.TrimSpace(rest)
		}
		var v any
		switch {
		case rest == "" || strings.HasPrefix(rest, "#"):
			v, i = p.block(i, indent+1)
		case strings.HasPrefix(rest, "*"):
			a, ok := p.anchors[rest[1:]]
			if !ok {
				p.fail(ln.no, "no anchor %s", rest)
			}
			v = a
		default:
			v = p.scalar(rest, ln.no)
		}
		if anchor != "" {
			p.anchors[anchor] = v
		}
		if key == "<<" {
			mm, ok := v.(map[string]any)
			if !ok {
				p.fail(ln.no, "<< merges a mapping")
			}
			merged = append(merged, mm)
			continue
		}
		if _, dup := m[key]; dup {
			p.fail(ln.no, "key %s twice", key)
		}
		m[key] = v
	}
	// Keys written in the mapping win over merged ones.
	for _, mm := range merged {
		for k, v := range mm {
			if _, ok := m[k]; !ok {
				m[k] = v
			}
		}
	}
	return m, i
}

func (p *yamlParser) scalar(s string, line int) any {
	switch {
	case strings.HasPrefix(s, `"`):
		end := 1
		for ; end < len(s); end++ {
			if s[end] == '\\' {
				end++
			} else if s[end] == '"' {
				break
			}
		}
		if end >= len(s) {
			p.fail(line, "unterminated string")
			return ""
		}
		v, err := strconv.Unquote(s[:end+1])
		if err != nil {
			p.fail(line, "string %s: %v", s[:end+1], err)
		}
		p.rest(s[end+1:], line)
		return v
	case strings.HasPrefix(s, "'"):
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			if s[i] == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				p.rest(s[i+1:], line)
				return b.String()
			}
			b.WriteByte(s[i])
		}
		p.fail(line, "unterminated string")
		return ""
	case strings.HasPrefix(s, "["):
		end := strings.LastIndexByte(s, ']')
		if end < 0 {
			p.fail(line, "unterminated flow sequence")
			return nil
		}
		p.rest(s[end+1:], line)
		out := []any{}
		inner := strings.TrimSpace(s[1:end])
		for inner != "" {
			item := inner
			if strings.HasPrefix(inner, `"`) || strings.HasPrefix(inner, "'") {
				// The item is the quoted string; what follows must be a comma.
				q := inner[0]
				j := 1
				for ; j < len(inner) && inner[j] != q; j++ {
					if inner[j] == '\\' && q == '"' {
						j++
					}
				}
				item = inner[:min(j+1, len(inner))]
			} else if k := strings.IndexByte(inner, ','); k >= 0 {
				item = inner[:k]
			}
			out = append(out, p.scalar(strings.TrimSpace(item), line))
			inner = strings.TrimSpace(inner[len(item):])
			if inner != "" {
				if inner[0] != ',' {
					p.fail(line, "flow sequence: want a comma at %q", inner)
					return out
				}
				inner = strings.TrimSpace(inner[1:])
			}
		}
		return out
	case strings.HasPrefix(s, "{"), strings.HasPrefix(s, "|"), strings.HasPrefix(s, ">"), strings.HasPrefix(s, "!"):
		p.fail(line, "unsupported YAML: %s", s)
		return nil
	}
	if i := strings.Index(s, " #"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// rest is what follows a quoted scalar: nothing or a comment.
func (p *yamlParser) rest(s string, line int) {
	if s = strings.TrimSpace(s); s != "" && !strings.HasPrefix(s, "#") {
		p.fail(line, "unexpected %q after a string", s)
	}
}
