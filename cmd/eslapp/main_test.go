package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/eslapp/eslapp/conf"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut, runHooks{})
	return code, out.String(), errOut.String()
}

func TestCheckShippedConfig(t *testing.T) {
	t.Chdir(filepath.Join("..", "..")) // [sounds] dir is relative to the working directory
	t.Setenv("FREESWITCH_ESL_PASSWORD", "test")
	code, out, errOut := runCmd(t, "check", "-config", conf.DefaultPath)
	if code != 0 {
		t.Fatalf("check conf/eslapp.toml: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(out, "ok") {
		t.Errorf("stdout = %q", out)
	}
}

func TestEmbeddedDefaultIsShippedConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", conf.DefaultPath))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != conf.Default {
		t.Fatal("embedded default differs from conf/eslapp.toml")
	}
}

// Without -config and without conf/eslapp.toml in the working directory,
// eslapp runs on the configuration embedded in it.
func TestCheckFallsBackToEmbedded(t *testing.T) {
	sounds, err := filepath.Abs(filepath.Join("..", "..", "sounds"))
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	t.Setenv("FREESWITCH_ESL_PASSWORD", "test")
	if err := os.Symlink(sounds, "sounds"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "check")
	if code != 0 || !strings.Contains(out, "embedded") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// An explicit -config must exist.
	if code, _, errOut := runCmd(t, "check", "-config", "missing.toml"); code == 0 || !strings.Contains(errOut, "missing.toml") {
		t.Fatalf("missing explicit config: exit %d, %q", code, errOut)
	}
}

func TestCheckReportsEveryError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	writeFile(t, path, `# line 1
[server]
listen = "localhost:80:80"
drain_timeout = "soon"
colour = "blue"
command_timeout = "5s"
[prompts]
hold_music = ""
`)
	code, _, errOut := runCmd(t, "check", "-config", path)
	if code == 0 {
		t.Fatal("check accepted a bad configuration")
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	want := []string{
		path + `:3: server.listen: "localhost:80:80" is not host:port`,
		path + `:4: server.drain_timeout: "soon" is not a positive duration`,
		path + `:5: server.colour: unknown key`,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(lines), len(want), errOut)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("error %d:\n got %s\nwant %s...", i, lines[i], want[i])
		}
	}
}

func TestCheckDecodeErrorHasLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	writeFile(t, path, "[server]\nmax_calls = \"many\"\n")
	code, _, errOut := runCmd(t, "check", "-config", path)
	if code == 0 || !regexp.MustCompile(regexp.QuoteMeta(path)+`:2: server.max_calls: `).MatchString(errOut) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	writeFile(t, path, "[server\n")
	code, _, errOut = runCmd(t, "check", "-config", path)
	if code == 0 || !regexp.MustCompile("^"+regexp.QuoteMeta(path)+`:\d+: `).MatchString(errOut) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := runCmd(t, "version"); code != 0 || !strings.HasPrefix(out, "eslapp ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, errOut := runCmd(t, "frobnicate"); code != 2 || !strings.Contains(errOut, "usage") {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Every configuration the project shows is valid: the files in conf/ and
// every TOML block in the README.
func TestShownConfigsAreValid(t *testing.T) {
	t.Chdir(filepath.Join("..", ".."))
	t.Setenv("ACME_TOKEN", "example") // the README's example secret
	t.Setenv("FREESWITCH_ESL_PASSWORD", "example")
	t.Setenv("FN_KEY", "example")
	t.Setenv("FS1_ESL_PASSWORD", "example") // Running several
	t.Setenv("FS2_ESL_PASSWORD", "example")
	files, _ := filepath.Glob(filepath.Join("conf", "*.toml"))
	for _, f := range files {
		_, b, err := loadConfig(f, nil)
		if err != nil {
			t.Errorf("%v", err)
		}
		b.close()
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) == 0 {
		t.Fatal("README has no TOML block")
	}
	for i, b := range blocks {
		_, built, err := parseConfig(fmt.Sprintf("README.md block %d", i+1), b[1], ".", nil)
		if err != nil {
			t.Errorf("%v", err)
		}
		built.close()
	}
}

// A header that references a missing secret is an error at its line; the
// secret values that do resolve never appear in check's output.
func TestCheckSecrets(t *testing.T) {
	t.Setenv("ESLAPP_TEST_TOKEN", "s3cr3t-value-123")
	path := filepath.Join(t.TempDir(), "eslapp.toml")
	writeFile(t, path, `[prompts]
hold_music = ""

[integrations.good]
base_url = "https://crm.example.com/api"
headers = { Authorization = "Bearer ${env:ESLAPP_TEST_TOKEN}" }
[integrations.good.workflows.wf]

[integrations.bad]
base_url = "https://crm.example.com/api"
headers = { Authorization = "Bearer ${env:ESLAPP_TEST_MISSING_TOKEN}" }
[integrations.bad.workflows.wf]
`)
	code, out, errOut := runCmd(t, "check", "-config", path)
	if code == 0 {
		t.Fatalf("check passed: %s", out)
	}
	if !strings.HasPrefix(errOut, path+":11: integrations.bad.headers.Authorization: ") || !strings.Contains(errOut, "ESLAPP_TEST_MISSING_TOKEN") {
		t.Errorf("stderr: %s", errOut)
	}
	if strings.Contains(out+errOut, "s3cr3t-value-123") {
		t.Errorf("check printed a secret:\n%s%s", out, errOut)
	}
}
