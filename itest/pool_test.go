//go:build integration

package itest

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestPool runs two FreeSWITCH processes from the kit and two eslapps,
// each connected to both, and checks what a pool promises under faults,
// reading every call's outcome back from FreeSWITCH (its branches, its
// prompts), the CRM (requests per call) and the eslapps' logs (who ran
// it). The scenarios live in poolfaults.go; these are short runs, and
// itest/pool runs them long and prints figures for BENCHMARKS.md.
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

	runFaultTests(t, []faultTest{
		{"ExactlyOnce", func() FaultResult { return p.ExactlyOnce(ctx, FaultRun{CPS: 3, Calls: 24}) }},
		{"NegativeControl", func() FaultResult { return p.NegativeControl(ctx, FaultRun{CPS: 2, Calls: 2}) }},
		{"KillOne", func() FaultResult { return p.KillOne(ctx, FaultRun{CPS: 2, Calls: 20}, 4*time.Second) }},
		{"StallOne", func() FaultResult { return p.StallOne(ctx, FaultRun{CPS: 3, Calls: 30}, 3*time.Second, 6*time.Second) }},
		{"RollingRestart", func() FaultResult { return p.RollingRestart(ctx, FaultRun{CPS: 2, Calls: 30}, 2*time.Second) }},
		{"FreeSWITCHRestart", func() FaultResult { return p.FreeSWITCHRestart(ctx, FaultRun{CPS: 2, Calls: 24}, 3*time.Second) }},
	})
}

// faultTest is a fault scenario run as a subtest.
type faultTest struct {
	name string
	run  func() FaultResult
}

// runFaultTests runs the scenarios in order as subtests: each fails on
// what its scenario found wrong and logs its summary.
func runFaultTests(t *testing.T, tests []faultTest) {
	for _, s := range tests {
		t.Run(s.name, func(t *testing.T) {
			r := s.run()
			for _, v := range r.Violations {
				t.Error(v)
			}
			t.Log(r.Summary())
		})
	}
}
