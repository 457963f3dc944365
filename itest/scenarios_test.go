package itest

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The caller scenarios parse and run: each calls a SIPp stand-in for
// FreeSWITCH (sipp/selftest_uas.xml) on loopback, which answers and then
// takes the caller's BYE or hangs up itself, and both SIPp processes must
// exit 0. This checks the scenarios, not FreeSWITCH or eslapp: the
// end-to-end tests (build tag integration) do that.
func TestScenariosAgainstLocalUAS(t *testing.T) {
	sipp, why := sippPath()
	if sipp == "" {
		t.Skip(why + ": the scenarios in itest/sipp were not run")
	}
	cases := []struct {
		name     string
		scenario string
		args     []string
		needs    string
		uasArgs  []string // the stand-in's BYE headers
		wantFail bool     // the caller must fail its call
	}{
		{scenario: "uac_wait_bye.xml", args: []string{"-key", "ani", "1235550100", "-m", "1"}},
		{scenario: "uac_hangup.xml", args: []string{"-key", "ani", "1235550100", "-d", "300", "-m", "1"}},
		{scenario: "uac_dtmf.xml", args: []string{"-key", "ani", "1235550100", "-d", "300", "-m", "1"}, needs: dtmfPcap},
		{scenario: "uac_load.xml", args: []string{"-r", "10", "-l", "3", "-m", "3"}},
		// uac_load.xml counts a call only when the agent hung up after
		// OnSuccess: another branch fails it.
		{name: "uac_load.xml/other_branch_fails", scenario: "uac_load.xml", args: []string{"-r", "10", "-l", "1", "-m", "1"},
			uasArgs: []string{"-key", "agent_ext", "1000", "-key", "wfe_branch", "OnError"}, wantFail: true},
		{name: "uac_load.xml/no_agent_fails", scenario: "uac_load.xml", args: []string{"-r", "10", "-l", "1", "-m", "1"},
			uasArgs: []string{"-key", "agent_ext", "none", "-key", "wfe_branch", "OnSuccess"}, wantFail: true},
		// uac_load_any.xml takes any branch: the fault tests read it from
		// FreeSWITCH.
		{name: "uac_load_any.xml/other_branch", scenario: "uac_load_any.xml", args: []string{"-r", "10", "-l", "1", "-m", "1"},
			uasArgs: []string{"-key", "agent_ext", "none", "-key", "wfe_branch", "OnError"}},
	}
	for _, c := range cases {
		if c.name == "" {
			c.name = c.scenario
		}
		if c.uasArgs == nil {
			c.uasArgs = []string{"-key", "agent_ext", "1000", "-key", "wfe_branch", "OnSuccess"}
		}
		t.Run(c.name, func(t *testing.T) {
			if c.needs != "" {
				if _, err := os.Stat(c.needs); err != nil {
					t.Skipf("%s is missing (SIPp without Debian's pcaps): %v", c.needs, err)
				}
			}
			calls := c.args[len(c.args)-1] // -m N is last
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			dir := t.TempDir()
			port := freeUDPPort(t, "127.0.0.1")
			uas := sippRun{scenario: "selftest_uas.xml", localIP: "127.0.0.1", port: port,
				args: append([]string{"-m", calls}, c.uasArgs...), timeout: 30 * time.Second}.start(ctx, t, sipp, dir)
			time.Sleep(300 * time.Millisecond) // let the stand-in bind its port
			uac := sippRun{scenario: c.scenario, remote: "127.0.0.1:" + strconv.Itoa(port), localIP: "127.0.0.1",
				port: freeUDPPort(t, "127.0.0.1"), args: append([]string{"-s", "7000"}, c.args...),
				timeout: 30 * time.Second}.start(ctx, t, sipp, dir)
			switch r := uac(); {
			case c.wantFail && r.Err == nil:
				t.Errorf("caller: every call succeeded, want a failed call")
			case c.wantFail:
				t.Logf("caller failed, as it must: %s", strings.TrimSpace(r.Errors))
			case !c.wantFail && r.Err != nil:
				t.Errorf("caller: %v", r)
			}
			// A caller that fails its call leaves the stand-in's BYE
			// unanswered: the stand-in then fails too.
			if r := uas(); r.Err != nil && !c.wantFail {
				t.Errorf("stand-in: %v", r)
			}
		})
	}
}
