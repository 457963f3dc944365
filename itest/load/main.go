// Command load drives eslapp with fake FreeSWITCH calls (esl/esltest) and a
// CRM with a fault mix, checks that every call ended on exactly one branch
// or cleanly after a hangup, and reports rates, latencies and eslapp's
// resources. eslapp runs as a child process, so its memory, CPU and
// goroutines are its own.
//
//	go run ./itest/load -calls 3000 -concurrency 100 -faults full -check
//	go run ./itest/load -calls 10000 -hold -faults none          # memory per call in the step
//	go run ./itest/load -duration 60s -cps 200 -faults none      # sustained rate, decision latency
//	go run ./itest/load -calls 5000 -faults full -storm 50000 -storm-silent 80 -max-connecting 64 -check
//
// -storm adds a connect-and-close storm on eslapp's listener while the
// calls run (plain closes and resets, and silent connections that fill
// eslapp's max_connecting bound); -check then also requires eslapp alive,
// every call that got through connect unharmed, and eslapp's goroutines and
// descriptors back to their baseline.
//
// See itest/README.md and BENCHMARKS.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/eslapp/eslapp/esl/esltest"
)

type options struct {
	calls       int
	duration    time.Duration
	concurrency int
	cps         float64
	faults      string
	hangups     float64
	drops       float64
	crmDelay    time.Duration
	stepTimeout time.Duration
	media       time.Duration
	hold        bool
	eslapp      string
	jsonOut     string
	check       bool
	http2       string
	eslappEnv   string
	cpuProfile  string
	heapProfile string
	storm       stormOptions
	maxConnect  int
}

func main() {
	var o options
	flag.IntVar(&o.calls, "calls", 1000, "calls to place (0: until -duration)")
	flag.DurationVar(&o.duration, "duration", 0, "place calls for this long (with -calls 0)")
	flag.IntVar(&o.concurrency, "concurrency", 100, "calls in progress at most")
	flag.Float64Var(&o.cps, "cps", 0, "new calls per second (0: as fast as -concurrency allows)")
	flag.StringVar(&o.faults, "faults", "full", "CRM fault mix: none or full")
	flag.Float64Var(&o.hangups, "hangups", -1, "share of callers hanging up during the step (default 0.07 with -faults full, else 0)")
	flag.Float64Var(&o.drops, "drops", -1, "share of sockets dropped without notice (default 0.03 with -faults full, else 0)")
	flag.DurationVar(&o.crmDelay, "crm-delay", 50*time.Millisecond, "CRM answer time for successful requests")
	flag.DurationVar(&o.stepTimeout, "step-timeout", time.Second, "the step timeout (integration timeout_ms)")
	flag.DurationVar(&o.media, "media", 10*time.Second, "length of every prompt file")
	flag.BoolVar(&o.hold, "hold", false, "hold every call in the step (prompt playing, CRM pending) until all are placed, then measure memory and hang up")
	flag.StringVar(&o.eslapp, "eslapp", "", "eslapp binary (default: go build ./cmd/eslapp)")
	flag.StringVar(&o.jsonOut, "json", "", "also write the report to this file as JSON")
	flag.StringVar(&o.eslappEnv, "eslapp-env", "", "extra environment for eslapp, e.g. GOMAXPROCS=1 (comma separated)")
	flag.StringVar(&o.http2, "http2", "h2c", "eslapp's HTTP/2 to the CRM: h2c or off (HTTP/1.1)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "save a 10 s CPU profile of eslapp, taken from the second second of the run")
	flag.StringVar(&o.heapProfile, "heapprofile", "", "save eslapp's heap profile at the peak (with -hold: while the calls are held)")
	flag.BoolVar(&o.check, "check", false, "exit 1 if a call was lost, eslapp died, or its goroutines or descriptors did not come back to their baseline")
	flag.IntVar(&o.storm.connects, "storm", 0, "connect-and-close connections to make on eslapp's listener during the run")
	flag.IntVar(&o.storm.workers, "storm-workers", 6, "parallel storm clients")
	flag.IntVar(&o.storm.silent, "storm-silent", 0, "silent connections held open (they fill eslapp's max_connecting)")
	flag.DurationVar(&o.storm.hold, "storm-hold", 2*time.Second, "how long a silent connection stays, then as long away")
	flag.IntVar(&o.maxConnect, "max-connecting", 0, "eslapp's [server] max_connecting (0: its default)")
	flag.Parse()
	rep, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(2)
	}
	rep.print(os.Stdout)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		_ = os.WriteFile(o.jsonOut, b, 0o644)
	}
	if o.check && (rep.Lost > 0 || !rep.GoroutinesBack || !rep.FDsBack || rep.EslappDied != "") {
		fmt.Println("CHECK FAILED")
		os.Exit(1)
	}
}

