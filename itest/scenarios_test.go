package itest

import (
	"context"
	"os"
	"strconv"
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
		scenario string
		args     []string
		needs    string
	}{
		{scenario: "uac_wait_bye.xml", args: []string{"-key", "ani", "1235550100", "-m", "1"}},
		{scenario: "uac_hangup.xml", args: []string{"-key", "ani", "1235550100", "-d", "300", "-m", "1"}},
		{scenario: "uac_dtmf.xml", args: []string{"-key", "ani", "1235550100", "-d", "300", "-m", "1"}, needs: dtmfPcap},
		{scenario: "uac_load.xml", args: []string{"-r", "10", "-l", "3", "-m", "3"}},
	}
	for _, c := range cases {
		t.Run(c.scenario, func(t *testing.T) {
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
				args: []string{"-m", calls}, timeout: 30 * time.Second}.start(ctx, t, sipp, dir)
			time.Sleep(300 * time.Millisecond) // let the stand-in bind its port
			uac := sippRun{scenario: c.scenario, remote: "127.0.0.1:" + strconv.Itoa(port), localIP: "127.0.0.1",
				port: freeUDPPort(t, "127.0.0.1"), args: append([]string{"-s", "7000"}, c.args...),
				timeout: 30 * time.Second}.start(ctx, t, sipp, dir)
			if r := uac(); r.err != nil {
				t.Errorf("caller: %v", r)
			}
			if r := uas(); r.err != nil {
				t.Errorf("stand-in: %v", r)
			}
		})
	}
}
