package itest

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// docker/eslapp.toml is the shipped demo configuration with the
// containers' paths and addresses: it must not drift from
// conf/eslapp.toml, it must agree with the FreeSWITCH configuration and the
// compose file, and eslapp check must accept it.
func TestDockerEslappConfig(t *testing.T) {
	root := repoRoot(t)
	decode := func(rel string) map[string]any {
		var m map[string]any
		if _, err := toml.DecodeFile(filepath.Join(root, rel), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	docker, shipped := decode("docker/eslapp.toml"), decode("conf/eslapp.toml")

	// Only [server], [socketless], [sounds] and [log] may differ.
	local := []string{"server", "socketless", "sounds", "log"}
	for _, k := range union(docker, shipped) {
		if !slices.Contains(local, k) && !reflect.DeepEqual(docker[k], shipped[k]) {
			t.Errorf("docker/eslapp.toml [%s] differs from conf/eslapp.toml: copy it over", k)
		}
	}

	server, _ := docker["server"].(map[string]any)
	sounds, _ := docker["sounds"].(map[string]any)
	listen, _ := server["listen"].(string)
	dir, _ := sounds["dir"].(string)

	// FreeSWITCH's socket application reaches eslapp in the shared network
	// namespace (the first address of its list, ESLAPP_SOCKETS: the one
	// eslapp of the compose file), and both play the prompts from the same
	// path.
	doc, _ := loadFSConf(t, map[string]string{})
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
	compose, err := os.ReadFile(filepath.Join(root, "docker", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if mount := "../sounds:" + dir + ":ro"; strings.Count(string(compose), mount) < 2 {
		t.Errorf("compose.yaml must mount %s into freeswitch and eslapp", mount)
	}
	// docker stop must wait out eslapp's drain and its hand-back.
	drain, _ := time.ParseDuration(server["drain_timeout"].(string))
	m := regexp.MustCompile(`(?m)^    stop_grace_period: (\S+)$`).FindStringSubmatch(string(compose))
	if m == nil {
		t.Error("compose.yaml: the eslapp service has no stop_grace_period (Docker's 10 s default kills a longer drain)")
	} else if grace, err := time.ParseDuration(m[1]); err != nil || grace < drain+5*time.Second {
		t.Errorf("compose.yaml: stop_grace_period %s must exceed drain_timeout %s by the hand-back's few seconds", m[1], drain)
	}
	// Socket-less calls: eslapp logs in with the password FreeSWITCH has.
	if n := strings.Count(string(compose), "FREESWITCH_ESL_PASSWORD: ${FREESWITCH_ESL_PASSWORD:?"); n != 2 {
		t.Errorf("compose.yaml must give FREESWITCH_ESL_PASSWORD to freeswitch and eslapp (found %d)", n)
	}

	if testing.Short() {
		t.Skip("-short: eslapp check of docker/eslapp.toml not run")
	}
	// eslapp check, with the sounds dir pointed at this checkout's copy.
	text, err := os.ReadFile(filepath.Join(root, "docker", "eslapp.toml"))
	if err != nil {
		t.Fatal(err)
	}
	line := `dir = "` + dir + `"`
	if strings.Count(string(text), line) != 1 {
		t.Fatalf("docker/eslapp.toml: expected one line %s", line)
	}
	cfg := filepath.Join(t.TempDir(), "eslapp.toml")
	patched := strings.Replace(string(text), line, `dir = "`+filepath.Join(root, "sounds")+`"`, 1)
	if err := os.WriteFile(cfg, []byte(patched), 0o644); err != nil {
		t.Fatal(err)
	}
	check := exec.Command(eslappBinary(t), "check", "-config", cfg)
	check.Env = append(os.Environ(), "FREESWITCH_ESL_PASSWORD=docker-test") // compose passes it
	out, err := check.CombinedOutput()
	if err != nil {
		t.Errorf("eslapp check docker/eslapp.toml: %v\n%s", err, out)
	}
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
