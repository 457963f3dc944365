package itest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// The pool's fault scenarios, each a load on every FreeSWITCH of the pool
// with a fault in the middle, read back call by call. Each returns what it
// measured and what it found wrong (Violations): TestPool fails on a
// violation, itest/pool prints both for BENCHMARKS.md.

// FaultRun is how big a scenario's load is.
type FaultRun struct {
	CPS   float64 // calls per second to each extension on each FreeSWITCH
	Calls int     // calls to each extension on each FreeSWITCH
}

// FaultResult is what one scenario saw.
type FaultResult struct {
	Name      string
	Calls     int
	PerEslapp map[int]int // calls run, by eslapp
	OnSuccess int         // calls that reached the agent on OnSuccess
	ByNet     int         // calls that reached OnError without eslapp's outputs: a net moved them, or their socket closed under them
	ByNetExt  map[string]int
	Died      int             // calls that died with a FreeSWITCH restart
	Twice     int             // calls run by two eslapps (the negative control's)
	NetAfter  []time.Duration // socket-less calls a net routed: their branch after the fault
	// CutAfter: held-socket calls whose socket the fault closed: their
	// branch after the fault (FreeSWITCH finishes the prompt it was given,
	// then the dialplan goes on to wfe_branch, OnError).
	CutAfter   []time.Duration
	TakenAfter []time.Duration // announcement to the prompt, for calls announced during a fault
	Notes      []string
	Violations []string
}

// RunFaults runs the named scenarios in order, repeat times over, and
// prints each one's summary, how long it took and what it found wrong to
// w: the long-form tools' loop (itest/pool, itest/kamailio). It reports
// whether any scenario found something wrong, and stops when ctx is done.
func RunFaults(ctx context.Context, w io.Writer, names []string, scenarios map[string]func() FaultResult, repeat int) (wrong bool) {
	for range repeat {
		for _, name := range names {
			if ctx.Err() != nil {
				return wrong
			}
			start := time.Now()
			r := scenarios[name]()
			fmt.Fprintf(w, "%s (%v)\n", r.Summary(), time.Since(start).Round(time.Second))
			for _, v := range r.Violations {
				wrong = true
				fmt.Fprintf(w, "  WRONG: %s\n", v)
			}
		}
	}
	return wrong
}

