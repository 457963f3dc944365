// Command kamailio runs the scenarios of the pool behind Kamailio long:
// conf/kamailio/kamailio.cfg in front of two FreeSWITCH processes from the
// kit, two eslapps connected to both (itest.KamailioPool), SIPp placing
// every call at Kamailio. It prints each scenario's figures — how the
// calls spread, how long a stopped FreeSWITCH took to leave the rotation
// and to come back, what the held socket did when an eslapp was killed,
// drained or stood still — and what it found wrong; it exits 1 when a
// scenario found anything wrong. -repeat runs the list several times, for
// ranges. TestKamailio runs the same scenarios short in CI (but pause).
//
//	go run ./itest/kamailio -freeswitch /opt/freeswitch/bin/freeswitch
//	go run ./itest/kamailio -run term,kill -repeat 5
//	go run ./itest/kamailio -run hung -hold 30s
//
// See itest/README.md, "The pool behind Kamailio".
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/eslapp/eslapp/itest"
)

var scenarioNames = []string{"spread", "term", "kill", "pause", "eslappkill", "drain", "hung"}

func main() {
	var (
		freeswitch = flag.String("freeswitch", os.Getenv("ESLAPP_FREESWITCH"), "the freeswitch binary (default $ESLAPP_FREESWITCH)")
		eslappBin  = flag.String("eslapp", "", "the eslapp binary (default: built from this tree)")
		dir        = flag.String("dir", "", "where the pool and Kamailio write (default: a new temporary directory, kept)")
		cps        = flag.Float64("cps", 4, "calls per second placed at Kamailio")
		calls      = flag.Int("calls", 40, "calls per load")
		run        = flag.String("run", strings.Join(scenarioNames, ","), "scenarios to run, comma-separated: "+strings.Join(scenarioNames, ", "))
		repeat     = flag.Int("repeat", 1, "how many times to run the list")
		faultAfter = flag.Duration("after", 3*time.Second, "how long into the load the fault comes")
		hold       = flag.Duration("hold", 0, "how long the eslapp stands still in hung (0: until its calls' nets fired; FreeSWITCH gives up its connections after 25 s)")
		probe      = flag.Duration("probe-interval", 2*time.Second, "Kamailio's PROBE_INTERVAL (whole seconds)")
		reply      = flag.Duration("reply-timeout", time.Second, "Kamailio's REPLY_TIMEOUT")
	)
	flag.Parse()
	if *freeswitch == "" {
		fmt.Fprintln(os.Stderr, "kamailio: -freeswitch (or $ESLAPP_FREESWITCH) names the freeswitch binary; see itest/README.md")
		os.Exit(2)
	}
	kamailio, kamcmd, why := itest.KamailioPath()
	if kamailio == "" {
		fmt.Fprintln(os.Stderr, "kamailio:", why)
		os.Exit(2)
	}
	want := strings.Split(*run, ",")
	for _, w := range want {
		if !slices.Contains(scenarioNames, w) {
			fmt.Fprintf(os.Stderr, "kamailio: unknown scenario %q; known: %s\n", w, strings.Join(scenarioNames, ", "))
			os.Exit(2)
		}
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "eslapp-kamailio-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "kamailio:", err)
			os.Exit(1)
		}
		*dir = d
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "kamailio:", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	p, err := itest.StartPool(ctx, itest.PoolOptions{FreeSWITCH: *freeswitch, Eslapp: *eslappBin, Dir: filepath.Join(*dir, "pool"), Logf: logf})
	if err != nil {
		fail(err)
	}
	defer p.Stop()
	var hosts []string
	for _, h := range p.Hosts {
		hosts = append(hosts, h.FS().SIP)
	}
	k, err := itest.StartKamailio(ctx, itest.KamailioOptions{Binary: kamailio, Kamcmd: kamcmd, Dir: filepath.Join(*dir, "kamailio"),
		FreeSWITCH: hosts, ProbeInterval: *probe, ReplyTimeout: *reply})
	if err != nil {
		fail(err)
	}
	defer k.Stop()
	kp, err := itest.NewKamailioPool(p, k)
	if err != nil {
		fail(err)
	}
	if err := kp.WaitAllActive(ctx); err != nil {
		fail(err)
	}
	fmt.Printf("Kamailio %s in front of %s in %s; probe interval %v, reply timeout %v; %d calls per load at %g cps\n",
		k.SIP, strings.Join(hosts, ", "), *dir, *probe, *reply, *calls, *cps)

	load := itest.FaultRun{CPS: *cps, Calls: *calls}
	scenarios := map[string]func() itest.FaultResult{
		"spread": func() itest.FaultResult { return kp.Spread(ctx, load) },
		"term": func() itest.FaultResult {
			return kp.FreeSWITCHStopped(ctx, load, 1, syscall.SIGTERM, *faultAfter)
		},
		"kill": func() itest.FaultResult {
			return kp.FreeSWITCHStopped(ctx, load, 0, syscall.SIGKILL, *faultAfter)
		},
		"pause": func() itest.FaultResult {
			return kp.FreeSWITCHPaused(ctx, load, 1, *faultAfter)
		},
		"eslappkill": func() itest.FaultResult { return kp.HeldSocketEslappKilled(ctx, load, *faultAfter) },
		"drain":      func() itest.FaultResult { return kp.HeldSocketEslappDrained(ctx, load, *faultAfter) },
		"hung":       func() itest.FaultResult { return kp.HungEslapp(ctx, *hold) },
	}
	if itest.RunFaults(ctx, os.Stdout, want, scenarios, *repeat) {
		os.Exit(1)
	}
}