// report is what a run measured.
type report struct {
	Options        string
	Machine        string
	Calls          int
	Lost           int
	LostExamples   []string
	Outcomes       map[string]int
	CRMKinds       map[string]int
	Elapsed        time.Duration
	CPS            float64
	MaxConcurrent  float64
	FirstPrompt    percentiles
	BreakAfterCRM  percentiles
	Baseline       sample
	Peak           sample
	Held           *heldFigures `json:",omitempty"`
	After          sample
	GoroutinesBack bool
	FDsBack        bool
	EslappDied     string  `json:",omitempty"`
	CPUPer1000     float64 // eslapp CPU seconds per 1,000 calls
	EslappWarnings int
	FirstWarnings  []string
	Storm          *stormReport `json:",omitempty"`
}

// stormReport is what the connect storm did and what eslapp refused.
type stormReport struct {
	Closed, Reset, Silent, DialFailed int64
	Duration                          time.Duration
	// Refused is eslapp_connections_refused_total by reason at the end.
	Refused map[string]float64
	// CallsRefused are calls of the run eslapp closed at connect (the
	// max_connecting bound was full): FreeSWITCH's dialplan goes on after
	// socket with its own wfe_branch, as the README documents.
	CallsRefused int
}

type heldFigures struct {
	Calls             int
	RSSPerCall        float64
	HeapPerCall       float64
	StackPerCall      float64
	GoroutinesPerCall float64
}

type percentiles struct {
	N              int
	P50, P99, P999 time.Duration
}