func (r *FaultResult) violate(format string, args ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

// Describe is a call in a line, for reports.
func (c PoolCall) Describe() string {
	return fmt.Sprintf("call %s on FreeSWITCH %d to %s: branch %q, elapsed %q, branches %v, prompts %d, agent %v, cause %s",
		c.UUID, c.Host, c.Ext, c.Branch, c.Elapsed, c.Branches, c.Prompts, c.Agent, c.Cause)
}

// stepBound is how long the pool's step may hold a call: the CRM's
// timeout and a second for leaving; a net adds 2 s.
func (p *Pool) stepBound() time.Duration { return p.opts.StepTimeout + time.Second }

// load places calls to each extension on every FreeSWITCH, runs during
// while they are placed, and waits until every call is over.
func (p *Pool) load(ctx context.Context, r *FaultResult, exts []string, run FaultRun, during func()) []PoolCall {
	p.Forget()
	var waits []func() SIPpResult
	for h := range p.Hosts {
		for _, ext := range exts {
			waits = append(waits, p.Load(ctx, h, ext, run.CPS, run.Calls))
		}
	}
	if during != nil {
		during()
	}
	for _, w := range waits {
		if res := w(); res.Err != nil && res.Successful+res.Failed == 0 {
			r.violate("%v", res)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := p.WaitIdle(wctx); err != nil {
		r.violate("%v", err)
	}
	time.Sleep(300 * time.Millisecond) // the last hangup events
	calls := p.Calls()
	r.Calls = len(calls)
	if want := len(p.Hosts) * len(exts) * run.Calls; len(calls) < want {
		r.violate("%d calls recorded, %d placed", len(calls), want)
	}
	r.PerEslapp = map[int]int{}
	handlers := p.Handlers()
	for _, c := range calls {
		if h := handlers[c.UUID]; len(h) == 1 {
			r.PerEslapp[h[0]]++
		}
		if c.Branch == "OnSuccess" && c.Agent {
			r.OnSuccess++
		}
		if c.ByNet() {
			r.ByNet++
			if r.ByNetExt == nil {
				r.ByNetExt = map[string]int{}
			}
			r.ByNetExt[c.Ext]++
		}
	}
	return calls
}

// ExactlyOnce: every socket-less call runs in exactly one eslapp, asks the
// CRM once, hears its prompt once, and reaches the agent; the eslapps
// share the calls, each 30 to 70 %.
func (p *Pool) ExactlyOnce(ctx context.Context, run FaultRun) FaultResult {
	r := FaultResult{Name: "exactly once"}
	calls := p.load(ctx, &r, []string{"7010"}, run, nil)
	handlers := p.Handlers()
	for _, c := range calls {
		h := handlers[c.UUID]
		if len(h) != 1 || p.CRM.Requests(c.UUID) != 1 || c.Prompts != 1 || !c.Agent || len(c.Branches) != 1 {
			r.violate("%s; run by eslapps %v, CRM requests %d", c.Describe(), h, p.CRM.Requests(c.UUID))
		}
	}
	for i := range p.Apps {
		if share := float64(r.PerEslapp[i]) / float64(max(len(calls), 1)); share < 0.3 || share > 0.7 {
			r.violate("eslapp %d took %.0f%% of the calls, want 30-70%%", i, 100*share)
		}
	}
	return r
}

// NegativeControl: an older dialplan's calls (7018, no pick-up net) run in
// every eslapp: the check of ExactlyOnce sees double handling, so it can
// fail.
func (p *Pool) NegativeControl(ctx context.Context, run FaultRun) FaultResult {
	r := FaultResult{Name: "negative control (no claim)"}
	calls := p.load(ctx, &r, []string{"7018"}, run, nil)
	handlers := p.Handlers()
	for _, c := range calls {
		if len(handlers[c.UUID]) == len(p.Apps) && p.CRM.Requests(c.UUID) == len(p.Apps) {
			r.Twice++
		}
	}
	if r.Twice == 0 {
		r.violate("no call was handled twice without the claim: the exactly-once check could not fail")
	}
	return r
}

// KillOne: eslapp 0 is killed (SIGKILL) mid-load, socket-less and held
// socket. The calls it held reach OnError through their nets within the
// step's bound plus 2 s; every later call runs in another eslapp; every
// call ends on a branch, moved once.
func (p *Pool) KillOne(ctx context.Context, run FaultRun, after time.Duration) FaultResult {
	r := FaultResult{Name: "kill -9 one eslapp"}
	var killedAt time.Time
	calls := p.load(ctx, &r, []string{"7010", "7000"}, run, func() {
		time.Sleep(after)
		killedAt = time.Now()
		p.KillEslapp(0)
	})
	if err := p.StartEslapp(ctx, 0); err != nil {
		r.violate("restarting eslapp 0: %v", err)
	}
	handlers := p.Handlers()
	limit := p.stepBound() + 2*time.Second + time.Second // the net's margin, and the scheduler's half-second tick with the apology's start
	for _, c := range calls {
		switch {
		case !c.Routed():
			r.violate("not on a branch: %s", c.Describe())
		case len(c.Branches) > 1:
			r.violate("moved twice: %s", c.Describe())
		case c.ByNet() && c.Ext == "7000":
			r.CutAfter = append(r.CutAfter, c.Branched.Sub(killedAt))
		case c.ByNet():
			r.NetAfter = append(r.NetAfter, c.Branched.Sub(killedAt))
			if !c.Announced.IsZero() && c.Branched.Sub(c.Announced) > limit {
				r.violate("routed %v after its announcement (limit %v): %s", c.Branched.Sub(c.Announced), limit, c.Describe())
			}
		case c.Branch != "OnSuccess" || !c.Agent:
			r.violate("%s", c.Describe())
		}
		if !c.Announced.IsZero() && c.Announced.After(killedAt.Add(500*time.Millisecond)) {
			if h := handlers[c.UUID]; len(h) != 1 || h[0] == 0 {
				r.violate("a call after the kill ran in %v: %s", h, c.Describe())
			}
		}
	}
	return r
}

// StallOne: eslapp 0 stands still (SIGSTOP) for d, then goes on. Calls
// announced meanwhile are taken by another eslapp within 1 s; the resumed
// eslapp runs no call it did not win, restarts no prompt and moves no
// call a net moved; no call is lost.
func (p *Pool) StallOne(ctx context.Context, run FaultRun, after, d time.Duration) FaultResult {
	r := FaultResult{Name: fmt.Sprintf("SIGSTOP one eslapp %v", d)}
	var from, to time.Time
	calls := p.load(ctx, &r, []string{"7010"}, run, func() {
		time.Sleep(after)
		from = time.Now()
		if err := p.PauseEslapp(0, d); err != nil {
			r.violate("%v", err)
		}
		to = time.Now()
	})
	handlers := p.Handlers()
	for _, c := range calls {
		h := handlers[c.UUID]
		switch {
		case !c.Routed():
			r.violate("not on a branch: %s", c.Describe())
		case len(c.Branches) > 1 || c.Prompts > 1 || p.CRM.Requests(c.UUID) > 1:
			r.violate("taken twice: %s; run by %v, CRM requests %d", c.Describe(), h, p.CRM.Requests(c.UUID))
		}
		if c.Announced.After(from) && c.Announced.Before(to.Add(-time.Second)) {
			if len(h) != 1 || h[0] == 0 {
				r.violate("announced while eslapp 0 stood still, run by %v: %s", h, c.Describe())
			}
			if c.Prompted.IsZero() {
				r.violate("no prompt: %s", c.Describe())
				continue
			}
			w := c.Prompted.Sub(c.Announced)
			r.TakenAfter = append(r.TakenAfter, w)
			if w > time.Second {
				r.violate("taken %v after its announcement: %s", w, c.Describe())
			}
		}
	}
	r.Notes = append(r.Notes, fmt.Sprintf("eslapp 0 found %v nets fired when it went on", p.Metric(0, "eslapp_socketless_nets_fired_total")))
	return r
}

// RollingRestart: every eslapp restarted one after the other (SIGTERM,
// start, then the next) under load, in both modes: no call goes to
// OnError.
func (p *Pool) RollingRestart(ctx context.Context, run FaultRun, gap time.Duration) FaultResult {
	r := FaultResult{Name: "rolling restart"}
	calls := p.load(ctx, &r, []string{"7010", "7000"}, run, func() {
		for i := range p.Apps {
			time.Sleep(gap)
			if err := p.RestartEslapp(ctx, i); err != nil {
				r.violate("%v", err)
			}
		}
	})
	for _, c := range calls {
		if c.Branch != "OnSuccess" || !c.Agent || len(c.Branches) != 1 {
			r.violate("%s", c.Describe())
		}
	}
	return r
}

// FreeSWITCHRestart: FreeSWITCH 1 restarts mid-load. The eslapps
// reconnect to it; FreeSWITCH 0's calls are not touched; the calls that
// died with FreeSWITCH 1 are counted apart; its calls after the restart
// run.
func (p *Pool) FreeSWITCHRestart(ctx context.Context, run FaultRun, after time.Duration) FaultResult {
	r := FaultResult{Name: "FreeSWITCH restart"}
	p.Forget()
	wait0 := p.Load(ctx, 0, "7010", run.CPS, run.Calls)
	wait1 := p.Load(ctx, 1, "7010", run.CPS, run.Calls/3)
	time.Sleep(after)
	restarted := time.Now()
	if err := p.RestartFreeSWITCH(ctx, 1); err != nil {
		r.violate("%v", err)
		return r
	}
	ready := time.Since(restarted)
	wait1() // its calls died with it
	for i := range p.Apps {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := p.Apps[i].Proc().WaitSocketless(wctx)
		cancel()
		if err != nil {
			r.violate("eslapp %d did not reconnect: %v", i, err)
		}
	}
	reconnected := time.Since(restarted)
	again := p.Load(ctx, 1, "7010", run.CPS, run.Calls/3)
	wait0()
	again()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.WaitIdle(wctx); err != nil {
		r.violate("%v", err)
	}
	time.Sleep(300 * time.Millisecond)
	calls := p.Calls()
	r.Calls = len(calls)
	for _, c := range calls {
		switch {
		case c.Host == 0 && (c.Branch != "OnSuccess" || !c.Agent):
			r.violate("FreeSWITCH 0's call: %s", c.Describe())
		case c.Host == 1 && c.Announced.Before(restarted):
			r.Died++
		case c.Host == 1 && (c.Branch != "OnSuccess" || !c.Agent):
			r.violate("FreeSWITCH 1's call after the restart: %s", c.Describe())
		default:
			r.OnSuccess++
		}
	}
	for i := range p.Apps {
		prefix := `eslapp_socketless_connects_total{freeswitch="` + p.Hosts[1].FS().ESL + `"}`
		if n := p.Metric(i, prefix); n < 2 {
			r.violate("eslapp %d connected %v times to the restarted FreeSWITCH", i, n)
		}
	}
	r.Notes = append(r.Notes, fmt.Sprintf("FreeSWITCH ready again %v after the restart began, both eslapps connected %v after that",
		ready.Round(100*time.Millisecond), (reconnected-ready).Round(100*time.Millisecond)))
	return r
}

// Summary is the result in a line.
func (r FaultResult) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d calls, %d on OnSuccess at the agent", r.Name, r.Calls, r.OnSuccess)
	if len(r.PerEslapp) > 0 {
		keys := make([]int, 0, len(r.PerEslapp))
		for k := range r.PerEslapp {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("eslapp %d: %d", k, r.PerEslapp[k]))
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	if r.ByNet > 0 {
		fmt.Fprintf(&b, "; %d on OnError without eslapp's outputs %v", r.ByNet, r.ByNetExt)
	}
	if len(r.NetAfter) > 0 {
		fmt.Fprintf(&b, "; %d socket-less calls routed by their nets %v to %v after the fault", len(r.NetAfter), slices.Min(r.NetAfter).Round(10*time.Millisecond), slices.Max(r.NetAfter).Round(10*time.Millisecond))
	}
	if len(r.CutAfter) > 0 {
		fmt.Fprintf(&b, "; %d held-socket calls cut, on their branch %v to %v after the fault", len(r.CutAfter),
			slices.Min(r.CutAfter).Round(10*time.Millisecond), slices.Max(r.CutAfter).Round(10*time.Millisecond))
	}
	if len(r.TakenAfter) > 0 {
		fmt.Fprintf(&b, "; %d announced during the fault, prompted %v to %v after the announcement", len(r.TakenAfter),
			slices.Min(r.TakenAfter).Round(time.Millisecond), slices.Max(r.TakenAfter).Round(time.Millisecond))
	}
	if r.Died > 0 {
		fmt.Fprintf(&b, "; %d died with their FreeSWITCH", r.Died)
	}
	if r.Twice > 0 {
		fmt.Fprintf(&b, "; %d run by every eslapp", r.Twice)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "; %s", n)
	}
	return b.String()
}
