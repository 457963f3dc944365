package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/esl/esltest"
)

// [socketless] problems are named by file, line and key; the password must
// be a reference, and its value never shows.
func TestCheckSocketlessConfig(t *testing.T) {
	t.Setenv("ESLAPP_TEST_ESL_PASSWORD", "s3cr3t-esl")
	path := filepath.Join(t.TempDir(), "eslapp.toml")
	writeFile(t, path, `[prompts]
hold_music = ""
[socketless]
enabled = true
address = "no-port"
password = "ClueCon"
subclass = "eslapp call"
probe_interval = "often"
`)
	code, out, errOut := runCmd(t, "check", "-config", path)
	if code == 0 {
		t.Fatalf("check passed: %s", out)
	}
	want := []string{
		path + `:5: socketless.address: "no-port" is not host:port`,
		path + `:6: socketless.password: is written in the file`,
		path + `:7: socketless.subclass: "eslapp call" is not an event subclass`,
		path + `:8: socketless.probe_interval: "often" is not a positive duration`,
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got:\n%s", errOut)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("error %d:\n got %s\nwant %s...", i, lines[i], want[i])
		}
	}
	writeFile(t, path, "[prompts]\nhold_music = \"\"\n[socketless]\nenabled = true\npassword = \"${env:ESLAPP_TEST_ESL_MISSING}\"\n")
	if code, _, errOut := runCmd(t, "check", "-config", path); code == 0 || !strings.HasPrefix(errOut, path+":5: socketless.password: ${env:ESLAPP_TEST_ESL_MISSING}: environment variable") {
		t.Errorf("missing env: exit %d: %s", code, errOut)
	}
}

// check says whether FreeSWITCH's event socket takes eslapp's login.
func TestCheckReportsSocketlessConnection(t *testing.T) {
	t.Setenv("ESLAPP_TEST_ESL_PASSWORD", "s3cr3t-esl")
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	addr, err := fs.ListenInbound("s3cr3t-esl")
	if err != nil {
		t.Fatal(err)
	}
	defer fs.StopInbound()
	path := filepath.Join(t.TempDir(), "eslapp.toml")
	writeFile(t, path, "[prompts]\nhold_music = \"\"\n[socketless]\nenabled = true\naddress = \""+addr+"\"\npassword = \"${env:ESLAPP_TEST_ESL_PASSWORD}\"\n")
	code, out, errOut := runCmd(t, "check", "-config", path)
	if code != 0 || !strings.Contains(out, "socket-less: FreeSWITCH's event socket at "+addr+": logged in") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
	t.Setenv("ESLAPP_TEST_ESL_PASSWORD", "wrong")
	code, out, _ = runCmd(t, "check", "-config", path)
	if code != 0 || !strings.Contains(out, "not usable: authentication refused") || strings.Contains(out, "s3cr3t") {
		t.Errorf("wrong password: exit %d\n%s", code, out)
	}
}

