//go:build integration

package itest

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestKamailio puts conf/kamailio/kamailio.cfg in front of a pool (two
// FreeSWITCH processes from the kit, two eslapps connected to both) and
// places every call at Kamailio with SIPp: calls spread over both
// FreeSWITCH hosts; a FreeSWITCH stopped with SIGTERM and with SIGKILL
// leaves the rotation within the probe interval plus the reply timeout,
// no call placed meanwhile fails but those it held, and it comes back
// when started again; a FreeSWITCH drained with fsctl pause inbound
// under load loses no call; the held-socket extension keeps working when
// an eslapp is killed or drains; and what a caller gets when an eslapp
// stands still (SIGSTOP) behind a held socket, with and without a net in
// the dialplan. The scenarios live in kamailio.go; itest/README.md, "The
// pool behind Kamailio", has the figures. One pool and one Kamailio serve
// every subtest, in order: each starts from both hosts in the rotation.
func TestKamailio(t *testing.T) {
	bin := os.Getenv("ESLAPP_FREESWITCH")
	kamailio, kamcmd, kamWhy := KamailioPath()
	sipp, sippWhy := SIPpPath()
	for _, missing := range []struct {
		yes bool
		why string
	}{
		{bin == "", "the pool needs a FreeSWITCH binary: set ESLAPP_FREESWITCH (the kit's install prints it); see itest/README.md"},
		{kamailio == "", kamWhy + " (.ci/install-kamailio)"},
		{sipp == "", sippWhy},
	} {
		if missing.yes {
			if os.Getenv("CI") != "" {
				t.Fatal("CI: " + missing.why)
			}
			t.Skip(missing.why)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()
	if out := os.Getenv("ESLAPP_ITEST_OUT"); out != "" {
		dir = filepath.Join(out, "kamailio")
	}
	p, err := StartPool(ctx, PoolOptions{FreeSWITCH: bin, Eslapp: eslappBinary(t), Dir: filepath.Join(dir, "pool"), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	var hosts []string
	for _, h := range p.Hosts {
		hosts = append(hosts, h.FS().SIP)
	}
	started := time.Now()
	k, err := StartKamailio(ctx, KamailioOptions{Binary: kamailio, Kamcmd: kamcmd, Dir: filepath.Join(dir, "kamailio"), FreeSWITCH: hosts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Stop) // before the pool: Kamailio stops probing first
	t.Logf("Kamailio: pid %d, SIP %s, control %s, log %s", k.cmd.Process.Pid, k.SIP, k.Ctl, k.LogPath)
	kp, err := NewKamailioPool(p, k)
	if err != nil {
		t.Fatal(err)
	}
	if err := kp.WaitAllActive(ctx); err != nil {
		t.Fatal(err)
	}
	// The hosts start inactive (flags 9) and join at their first answered
	// probe: within a probe interval and a reply timeout.
	if d := time.Since(started); d > k.ProbeInterval+k.ReplyTimeout+2*time.Second {
		t.Errorf("both FreeSWITCH hosts in the rotation %v after Kamailio started, want within %v", d, k.ProbeInterval+k.ReplyTimeout)
	} else {
		t.Logf("both FreeSWITCH hosts in the rotation %v after Kamailio started", d.Round(10*time.Millisecond))
	}

	runFaultTests(t, []faultTest{
		{"Spread", func() FaultResult { return kp.Spread(ctx, FaultRun{CPS: 5, Calls: 16}) }},
		{"FreeSWITCHStopped/SIGTERM", func() FaultResult {
			return kp.FreeSWITCHStopped(ctx, FaultRun{CPS: 4, Calls: 32}, 1, syscall.SIGTERM, 3*time.Second)
		}},
		{"FreeSWITCHStopped/SIGKILL", func() FaultResult {
			return kp.FreeSWITCHStopped(ctx, FaultRun{CPS: 4, Calls: 32}, 0, syscall.SIGKILL, 3*time.Second)
		}},
		{"HeldSocketEslappKilled", func() FaultResult {
			return kp.HeldSocketEslappKilled(ctx, FaultRun{CPS: 4, Calls: 28}, 3*time.Second)
		}},
		{"HeldSocketEslappDrained", func() FaultResult {
			return kp.HeldSocketEslappDrained(ctx, FaultRun{CPS: 4, Calls: 28}, 3*time.Second)
		}},
		{"FreeSWITCHPaused", func() FaultResult {
			return kp.FreeSWITCHPaused(ctx, FaultRun{CPS: 4, Calls: 20}, 1, 1500*time.Millisecond)
		}},
		{"HungEslapp", func() FaultResult { return kp.HungEslapp(ctx, 0) }},
	})
}