func pct(ds []time.Duration) percentiles {
	if len(ds) == 0 {
		return percentiles{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return percentiles{N: len(ds), P50: at(0.5), P99: at(0.99), P999: at(0.999)}
}

func run(o options) (*report, error) {
	if o.faults != "full" {
		o.hangups, o.drops = max(o.hangups, 0), max(o.drops, 0)
	} else {
		if o.hangups < 0 {
			o.hangups = 0.07
		}
		if o.drops < 0 {
			o.drops = 0.03
		}
	}
	mix, ok := mixes[o.faults]
	if !ok {
		return nil, fmt.Errorf("unknown -faults %q", o.faults)
	}
	raiseFileLimit()
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "eslload")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if o.eslapp == "" {
		o.eslapp = filepath.Join(tmp, "eslapp")
		build := exec.Command("go", "build", "-o", o.eslapp, "./cmd/eslapp")
		build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("building eslapp: %w", err)
		}
	}
	stepTimeout := o.stepTimeout
	crmDelay := o.crmDelay
	if o.hold {
		// Calls stay in the step until released: the CRM never answers in time.
		stepTimeout, crmDelay, o.media = 10*time.Minute, 10*time.Minute, time.Hour
	}
	crm, err := newFaultCRM(mix, stepTimeout, crmDelay)
	if err != nil {
		return nil, err
	}
	defer crm.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var env []string
	if o.eslappEnv != "" {
		env = strings.Split(o.eslappEnv, ",")
	}
	app, err := startEslapp(ctx, o.eslapp, tmp, crm.URL(), filepath.Join(root, "sounds"), stepTimeout, o.http2, o.maxConnect, env)
	if err != nil {
		return nil, err
	}
	defer func() { _ = app.stop() }()

	rep := &report{Options: strings.Join(os.Args[1:], " "), Machine: machine(), Outcomes: map[string]int{}}
	time.Sleep(200 * time.Millisecond)
	rep.Baseline, _ = app.sample()
	rep.Peak = rep.Baseline

	stopSampling := make(chan struct{})
	var samplerWG sync.WaitGroup
	samplerWG.Add(1)
	var peakMu sync.Mutex
	go func() {
		defer samplerWG.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				s, err := app.sample()
				if err != nil {
					continue
				}
				peakMu.Lock()
				if s.RSS > rep.Peak.RSS {
					rep.Peak.RSS = s.RSS
				}
				if s.Goroutines > rep.Peak.Goroutines {
					rep.Peak.Goroutines = s.Goroutines
				}
				if s.ActiveCalls > rep.MaxConcurrent {
					rep.MaxConcurrent = s.ActiveCalls
				}
				peakMu.Unlock()
			}
		}
	}()

	if o.cpuProfile != "" {
		go func() {
			time.Sleep(time.Second)
			if err := app.profile("profile?seconds=10", o.cpuProfile); err != nil {
				fmt.Fprintln(os.Stderr, "cpu profile:", err)
			}
		}()
	}
	var stormDone chan struct{}
	var stormCount stormCounts
	stormStart := time.Now()
	var stormEnd time.Time
	if o.storm.connects > 0 || o.storm.silent > 0 {
		stormDone = make(chan struct{})
		go func() {
			defer close(stormDone)
			storm(ctx, app.listen, o.storm, &stormCount)
			stormEnd = time.Now()
		}()
	}
	fs := esltest.New(esltest.Options{NoRecordFrames: true, Logf: func(string, ...any) {}})
	var hold chan struct{}
	if o.hold {
		hold = make(chan struct{})
		o.concurrency = max(o.concurrency, o.calls)
	}
	results := make(chan callResult, 1024)
	sem := make(chan struct{}, o.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	var pace <-chan time.Time
	if o.cps > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / o.cps))
		defer t.Stop()
		pace = t.C
	}
	placed := 0
	collectDone := make(chan struct{})
	var firstPrompt, breakAfter []time.Duration
	refusedCalls := 0
	go func() {
		defer close(collectDone)
		for r := range results {
			rep.Calls++
			rep.Outcomes[r.kind]++
			if r.kind == kindRefused {
				refusedCalls++
			}
			if r.lost != "" {
				rep.Lost++
				if len(rep.LostExamples) < 5 {
					rep.LostExamples = append(rep.LostExamples, r.uuid+": "+r.lost)
				}
			}
			if r.firstPrompt > 0 {
				firstPrompt = append(firstPrompt, r.firstPrompt)
			}
			if r.breakAfter >= 0 {
				breakAfter = append(breakAfter, r.breakAfter)
			}
		}
	}()
	limit := stepTimeout*3 + 30*time.Second
	for {
		if o.calls > 0 && placed >= o.calls || o.calls == 0 && time.Since(start) >= o.duration {
			break
		}
		if pace != nil {
			<-pace
		}
		sem <- struct{}{}
		plan := callPlan{hold: hold}
		switch p := rand.Float64(); {
		case o.hold:
			plan.hangupAfter = time.Millisecond
		case p < o.hangups:
			plan.hangupAfter = time.Duration(5+rand.IntN(150)) * time.Millisecond
		case p < o.hangups+o.drops:
			plan.cutAfter = time.Duration(5+rand.IntN(150)) * time.Millisecond
		}
		placed++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results <- runCall(ctx, fs, app.listen, crm, plan, o.media, limit, stormDone != nil)
		}()
	}
	if o.hold {
		held, err := waitActive(app, placed, 2*time.Minute)
		if err != nil {
			return nil, err
		}
		if o.heapProfile != "" {
			if err := app.profile("heap?gc=1", o.heapProfile); err != nil {
				fmt.Fprintln(os.Stderr, "heap profile:", err)
			}
			if err := app.profile("goroutine?debug=1", o.heapProfile+".goroutines.txt"); err != nil {
				fmt.Fprintln(os.Stderr, "goroutine profile:", err)
			}
		}
		rep.Held = &heldFigures{
			Calls:             placed,
			RSSPerCall:        (held.RSS - rep.Baseline.RSS) / float64(placed),
			HeapPerCall:       (held.HeapInuse - rep.Baseline.HeapInuse) / float64(placed),
			StackPerCall:      (held.StackInuse - rep.Baseline.StackInuse) / float64(placed),
			GoroutinesPerCall: (held.Goroutines - rep.Baseline.Goroutines) / float64(placed),
		}
		close(hold)
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	close(results)
	<-collectDone
	if stormDone != nil {
		<-stormDone
		rep.Storm = &stormReport{
			Closed: stormCount.closed.Load(), Reset: stormCount.reset.Load(), Silent: stormCount.silent.Load(),
			DialFailed: stormCount.failed.Load(), Duration: stormEnd.Sub(stormStart), CallsRefused: refusedCalls,
		}
	}
	close(stopSampling)
	samplerWG.Wait()
	rep.CPS = float64(rep.Calls) / rep.Elapsed.Seconds()
	rep.FirstPrompt = pct(firstPrompt)
	rep.BreakAfterCRM = pct(breakAfter)
	crm.mu.Lock()
	rep.CRMKinds = crm.kinds
	crm.mu.Unlock()

	// Afterwards: no call left, and eslapp's goroutines back to where they
	// were once the CRM has closed its connections (eslapp keeps idle
	// ones pooled for a minute otherwise: state, not a leak).
	crm.close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rep.After, _ = app.sample()
		rep.GoroutinesBack = rep.After.ActiveCalls == 0 && rep.After.Goroutines <= rep.Baseline.Goroutines+2
		rep.FDsBack = rep.After.OpenFDs <= rep.Baseline.OpenFDs+2
		if rep.GoroutinesBack && rep.FDsBack || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if rep.Calls > 0 {
		rep.CPUPer1000 = (rep.After.CPUSeconds - rep.Baseline.CPUSeconds) / float64(rep.Calls) * 1000
	}
	if rep.Storm != nil {
		rep.Storm.Refused = rep.After.Refused
	}
	select {
	case <-app.done:
		rep.EslappDied = fmt.Sprint(app.exitErr)
	default:
	}
	app.mu.Lock()
	rep.EslappWarnings = app.warnings
	rep.FirstWarnings = app.firstWarns
	app.mu.Unlock()
	if rep.Lost > 0 {
		fmt.Fprintf(os.Stderr, "eslapp's last log lines:\n%s\n", app.tail())
	}
	return rep, nil
}

