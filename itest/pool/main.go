// Command pool runs the pool's fault scenarios long: two FreeSWITCH
// processes from the kit and two eslapps connected to both (itest.Pool),
// and a load of SIPp calls on every FreeSWITCH with a fault in the middle
// of it — kill -9 one eslapp, SIGSTOP one, a rolling restart, a
// FreeSWITCH restart — read back call by call. It prints each scenario's
// figures (calls per eslapp, how long the nets and the peers took) and
// what it found wrong; it exits 1 when a scenario found anything wrong.
// TestPool runs the same scenarios short in CI.
//
//	go run ./itest/pool -freeswitch /opt/freeswitch/bin/freeswitch -cps 10 -calls 300
//	go run ./itest/pool -freeswitch /opt/freeswitch/bin/freeswitch -run kill,stall -stall 8s
//
// See itest/README.md and BENCHMARKS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/eslapp/eslapp/itest"
)

var scenarioNames = []string{"once", "control", "kill", "stall", "rolling", "fsrestart"}

func main() {
	var (
		freeswitch = flag.String("freeswitch", os.Getenv("ESLAPP_FREESWITCH"), "the freeswitch binary (default $ESLAPP_FREESWITCH)")
		eslappBin  = flag.String("eslapp", "", "the eslapp binary (default: built from this tree)")
		dir        = flag.String("dir", "", "where the pool writes (default: a new temporary directory, kept)")
		cps        = flag.Float64("cps", 5, "calls per second to each extension on each FreeSWITCH")
		calls      = flag.Int("calls", 100, "calls to each extension on each FreeSWITCH, per scenario")
		run        = flag.String("run", strings.Join(scenarioNames, ","), "scenarios to run, comma-separated: "+strings.Join(scenarioNames, ", "))
		faultAfter = flag.Duration("after", 5*time.Second, "how long into the load the fault comes")
		stall      = flag.Duration("stall", 6*time.Second, "how long SIGSTOP holds the eslapp")
		gap        = flag.Duration("gap", 3*time.Second, "the pause before each eslapp's restart in the rolling restart")
		crmDelay   = flag.Duration("crm-delay", time.Second, "how long the CRM takes to answer")
		timeout    = flag.Duration("step-timeout", 3*time.Second, "the step's timeout (the integration's timeout_ms)")
		stagger    = flag.String("claim-stagger", "", "the eslapps' [socketless] claim_stagger (default: eslapp's)")
	)
	flag.Parse()
	if *freeswitch == "" {
		fmt.Fprintln(os.Stderr, "pool: -freeswitch (or $ESLAPP_FREESWITCH) names the freeswitch binary; see itest/README.md")
		os.Exit(2)
	}
	want := strings.Split(*run, ",")
	for _, w := range want {
		if !slices.Contains(scenarioNames, w) {
			fmt.Fprintf(os.Stderr, "pool: unknown scenario %q; known: %s\n", w, strings.Join(scenarioNames, ", "))
			os.Exit(2)
		}
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "eslapp-pool-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "pool:", err)
			os.Exit(1)
		}
		*dir = d
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := itest.StartPool(ctx, itest.PoolOptions{
		FreeSWITCH: *freeswitch, Eslapp: *eslappBin, Dir: *dir,
		CRMDelay: *crmDelay, StepTimeout: *timeout, ClaimStagger: *stagger,
		Logf: func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pool:", err)
		os.Exit(1)
	}
	defer p.Stop()
	fmt.Printf("pool in %s: %d FreeSWITCH, %d eslapps; %d calls per extension per FreeSWITCH at %g cps; CRM answers after %v, step timeout %v\n",
		*dir, len(p.Hosts), len(p.Apps), *calls, *cps, *crmDelay, *timeout)

	load := itest.FaultRun{CPS: *cps, Calls: *calls}
	scenarios := map[string]func() itest.FaultResult{
		"once": func() itest.FaultResult { return p.ExactlyOnce(ctx, load) },
		"control": func() itest.FaultResult {
			return p.NegativeControl(ctx, itest.FaultRun{CPS: *cps, Calls: min(*calls, 10)})
		},
		"kill":    func() itest.FaultResult { return p.KillOne(ctx, load, *faultAfter) },
		"stall":   func() itest.FaultResult { return p.StallOne(ctx, load, *faultAfter, *stall) },
		"rolling": func() itest.FaultResult { return p.RollingRestart(ctx, load, *gap) },
		"fsrestart": func() itest.FaultResult {
			return p.FreeSWITCHRestart(ctx, load, *faultAfter)
		},
	}
	if itest.RunFaults(ctx, os.Stdout, want, scenarios, 1) {
		os.Exit(1)
	}
}