// eslapp serve with [socketless]: a call the dialplan hands over without a
// socket runs and goes back to the dialplan's branch; SIGTERM stops it.
func TestServeSocketlessCall(t *testing.T) {
	t.Setenv("ESLAPP_TEST_ESL_PASSWORD", "pw")
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	addr, err := fs.ListenInbound("pw")
	if err != nil {
		t.Fatal(err)
	}
	defer fs.StopInbound()
	path := filepath.Join(t.TempDir(), "eslapp.toml")
	writeFile(t, path, `[server]
listen = "127.0.0.1:0"
drain_timeout = "5s"
[prompts]
hold_music = ""
[socketless]
enabled = true
address = "`+addr+`"
password = "${env:ESLAPP_TEST_ESL_PASSWORD}"
[integrations.demo]
kind = "fixture"
[[integrations.demo.workflows.lookup.rules]]
delay_ms = 200
body = '{"found":true}'
`)
	srv := startServing(t, path)
	waitSubscribed(t, fs, srv)
	c, err := fs.Socketless(context.Background(), esltest.SocketlessOptions{
		CallOptions: esltest.CallOptions{CallerIDNumber: "1235550100", Vars: map[string]string{
			"wfe_config_id": "demo", "wfe_workflow_id": "lookup", "wfe_payload": `{"phone":"{ANI}"}`,
			"wfe_sequence": `"hold.wav"`, "wfe_context": "crm_branches", "wfe_branch": "OnError",
		}},
		Net: 10 * time.Second, NetDest: "OnError XML crm_branches",
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("call not over:\n%s", srv.stderr.String())
	}
	out := c.Outcome()
	if out.TransferDest != "OnSuccess XML crm_branches" || out.NetFired {
		t.Errorf("outcome %+v\n%s", out, srv.stderr.String())
	}
	if v, _ := c.Var("workflowResultOutput"); v != `{"found":true}` {
		t.Errorf("result %q", v)
	}
	srv.stop(t)
}

// waitSubscribed waits until eslapp's inbound connection to fs hears
// socket-less calls.
func waitSubscribed(t *testing.T, fs *esltest.FreeSWITCH, srv *serving) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !fs.InboundSubscribed(esl.DefaultStartSubclass); {
		if time.Now().After(deadline) {
			t.Fatalf("eslapp did not subscribe on the inbound connection:\n%s", srv.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// [server] shared_secret must be a reference to a value a dialplan can
// pass verbatim; its problems are named by file, line and key, and its
// value never shows.
func TestCheckSharedSecretConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "eslapp.toml")
	for _, tc := range []struct {
		env, value, want string
	}{
		{"", `"plain-text-secret-value"`, `:3: server.shared_secret: is written in the file`},
		{"tiny-9x", `"${env:ESLAPP_TEST_SECRET}"`, `:3: server.shared_secret: is shorter than 16 characters`},
		{"0123456789abcdef$x", `"${env:ESLAPP_TEST_SECRET}"`, `:3: server.shared_secret: holds a character`},
		{"", `"${env:ESLAPP_TEST_SECRET_MISSING}"`, `:3: server.shared_secret: ${env:ESLAPP_TEST_SECRET_MISSING}: environment variable`},
	} {
		t.Setenv("ESLAPP_TEST_SECRET", tc.env)
		writeFile(t, path, "[server]\nlisten = \"127.0.0.1:0\"\nshared_secret = "+tc.value+"\n[prompts]\nhold_music = \"\"\n")
		code, _, errOut := runCmd(t, "check", "-config", path)
		if code == 0 || !strings.HasPrefix(errOut, path+tc.want) {
			t.Errorf("%s: exit %d: %s", tc.value, code, errOut)
		}
		if tc.env != "" && strings.Contains(errOut, tc.env) {
			t.Errorf("the secret shows: %s", errOut)
		}
	}
	t.Setenv("ESLAPP_TEST_SECRET", "0123456789abcdef0123")
	writeFile(t, path, "[server]\nshared_secret = \"${env:ESLAPP_TEST_SECRET}\"\nshared_secret_var = \"bad name\"\n[prompts]\nhold_music = \"\"\n")
	if code, _, errOut := runCmd(t, "check", "-config", path); code == 0 || !strings.HasPrefix(errOut, path+`:3: server.shared_secret_var: "bad name" is not a channel variable name`) {
		t.Errorf("bad var: exit %d: %s", code, errOut)
	}
	writeFile(t, path, "[server]\nshared_secret = \"${env:ESLAPP_TEST_SECRET}\"\n[prompts]\nhold_music = \"\"\n")
	if code, _, errOut := runCmd(t, "check", "-config", path); code != 0 {
		t.Errorf("good secret: exit %d: %s", code, errOut)
	}
}

// One eslapp, two FreeSWITCH hosts ([[socketless.hosts]]): each host's
// calls run over that host's connection and go back to its dialplan;
// metrics and the log name the host; check logs in to each.
func TestServeSeveralFreeSWITCHHosts(t *testing.T) {
	t.Setenv("ESLAPP_TEST_ESL_A", "pw-a")
	t.Setenv("ESLAPP_TEST_ESL_B", "pw-b")
	var hosts []*esltest.FreeSWITCH
	var addrs []string
	for _, pw := range []string{"pw-a", "pw-b"} {
		fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
		addr, err := fs.ListenInbound(pw)
		if err != nil {
			t.Fatal(err)
		}
		defer fs.StopInbound()
		hosts, addrs = append(hosts, fs), append(addrs, addr)
	}
	path := filepath.Join(t.TempDir(), "eslapp.toml")
	metrics := freeAddr(t)
	writeFile(t, path, `[server]
listen = "127.0.0.1:0"
metrics_listen = "`+metrics+`"
drain_timeout = "5s"
[prompts]
hold_music = ""
[socketless]
enabled = true
[[socketless.hosts]]
address = "`+addrs[0]+`"
password = "${env:ESLAPP_TEST_ESL_A}"
[[socketless.hosts]]
address = "`+addrs[1]+`"
password = "${env:ESLAPP_TEST_ESL_B}"
[integrations.demo]
kind = "fixture"
[[integrations.demo.workflows.lookup.rules]]
body = '{"found":true}'
`)
	code, out, errOut := runCmd(t, "check", "-config", path)
	if code != 0 || strings.Count(out, ": logged in") != 2 {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
	srv := startServing(t, path)
	for _, fs := range hosts {
		waitSubscribed(t, fs, srv)
	}
	for i, fs := range hosts {
		c, err := fs.Socketless(context.Background(), esltest.SocketlessOptions{
			CallOptions: esltest.CallOptions{Vars: map[string]string{
				"wfe_config_id": "demo", "wfe_workflow_id": "lookup", "wfe_context": "crm_branches", "wfe_branch": "OnError",
			}},
			Pick: 5 * time.Second, PickDest: "OnError XML crm_branches", Music: "local_stream://eslapp_hold",
		})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("host %d: call not over:\n%s", i, srv.stderr.String())
		}
		if out := c.Outcome(); out.TransferDest != "OnSuccess XML crm_branches" || out.NetFired || len(out.Transfers) != 1 {
			t.Errorf("host %d: outcome %+v", i, out)
		}
	}
	body := scrape(t, metrics)
	for _, addr := range addrs {
		for _, want := range []string{
			`eslapp_socketless_connected{freeswitch="` + addr + `"} 1`,
			`eslapp_socketless_claims_total{freeswitch="` + addr + `",result="won"} 1`,
			`eslapp_socketless_calls_taken_total{freeswitch="` + addr + `"} 1`,
			`eslapp_socketless_peers_claiming{freeswitch="` + addr + `"} 0`, // alone on each
			`eslapp_socketless_calls_left_lagging_total{freeswitch="` + addr + `"} 0`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	}
	srv.stop(t)
}

// [[socketless.hosts]] and address/password do not go together; a host is
// named once; claim_stagger is a duration; wait_music cannot change what
// FreeSWITCH's filter means.
func TestCheckSocketlessHosts(t *testing.T) {
	t.Setenv("ESLAPP_TEST_ESL_PASSWORD", "pw")
	path := filepath.Join(t.TempDir(), "eslapp.toml")
	for _, tc := range []struct{ body, want string }{
		{"address = \"127.0.0.1:8021\"\n[[socketless.hosts]]\naddress = \"127.0.0.1:8022\"\npassword = \"${env:ESLAPP_TEST_ESL_PASSWORD}\"\n",
			"socketless.hosts: name the hosts either with address and password or with [[socketless.hosts]], not both"},
		{"[[socketless.hosts]]\naddress = \"127.0.0.1:8022\"\npassword = \"${env:ESLAPP_TEST_ESL_PASSWORD}\"\n[[socketless.hosts]]\naddress = \"127.0.0.1:8022\"\npassword = \"${env:ESLAPP_TEST_ESL_PASSWORD}\"\n",
			"socketless.hosts.1.address: 127.0.0.1:8022 is named twice"},
		{"[[socketless.hosts]]\naddress = \"127.0.0.1:8022\"\npassword = \"written\"\n",
			"socketless.hosts.0.password: is written in the file"},
		{"claim_stagger = \"soon\"\npassword = \"${env:ESLAPP_TEST_ESL_PASSWORD}\"\n",
			`socketless.claim_stagger: "soon" is not a duration of 0 or more`},
		{"wait_music = \"-local_stream://x\"\npassword = \"${env:ESLAPP_TEST_ESL_PASSWORD}\"\n",
			`socketless.wait_music: "-local_stream://x" cannot be matched by FreeSWITCH's event filter`},
		{"wait_music = \"/^local\"\npassword = \"${env:ESLAPP_TEST_ESL_PASSWORD}\"\n",
			`socketless.wait_music: "/^local" cannot be matched`},
	} {
		writeFile(t, path, "[prompts]\nhold_music = \"\"\n[socketless]\nenabled = true\n"+tc.body)
		code, out, errOut := runCmd(t, "check", "-config", path)
		if code == 0 || !strings.Contains(errOut, tc.want) || !strings.HasPrefix(errOut, path+":") {
			t.Errorf("exit %d, want %q:\n%s%s", code, tc.want, out, errOut)
		}
	}
}