// waitActive waits until eslapp reports n active calls and returns that
// sample.
func waitActive(app *eslappProc, n int, limit time.Duration) (sample, error) {
	deadline := time.Now().Add(limit)
	for {
		s, err := app.sample()
		if err == nil && int(s.ActiveCalls) >= n {
			time.Sleep(time.Second) // let the last calls reach the step
			// Collections first, so that the heap figure is what the
			// calls hold, not garbage from setting them up, and the stacks
			// what waiting calls use: a collection halves a stack that uses
			// under a quarter of it, and a call held for seconds in
			// production sees many.
			for range 3 {
				_ = app.profile("heap?gc=1", os.DevNull)
			}
			return app.sample()
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("only %v of %d calls active after %v", s.ActiveCalls, n, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// raiseFileLimit lifts the soft descriptor limit to the hard one: each call
// is a socket on both sides, and eslapp (a child) inherits the limit.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("run from inside the eslapp repository")
		}
	}
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s/%s, %s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func (r *report) print(w *os.File) {
	fmt.Fprintf(w, "machine: %s\nrun: %s\n", r.Machine, r.Options)
	fmt.Fprintf(w, "calls: %d in %v (%.1f calls/s), lost: %d, at most %.0f at once\n", r.Calls, r.Elapsed.Round(time.Millisecond), r.CPS, r.Lost, r.MaxConcurrent)
	for _, ex := range r.LostExamples {
		fmt.Fprintf(w, "  lost: %s\n", ex)
	}
	var kinds []string
	for k, n := range r.Outcomes {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	fmt.Fprintf(w, "outcomes: %s\n", strings.Join(kinds, ", "))
	kinds = kinds[:0]
	for k, n := range r.CRMKinds {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	fmt.Fprintf(w, "CRM answers: %s\n", strings.Join(kinds, ", "))
	p := func(name string, q percentiles) {
		fmt.Fprintf(w, "%s: n=%d p50=%v p99=%v p99.9=%v\n", name, q.N, q.P50, q.P99, q.P999)
	}
	p("connect to first prompt", r.FirstPrompt)
	p("CRM answer to uuid_break", r.BreakAfterCRM)
	mb := func(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }
	fmt.Fprintf(w, "eslapp RSS: before %s, peak %s, after %s; goroutines: before %.0f, peak %.0f, after %.0f (back to baseline: %v)\n",
		mb(r.Baseline.RSS), mb(r.Peak.RSS), mb(r.After.RSS), r.Baseline.Goroutines, r.Peak.Goroutines, r.After.Goroutines, r.GoroutinesBack)
	if r.Held != nil {
		fmt.Fprintf(w, "held in the step: %d calls; per call %.1f KiB RSS (heap %.1f KiB, stacks %.1f KiB), %.2f goroutines\n",
			r.Held.Calls, r.Held.RSSPerCall/1024, r.Held.HeapPerCall/1024, r.Held.StackPerCall/1024, r.Held.GoroutinesPerCall)
	}
	fmt.Fprintf(w, "eslapp descriptors: before %.0f, after %.0f (back to baseline: %v)\n", r.Baseline.OpenFDs, r.After.OpenFDs, r.FDsBack)
	if st := r.Storm; st != nil {
		fmt.Fprintf(w, "storm: %d connects in %v (%d closed, %d reset, %d silent; %d dials failed); eslapp refused: %v; calls refused at connect: %d\n",
			st.Closed+st.Reset+st.Silent, st.Duration.Round(time.Millisecond), st.Closed, st.Reset, st.Silent, st.DialFailed, st.Refused, st.CallsRefused)
	}
	if r.EslappDied != "" {
		fmt.Fprintf(w, "ESLAPP DIED: %s\n", r.EslappDied)
	}
	fmt.Fprintf(w, "eslapp CPU: %.3f s per 1,000 calls; warnings/errors logged: %d\n", r.CPUPer1000, r.EslappWarnings)
	for _, l := range r.FirstWarnings {
		fmt.Fprintf(w, "  %s\n", l)
	}
}
