//go:build integration

package itest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestPool runs two FreeSWITCH processes from the kit and two eslapps,
// each connected to both, and checks what a pool promises under faults,
// reading every call's outcome back from FreeSWITCH (its branches, its
// prompts), the CRM (requests per call) and the eslapps' logs (who ran
// it). Short runs here; itest/pool runs them long and reports figures.
func TestPool(t *testing.T) {
	bin := os.Getenv("ESLAPP_FREESWITCH")
	if bin == "" {
		const why = "the pool needs a FreeSWITCH binary: set ESLAPP_FREESWITCH (the kit's install prints it); see itest/README.md"
		if os.Getenv("CI") != "" {
			t.Fatal("CI: " + why)
		}
		t.Skip(why)
	}
	if sipp, why := SIPpPath(); sipp == "" {
		t.Skip(why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	p, err := StartPool(ctx, PoolOptions{FreeSWITCH: bin, Dir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	s := &poolScenario{p: p, ctx: ctx}

	t.Run("ExactlyOnce", s.exactlyOnce)
	t.Run("NegativeControl", s.negativeControl)
	t.Run("KillOne", s.killOne)
	t.Run("StallOne", s.stallOne)
	t.Run("RollingRestart", s.rollingRestart)
	t.Run("RestartFreeSWITCH", s.restartFreeSWITCH)
}

type poolScenario struct {
	p   *Pool
	ctx context.Context
}

// load places n calls at cps on every FreeSWITCH to each extension, runs
// during while they are placed, and waits until every call is over.
func (s *poolScenario) load(t *testing.T, exts []string, cps float64, n int, during func()) []PoolCall {
	t.Helper()
	s.p.Forget()
	var waits []func() SIPpResult
	for h := range s.p.Hosts {
		for _, ext := range exts {
			waits = append(waits, s.p.Load(s.ctx, h, ext, cps, n))
		}
	}
	if during != nil {
		during()
	}
	for _, w := range waits {
		if r := w(); r.Err != nil && r.Successful+r.Failed == 0 {
			t.Errorf("%v", r)
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Minute)
	defer cancel()
	if err := s.p.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the last hangup events
	calls := s.p.Calls()
	want := len(s.p.Hosts) * len(exts) * n
	if len(calls) < want {
		t.Errorf("%d calls recorded, %d placed", len(calls), want)
	}
	return calls
}

// byExt keeps the calls to extensions with prefix.
func byExt(calls []PoolCall, ext string) []PoolCall {
	var out []PoolCall
	for _, c := range calls {
		if c.Ext == ext {
			out = append(out, c)
		}
	}
	return out
}

func describe(c PoolCall) string {
	return fmt.Sprintf("call %s on FreeSWITCH %d to %s: branch %q, elapsed %q, branches %v, prompts %d, agent %v, cause %s",
		c.UUID, c.Host, c.Ext, c.Branch, c.Elapsed, c.Branches, c.Prompts, c.Agent, c.Cause)
}

// exactlyOnce: every socket-less call runs in exactly one eslapp, asks
// the CRM once, hears its prompt once, and reaches the agent; the two
// eslapps share the calls.
func (s *poolScenario) exactlyOnce(t *testing.T) {
	calls := s.load(t, []string{"7010"}, 3, 24, nil)
	handlers := s.p.Handlers()
	ran := map[int]int{}
	for _, c := range calls {
		h := handlers[c.UUID]
		if len(h) != 1 || s.p.CRM.Requests(c.UUID) != 1 || c.Prompts != 1 || !c.Agent || len(c.Branches) != 1 {
			t.Errorf("%s; run by eslapps %v, CRM requests %d", describe(c), h, s.p.CRM.Requests(c.UUID))
			continue
		}
		ran[h[0]]++
	}
	t.Logf("calls per eslapp: %v", ran)
	for i := range s.p.Apps {
		if share := float64(ran[i]) / float64(len(calls)); share < 0.3 || share > 0.7 {
			t.Errorf("eslapp %d took %.0f%% of the calls, want 30-70%%", i, 100*share)
		}
	}
}

// negativeControl: an older dialplan's calls (7018, no pick-up net) are
// run by both eslapps: the checks above can see double handling.
func (s *poolScenario) negativeControl(t *testing.T) {
	calls := s.load(t, []string{"7018"}, 2, 2, nil)
	handlers := s.p.Handlers()
	twice := 0
	for _, c := range calls {
		if len(handlers[c.UUID]) == 2 && s.p.CRM.Requests(c.UUID) == 2 {
			twice++
		}
	}
	if twice == 0 {
		t.Errorf("no call was handled twice without the claim: the exactly-once check could not fail")
	}
	t.Logf("%d of %d calls handled by both eslapps without the claim", twice, len(calls))
}

// killOne: eslapp 0 is killed (SIGKILL) mid-load. The calls it held reach
// OnError through their nets within the step's bound plus 2 s; every
// later call is served by eslapp 1; every call ends on a branch, moved
// once. Held socket too: its new calls go to the next address.
func (s *poolScenario) killOne(t *testing.T) {
	var killedAt time.Time
	calls := s.load(t, []string{"7010", "7000"}, 2, 20, func() {
		time.Sleep(4 * time.Second)
		killedAt = time.Now()
		s.p.KillEslapp(0)
	})
	defer func() {
		if err := s.p.StartEslapp(s.ctx, 0); err != nil {
			t.Fatal(err)
		}
	}()
	handlers := s.p.Handlers()
	bound := 3*time.Second + time.Second + 2*time.Second // timeout, leaving, the net's margin
	var netted []time.Duration
	for _, c := range calls {
		switch {
		case !c.Routed():
			t.Errorf("not on a branch: %s", describe(c))
		case len(c.Branches) > 1:
			t.Errorf("moved twice: %s", describe(c))
		case c.ByNet():
			// A call eslapp 0 held when it died.
			netted = append(netted, c.Branched.Sub(killedAt))
			if c.Ext == "7010" && !c.Announced.IsZero() && c.Branched.Sub(c.Announced) > bound+time.Second {
				t.Errorf("routed %v after its announcement (bound %v): %s", c.Branched.Sub(c.Announced), bound, describe(c))
			}
		case c.Branch != "OnSuccess" || !c.Agent:
			t.Errorf("%s", describe(c))
		}
		if !c.Announced.IsZero() && c.Announced.After(killedAt.Add(500*time.Millisecond)) {
			if h := handlers[c.UUID]; len(h) != 1 || h[0] != 1 {
				t.Errorf("a call after the kill ran in %v: %s", h, describe(c))
			}
		}
	}
	t.Logf("%d calls; %d held by the killed eslapp were routed by their nets, %v after the kill", len(calls), len(netted), netted)
}

// stallOne: eslapp 0 stands still (SIGSTOP) for 6 s, then goes on. Calls
// announced meanwhile are taken by eslapp 1 within 1 s; the resumed
// eslapp runs no call it did not win, restarts no prompt and moves no
// call a net moved; no call is lost.
func (s *poolScenario) stallOne(t *testing.T) {
	var from, to time.Time
	calls := s.load(t, []string{"7010"}, 3, 30, func() {
		time.Sleep(3 * time.Second)
		from = time.Now()
		if err := s.p.PauseEslapp(0, 6*time.Second); err != nil {
			t.Error(err)
		}
		to = time.Now()
	})
	handlers := s.p.Handlers()
	var waits []time.Duration
	netted := 0
	for _, c := range calls {
		if c.ByNet() {
			netted++ // eslapp 0 held it past its bound: its net fired
		}
		h := handlers[c.UUID]
		switch {
		case !c.Routed():
			t.Errorf("not on a branch: %s", describe(c))
		case len(c.Branches) > 1 || c.Prompts > 1 || s.p.CRM.Requests(c.UUID) > 1:
			t.Errorf("taken twice: %s; run by %v, CRM requests %d", describe(c), h, s.p.CRM.Requests(c.UUID))
		}
		if c.Announced.After(from) && c.Announced.Before(to.Add(-time.Second)) {
			if len(h) != 1 || h[0] != 1 {
				t.Errorf("announced while eslapp 0 stood still, run by %v: %s", h, describe(c))
			}
			if c.Prompted.IsZero() {
				t.Errorf("no prompt: %s", describe(c))
				continue
			}
			waits = append(waits, c.Prompted.Sub(c.Announced))
			if w := c.Prompted.Sub(c.Announced); w > time.Second {
				t.Errorf("taken %v after its announcement: %s", w, describe(c))
			}
		}
	}
	t.Logf("%d calls; %d announced during the stall, prompted after %v; %d of eslapp 0's calls routed by their nets while it stood still (it saw %v nets fired)",
		len(calls), len(waits), waits, netted, s.p.Metric(0, "eslapp_socketless_nets_fired_total"))
}

// rollingRestart: both eslapps restarted one after the other (SIGTERM,
// start, then the other) under load, in both modes: no call goes to
// OnError.
func (s *poolScenario) rollingRestart(t *testing.T) {
	calls := s.load(t, []string{"7010", "7000"}, 2, 30, func() {
		for i := range s.p.Apps {
			time.Sleep(2 * time.Second)
			if err := s.p.RestartEslapp(s.ctx, i); err != nil {
				t.Error(err)
			}
		}
	})
	for _, c := range calls {
		if c.Branch != "OnSuccess" || !c.Agent || len(c.Branches) != 1 {
			t.Errorf("%s", describe(c))
		}
	}
	t.Logf("%d calls, all on OnSuccess", len(calls))
}

// restartFreeSWITCH: FreeSWITCH 1 restarts mid-load. The eslapps
// reconnect to it; FreeSWITCH 0's calls are not touched; the calls that
// died with FreeSWITCH 1 are counted apart; its calls after the restart
// run.
func (s *poolScenario) restartFreeSWITCH(t *testing.T) {
	s.p.Forget()
	wait0 := s.p.Load(s.ctx, 0, "7010", 2, 30)
	wait1 := s.p.Load(s.ctx, 1, "7010", 2, 8)
	time.Sleep(3 * time.Second)
	restarted := time.Now()
	if err := s.p.RestartFreeSWITCH(s.ctx, 1); err != nil {
		t.Fatal(err)
	}
	wait1() // its calls died with it
	for i := range s.p.Apps {
		wctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
		err := s.p.Apps[i].Proc().WaitSocketless(wctx)
		cancel()
		if err != nil {
			t.Fatalf("eslapp %d did not reconnect: %v", i, err)
		}
	}
	after := s.p.Load(s.ctx, 1, "7010", 2, 8)
	wait0()
	after()
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	if err := s.p.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	died := 0
	for _, c := range s.p.Calls() {
		switch {
		case c.Host == 0 && (c.Branch != "OnSuccess" || !c.Agent):
			t.Errorf("FreeSWITCH 0's call: %s", describe(c))
		case c.Host == 1 && c.Announced.Before(restarted):
			died++
		case c.Host == 1 && (c.Branch != "OnSuccess" || !c.Agent):
			t.Errorf("FreeSWITCH 1's call after the restart: %s", describe(c))
		}
	}
	t.Logf("%d calls died with the restarted FreeSWITCH", died)
	for i := range s.p.Apps {
		prefix := `eslapp_socketless_connects_total{freeswitch="` + s.p.Hosts[1].FS().ESL + `"}`
		if n := s.p.Metric(i, prefix); n < 2 {
			t.Errorf("eslapp %d connected %v times to the restarted FreeSWITCH", i, n)
		}
	}
}
