// Command pbxcost measures what a call plan costs FreeSWITCH: it places
// SIPp calls to each extension given, in blocks (one extension's calls per
// block, blocks alternating, several rounds), and reads FreeSWITCH's CPU
// (utime + stime of its process, /proc/PID/stat) before and after each
// block. Per extension it reports calls succeeded and failed, FreeSWITCH's
// CPU per call, eslapp's CPU per call and the difference to the baseline
// extension, as medians over the rounds. With -search it finds instead the
// highest call rate at which every call succeeds. With -eslapp-b it
// compares two eslapp binaries in one run: an extension written EXT@b is
// measured with the second binary (eslapp is swapped between blocks), so
// "7000 7000@b" alternates the two on the same FreeSWITCH. An extension
// written EXT@2 runs with a second eslapp connected to the same
// FreeSWITCH (socket-less calls are then claimed by one of two): "7010
// 7010@2" measures what each more eslapp costs FreeSWITCH; the commands,
// events and eslapp CPU are those of both.
//
// A call succeeds when the agent stand-in of conf/freeswitch (1000) hangs
// up after the branch OnSuccess: uac_load.xml checks the headers its BYE
// carries, so the check costs FreeSWITCH nothing.
//
//	go run ./itest/pbxcost -freeswitch /opt/freeswitch/bin/freeswitch -cps 20,30,40 7090 7000 7010
//	go run ./itest/pbxcost -freeswitch /opt/freeswitch/bin/freeswitch -search 7090 7000 7010
//	go run ./itest/pbxcost -freeswitch /opt/freeswitch/bin/freeswitch -calls 200 -cps 20 -rounds 1 -check 7090 7000
//
// FreeSWITCH is either started here on a temporary copy of conf/freeswitch
// (-freeswitch, default $ESLAPP_FREESWITCH) or one already running
// (-fs-pid, -fs-sip, -fs-esl, -fs-password). eslapp is started here on
// itest/pbxcost/eslapp.toml (the demo CRM answers after 500 ms, so that the calls last as long as 7090's). While
// measuring, FreeSWITCH's core log level is warning. See itest/README.md
// and BENCHMARKS.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/eslapp/eslapp/itest"
)

type options struct {
	freeswitch  string
	fsPID       int
	fsSIP       string
	fsESL       string
	fsPassword  string
	eslapp      string
	eslappB     string
	eslappConf  string
	exts        []string
	baseline    string
	calls       int
	rates       []int
	rounds      int
	search      bool
	searchFrom  int
	searchStep  int
	searchMax   int
	searchTime  time.Duration
	check       bool
	out         string
	loglevel    string
	restoreLvl  string
	callTimeout time.Duration
}

func main() {
	var o options
	var rates string
	flag.StringVar(&o.freeswitch, "freeswitch", os.Getenv("ESLAPP_FREESWITCH"), "start FreeSWITCH from this binary on a temporary copy of conf/freeswitch")
	flag.IntVar(&o.fsPID, "fs-pid", 0, "or measure a running FreeSWITCH: its process id")
	flag.StringVar(&o.fsSIP, "fs-sip", "127.0.0.1:5080", "the running FreeSWITCH's SIP profile eslapp")
	flag.StringVar(&o.fsESL, "fs-esl", "127.0.0.1:8021", "the running FreeSWITCH's inbound Event Socket")
	flag.StringVar(&o.fsPassword, "fs-password", os.Getenv("FREESWITCH_ESL_PASSWORD"), "its password")
	flag.StringVar(&o.eslapp, "eslapp", "", "eslapp binary (default: built from this checkout)")
	flag.StringVar(&o.eslappB, "eslapp-b", "", "a second eslapp binary, for the extensions written EXT@b (a before/after comparison in one run)")
	flag.StringVar(&o.eslappConf, "eslapp-config", "itest/pbxcost/eslapp.toml", "eslapp's configuration, relative to the repository")
	flag.StringVar(&o.baseline, "baseline", "7090", "the extension the others are compared with (the pure-dialplan plan)")
	flag.IntVar(&o.calls, "calls", 300, "calls per block")
	flag.StringVar(&rates, "cps", "30", "call rates to measure, calls per second, comma separated")
	flag.IntVar(&o.rounds, "rounds", 4, "rounds: each runs one block per extension, in alternating order")
	flag.BoolVar(&o.search, "search", false, "find each extension's highest call rate with no failed call")
	flag.IntVar(&o.searchFrom, "search-from", 20, "with -search: the first rate")
	flag.IntVar(&o.searchStep, "search-step", 5, "with -search: the step between rates")
	flag.IntVar(&o.searchMax, "search-max", 0, "with -search: the highest rate tried (0: no ceiling, until every extension has failed)")
	flag.DurationVar(&o.searchTime, "search-time", 20*time.Second, "with -search: how long each rate is held")
	flag.BoolVar(&o.check, "check", false, "exit 1 unless every call of every block succeeded on its branch")
	flag.StringVar(&o.out, "out", "", "keep logs here (FreeSWITCH's console, eslapp's log, SIPp's errors); default a temporary directory")
	flag.StringVar(&o.loglevel, "loglevel", "warning", "FreeSWITCH's core log level while measuring")
	flag.StringVar(&o.restoreLvl, "restore-loglevel", "info", "a running FreeSWITCH's log level afterwards")
	flag.DurationVar(&o.callTimeout, "call-timeout", 2*time.Minute, "how long a block may run past its last call")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: pbxcost [flags] EXTENSION...\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	o.exts = flag.Args()
	var err error
	if o.rates, err = parseRates(rates); err != nil {
		fail(err)
	}
	if len(o.exts) == 0 {
		o.exts = []string{o.baseline, "7000", "7010"}
	}
	for _, ext := range o.exts {
		if strings.HasSuffix(ext, "@b") && o.eslappB == "" {
			fail(fmt.Errorf("%s: an extension for the second binary needs -eslapp-b", ext))
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	clean, err := run(ctx, o, os.Stdout)
	if err != nil {
		fail(err)
	}
	if o.check && !clean {
		fmt.Fprintln(os.Stderr, "pbxcost: a call failed or missed its branch (see above)")
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "pbxcost:", err)
	os.Exit(2)
}

func parseRates(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-cps %q: want positive whole numbers, comma separated", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// bench is what one run measures on.
type bench struct {
	o       options
	sipp    string
	fsPID   int
	fsSIP   string
	localIP string
	esl     *itest.InboundConn
	eslapp  *itest.Eslapp // the one running now
	variant string        // which binary runs: "" (-eslapp) or "b" (-eslapp-b)
	peer    *itest.Eslapp // the second eslapp of EXT@2 blocks, while one runs
	root    string
	pass    string
	out     string
	w       io.Writer
}

func run(ctx context.Context, o options, w io.Writer) (clean bool, err error) {
	root, err := itest.RepoRoot()
	if err != nil {
		return false, err
	}
	b := &bench{o: o, w: w, out: o.out}
	if b.out == "" {
		if b.out, err = os.MkdirTemp("", "eslapp-pbxcost-"); err != nil {
			return false, err
		}
	} else if err := os.MkdirAll(b.out, 0o755); err != nil {
		return false, err
	}
	sipp, why := itest.SIPpPath()
	if sipp == "" {
		return false, errors.New(why)
	}
	b.sipp = sipp

	// FreeSWITCH: started here, or a running one.
	password, eslAddr := o.fsPassword, o.fsESL
	switch {
	case o.freeswitch != "":
		fs, err := itest.StartFreeSWITCH(ctx, itest.FreeSWITCHOptions{Binary: o.freeswitch, Dir: filepath.Join(b.out, "freeswitch"), LogLevel: o.loglevel})
		if err != nil {
			return false, err
		}
		defer fs.Stop()
		b.fsPID, b.fsSIP, password, eslAddr = fs.PID(), fs.SIP, fs.Password, fs.ESL
		fmt.Fprintf(w, "%s, pid %d, console %s\n", fs.Version, fs.PID(), fs.ConsoleLog)
	case o.fsPID != 0:
		b.fsPID, b.fsSIP = o.fsPID, o.fsSIP
	default:
		return false, errors.New("no FreeSWITCH: give -freeswitch BINARY (or set ESLAPP_FREESWITCH), or -fs-pid with -fs-sip, -fs-esl and -fs-password")
	}
	if b.localIP, err = itest.LocalIPFor(b.fsSIP); err != nil {
		return false, err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	b.esl, err = itest.DialInbound(dctx, eslAddr, password)
	cancel()
	if err != nil {
		return false, fmt.Errorf("FreeSWITCH's inbound Event Socket %s: %w", eslAddr, err)
	}
	defer b.esl.Close()
	if _, err := b.esl.API("fsctl loglevel " + o.loglevel); err != nil {
		return false, err
	}
	if o.freeswitch == "" {
		defer b.esl.API("fsctl loglevel " + o.restoreLvl)
	}

	// eslapp, on its cost configuration, in the repository's root (its
	// sounds are ./sounds there).
	b.root, b.pass = root, password
	if b.eslapp, err = startEslapp(ctx, o, o.eslapp, root, b.out, password); err != nil {
		return false, err
	}
	defer func() {
		b.eslapp.Stop()
		_ = b.usePeer(context.Background(), false)
	}()
	fmt.Fprintf(w, "eslapp pid %d on %s, log %s\n", b.eslapp.PID(), o.eslappConf, b.eslapp.LogPath)
	// What shares the machine: FreeSWITCH, eslapp and SIPp run here, and
	// whatever else the load average shows.
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(w, "machine: %d CPUs, load average %s before the first block; FreeSWITCH, eslapp and SIPp share it\n",
		runtime.NumCPU(), strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " "))

	if o.search {
		return b.searchAll(ctx)
	}
	return b.measureAll(ctx)
}

// use makes the binary an extension asks for the running eslapp — EXT@b
// the -eslapp-b one, any other the -eslapp one — with a second eslapp
// beside it for EXT@2. It returns the extension to call.
func (b *bench) use(ctx context.Context, ext string) (string, error) {
	dial, variant, peers := ext, "", false
	if d, ok := strings.CutSuffix(dial, "@2"); ok {
		dial, peers = d, true
	}
	if d, ok := strings.CutSuffix(dial, "@b"); ok {
		dial, variant = d, "b"
	}
	if err := b.usePeer(ctx, peers); err != nil {
		return "", err
	}
	if dial == b.o.baseline || variant == b.variant {
		return dial, nil // pure dialplan: eslapp is not involved
	}
	bin := b.o.eslapp
	if variant == "b" {
		bin = b.o.eslappB
	}
	b.eslapp.Stop()
	e, err := startEslapp(ctx, b.o, bin, b.root, b.out, b.pass)
	if err != nil {
		return "", err
	}
	b.eslapp, b.variant = e, variant
	return dial, nil
}

// usePeer starts or stops the second eslapp: the -eslapp binary on a copy
// of the configuration with its own listener and metrics.
func (b *bench) usePeer(ctx context.Context, on bool) error {
	switch {
	case on && b.peer == nil:
		cfg, err := os.ReadFile(b.configPath())
		if err != nil {
			return err
		}
		listen, err := itest.FreeTCPAddr()
		if err != nil {
			return err
		}
		metrics, err := itest.FreeTCPAddr()
		if err != nil {
			return err
		}
		text := regexp.MustCompile(`(?m)^listen = ".*"$`).ReplaceAllString(string(cfg), `listen = "`+listen+`"`)
		text = regexp.MustCompile(`(?m)^metrics_listen = ".*"$`).ReplaceAllString(text, `metrics_listen = "`+metrics+`"`)
		path := filepath.Join(b.out, "eslapp-peer.toml")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return err
		}
		o := b.o
		o.eslappConf = path
		b.peer, err = startEslapp(ctx, o, b.o.eslapp, b.root, b.out, b.pass)
		return err
	case !on && b.peer != nil:
		b.peer.Stop()
		b.peer = nil
	}
	return nil
}

// configPath is eslapp's configuration file.
func (b *bench) configPath() string {
	if filepath.IsAbs(b.o.eslappConf) {
		return b.o.eslappConf
	}
	return filepath.Join(b.root, b.o.eslappConf)
}

// eslapps are the eslapp processes running now.
func (b *bench) eslapps() []*itest.Eslapp {
	if b.peer != nil {
		return []*itest.Eslapp{b.eslapp, b.peer}
	}
	return []*itest.Eslapp{b.eslapp}
}

// eslappCPU is the CPU time of the eslapps running now.
func (b *bench) eslappCPU() (time.Duration, error) {
	var sum time.Duration
	for _, e := range b.eslapps() {
		d, err := itest.CPUTime(e.PID())
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

// eslappWire is the traffic of the eslapps running now.
func (b *bench) eslappWire() (wire, error) {
	var sum wire
	for _, e := range b.eslapps() {
		w, err := readWire(e)
		if err != nil {
			return wire{}, err
		}
		sum = sum.plus(w)
	}
	return sum, nil
}

func startEslapp(ctx context.Context, o options, bin, root, out, password string) (*itest.Eslapp, error) {
	cfgPath := o.eslappConf
	if !filepath.IsAbs(cfgPath) {
		cfgPath = filepath.Join(root, cfgPath)
	}
	var cfg struct {
		Server struct {
			Listen        string `toml:"listen"`
			MetricsListen string `toml:"metrics_listen"`
		} `toml:"server"`
		Socketless struct {
			Enabled bool `toml:"enabled"`
		} `toml:"socketless"`
	}
	if _, err := toml.DecodeFile(cfgPath, &cfg); err != nil {
		return nil, err
	}
	if cfg.Server.Listen == "" || cfg.Server.MetricsListen == "" {
		return nil, fmt.Errorf("%s: [server] listen and metrics_listen must be set (the tool waits for /metrics)", cfgPath)
	}
	if ln, err := net.Listen("tcp", cfg.Server.Listen); err != nil {
		return nil, fmt.Errorf("eslapp's address %s is taken (another eslapp?): %w", cfg.Server.Listen, err)
	} else {
		ln.Close()
	}
	if bin == "" {
		var err error
		if bin, err = itest.BuildEslapp(ctx, out); err != nil {
			return nil, err
		}
	}
	e, err := itest.StartEslapp(ctx, bin, root, cfgPath, cfg.Server.MetricsListen, filepath.Join(out, strings.TrimSuffix(filepath.Base(cfgPath), ".toml")+".log"),
		"FREESWITCH_ESL_PASSWORD="+password)
	if err != nil || !cfg.Socketless.Enabled {
		return e, err
	}
	// Socket-less calls (7010) need the shared connection up before the
	// first one announces itself.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := e.WaitSocketless(wctx); err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

// block is one run of calls to one extension at one rate.
type block struct {
	ext        string
	rate       int
	calls      int
	succeeded  int
	failed     int
	fsCPU      time.Duration // FreeSWITCH's CPU over the block
	eslappCPU  time.Duration // eslapp's
	wire       wire          // what eslapp and FreeSWITCH exchanged
	wall       time.Duration
	callLength time.Duration // SIPp's mean call length
	sippErr    error
	sippErrors string
}

func (bl block) clean() bool {
	return bl.sippErr == nil && bl.failed == 0 && bl.succeeded == bl.calls
}

func perCall(d time.Duration, calls int) float64 {
	if calls == 0 {
		return 0
	}
	return float64(d) / float64(time.Millisecond) / float64(calls)
}

// runBlock places calls to ext at rate and measures both processes' CPU
// from before the first call to after FreeSWITCH has ended the last one.
func (b *bench) runBlock(ctx context.Context, ext string, rate, calls int) (block, error) {
	bl := block{ext: ext, rate: rate, calls: calls}
	if err := b.waitIdle(ctx); err != nil {
		return bl, err
	}
	dial, err := b.use(ctx, ext)
	if err != nil {
		return bl, err
	}
	fs0, err := itest.CPUTime(b.fsPID)
	if err != nil {
		return bl, err
	}
	es0, err := b.eslappCPU()
	if err != nil {
		return bl, err
	}
	w0, err := b.eslappWire()
	if err != nil {
		return bl, err
	}
	start := time.Now()
	placing := time.Duration(calls) * time.Second / time.Duration(rate)
	res := itest.SIPp{
		Path: b.sipp, Scenario: "uac_load.xml", Remote: b.fsSIP, LocalIP: b.localIP, Dir: b.out,
		Args:    []string{"-s", dial, "-r", strconv.Itoa(rate), "-l", "10000", "-m", strconv.Itoa(calls)},
		Timeout: placing + b.o.callTimeout,
	}.Start(ctx)()
	if err := b.waitIdle(ctx); err != nil {
		return bl, err
	}
	bl.wall = time.Since(start)
	fs1, err := itest.CPUTime(b.fsPID)
	if err != nil {
		return bl, err
	}
	es1, err := b.eslappCPU()
	if err != nil {
		return bl, err
	}
	w1, err := b.eslappWire()
	if err != nil {
		return bl, err
	}
	bl.fsCPU, bl.eslappCPU, bl.wire = fs1-fs0, es1-es0, w1.minus(w0)
	bl.succeeded, bl.failed, bl.sippErr, bl.sippErrors, bl.callLength = res.Successful, res.Failed, res.Err, res.Errors, res.CallLength
	if ctx.Err() != nil {
		return bl, ctx.Err()
	}
	select {
	case <-b.eslapp.Done():
		return bl, fmt.Errorf("eslapp exited during the run: %v\n%s", b.eslapp.Err(), b.eslapp.Tail(30))
	default:
	}
	return bl, nil
}

// waitIdle waits until FreeSWITCH has no channel left (the last calls'
// hangups are part of the block they belong to).
func (b *bench) waitIdle(ctx context.Context) error {
	deadline := time.Now().Add(b.o.callTimeout)
	for {
		out, err := b.esl.API("show channels count")
		if err != nil {
			return err
		}
		if strings.HasPrefix(strings.TrimSpace(out), "0 total") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("FreeSWITCH still has channels after %v: %s", b.o.callTimeout, strings.TrimSpace(out))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// measureAll runs, for each rate, rounds of one block per extension, the
// order reversed every other round, and reports medians.
func (b *bench) measureAll(ctx context.Context) (bool, error) {
	clean := true
	for _, rate := range b.o.rates {
		byExt := map[string][]block{}
		for round := range b.o.rounds {
			order := slices.Clone(b.o.exts)
			if round%2 == 1 {
				slices.Reverse(order)
			}
			for _, ext := range order {
				bl, err := b.runBlock(ctx, ext, rate, b.o.calls)
				if err != nil {
					return false, err
				}
				fmt.Fprintf(b.w, "  round %d, %s at %d cps: %d/%d calls succeeded, FreeSWITCH %.1f ms/call, eslapp %.2f ms/call, calls %.2f s long, %v\n",
					round+1, ext, rate, bl.succeeded, bl.calls, perCall(bl.fsCPU, bl.calls), perCall(bl.eslappCPU, bl.calls), bl.callLength.Seconds(), bl.wall.Round(time.Second))
				if !bl.clean() {
					clean = false
					fmt.Fprintf(b.w, "    %s: %v\n%s\n", ext, bl.sippErr, indent(tailLines(bl.sippErrors, 10)))
				}
				byExt[ext] = append(byExt[ext], bl)
			}
		}
		b.report(rate, byExt)
	}
	return clean, nil
}

// report prints one rate's table: medians over the rounds.
func (b *bench) report(rate int, byExt map[string][]block) {
	fmt.Fprintf(b.w, "\n%d calls/s, %d calls per block, %d rounds (medians; FreeSWITCH %s, core log level %s)\n\n",
		rate, b.o.calls, b.o.rounds, "pid "+strconv.Itoa(b.fsPID), b.o.loglevel)
	tw := tabwriter.NewWriter(b.w, 0, 4, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| extension\t calls ok\t failed\t FreeSWITCH ms/call\t vs "+b.o.baseline+"\t eslapp ms/call\t call s\t commands/call\t command bytes/call\t events/call\t event KB/call\t rounds (FreeSWITCH ms/call)\t")
	fmt.Fprintln(tw, "|---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t")
	base, haveBase := medianFS(byExt[b.o.baseline])
	for _, ext := range b.o.exts {
		blocks := byExt[ext]
		ok, failed := 0, 0
		var rounds []string
		for _, bl := range blocks {
			ok += bl.succeeded
			failed += bl.calls - bl.succeeded
			rounds = append(rounds, fmt.Sprintf("%.1f", perCall(bl.fsCPU, bl.calls)))
		}
		fs, _ := medianFS(blocks)
		es := median(blocks, func(bl block) float64 { return perCall(bl.eslappCPU, bl.calls) })
		length := median(blocks, func(bl block) float64 { return bl.callLength.Seconds() })
		delta := "—"
		if haveBase && ext != b.o.baseline {
			delta = fmt.Sprintf("%+.1f ms", fs-base)
		}
		var w wire
		calls := 0
		for _, bl := range blocks {
			w = w.plus(bl.wire)
			calls += bl.calls
		}
		per := func(v float64) float64 { return v / float64(max(calls, 1)) }
		fmt.Fprintf(tw, "| %s\t %d\t %d\t %.1f\t %s\t %.2f\t %.2f\t %.1f\t %.0f\t %.1f\t %.1f\t %s\t\n", ext, ok, failed, fs, delta, es, length,
			per(w.commands), per(w.commandBytes), per(w.events), per(w.eventBytes)/1024, strings.Join(rounds, " "))
	}
	tw.Flush()
	fmt.Fprintln(b.w)
}

func medianFS(blocks []block) (float64, bool) {
	if len(blocks) == 0 {
		return 0, false
	}
	return median(blocks, func(bl block) float64 { return perCall(bl.fsCPU, bl.calls) }), true
}

func median(blocks []block, f func(block) float64) float64 {
	if len(blocks) == 0 {
		return 0
	}
	v := make([]float64, len(blocks))
	for i, bl := range blocks {
		v[i] = f(bl)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// searchAll finds, per extension, the highest rate (from -search-from, in
// steps of -search-step) at which a block of -search-time worth of calls
// ends with every call succeeded on its branch, and goes on until every
// extension — the baseline too — has failed once (or -search-max): the
// baseline's limit is measured, never a ceiling below it. The extensions
// take turns at each rate, so the machine's drift falls on all of them.
// It prints each block as it ends, then the highest clean rates with the
// first failure, and FreeSWITCH's (and eslapp's) CPU per call at every
// rate measured.
func (b *bench) searchAll(ctx context.Context) (bool, error) {
	best := map[string]int{}
	failedAt := map[string]block{}
	blocks := map[string]map[int]block{}
	var rates []int
	for rate := b.o.searchFrom; (b.o.searchMax == 0 || rate <= b.o.searchMax) && len(failedAt) < len(b.o.exts); rate += b.o.searchStep {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		rates = append(rates, rate)
		for _, ext := range b.o.exts {
			if _, done := failedAt[ext]; done {
				continue
			}
			calls := int(float64(rate) * b.o.searchTime.Seconds())
			bl, err := b.runBlock(ctx, ext, rate, calls)
			if err != nil {
				return false, err
			}
			if blocks[ext] == nil {
				blocks[ext] = map[int]block{}
			}
			blocks[ext][rate] = bl
			verdict := "clean"
			if !bl.clean() {
				verdict = fmt.Sprintf("%d failed (%v)", bl.calls-bl.succeeded, bl.sippErr)
				failedAt[ext] = bl
			} else {
				best[ext] = rate
			}
			fmt.Fprintf(b.w, "  %s at %d cps: %d calls, %s; FreeSWITCH %.1f ms/call, eslapp %.2f ms/call, calls %.2f s long\n",
				ext, rate, calls, verdict, perCall(bl.fsCPU, bl.calls), perCall(bl.eslappCPU, bl.calls), bl.callLength.Seconds())
		}
	}
	fmt.Fprintf(b.w, "\nhighest rate with no failed call (steps of %d calls/s, %v each; the extensions take turns at each rate)\n\n", b.o.searchStep, b.o.searchTime)
	tw := tabwriter.NewWriter(b.w, 0, 4, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| extension\t highest clean calls/s\t of "+b.o.baseline+"\t first failure\t")
	fmt.Fprintln(tw, "|---\t---\t---\t---\t")
	for _, ext := range b.o.exts {
		rate, of, first := "below "+strconv.Itoa(b.o.searchFrom), "—", "none (search ended)"
		if r, ok := best[ext]; ok {
			rate = strconv.Itoa(r)
			if br := best[b.o.baseline]; br > 0 && ext != b.o.baseline {
				of = fmt.Sprintf("%.0f %%", 100*float64(r)/float64(br))
			}
		}
		if bl, ok := failedAt[ext]; ok {
			first = fmt.Sprintf("%d/s: %d of %d", bl.rate, bl.calls-bl.succeeded, bl.calls)
		} else if _, ok := best[ext]; ok {
			rate = "≥ " + rate
		}
		fmt.Fprintf(tw, "| %s\t %s\t %s\t %s\t\n", ext, rate, of, first)
	}
	tw.Flush()

	fmt.Fprintf(b.w, "\nFreeSWITCH ms/call (eslapp ms/call) at each rate; * a block with failed calls\n\n")
	tw = tabwriter.NewWriter(b.w, 0, 4, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| calls/s\t "+strings.Join(b.o.exts, "\t ")+"\t")
	fmt.Fprintln(tw, "|---"+strings.Repeat("\t---", len(b.o.exts))+"\t")
	for _, rate := range rates {
		row := []string{strconv.Itoa(rate)}
		for _, ext := range b.o.exts {
			bl, ok := blocks[ext][rate]
			cell := ""
			if ok {
				cell = fmt.Sprintf("%.1f", perCall(bl.fsCPU, bl.calls))
				if bl.eslappCPU > 0 {
					cell += fmt.Sprintf(" (%.2f)", perCall(bl.eslappCPU, bl.calls))
				}
				if !bl.clean() {
					cell += " *"
				}
			}
			row = append(row, cell)
		}
		fmt.Fprintln(tw, "| "+strings.Join(row, "\t ")+"\t")
	}
	tw.Flush()
	return true, nil
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string { return "      " + strings.ReplaceAll(s, "\n", "\n      ") }

// wire is what eslapp's metrics say it exchanged with FreeSWITCH.
type wire struct{ commands, commandBytes, events, eventBytes float64 }

func (a wire) minus(b wire) wire {
	return wire{a.commands - b.commands, a.commandBytes - b.commandBytes, a.events - b.events, a.eventBytes - b.eventBytes}
}

func (a wire) plus(b wire) wire {
	return wire{a.commands + b.commands, a.commandBytes + b.commandBytes, a.events + b.events, a.eventBytes + b.eventBytes}
}

// readWire reads eslapp's eslapp_esl_* counters.
func readWire(e *itest.Eslapp) (wire, error) {
	lines, err := e.MetricLines("eslapp_esl_")
	if err != nil {
		return wire{}, err
	}
	var w wire
	for _, l := range lines {
		name, v, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			continue
		}
		switch name {
		case "eslapp_esl_commands_total":
			w.commands = f
		case "eslapp_esl_command_bytes_total":
			w.commandBytes = f
		case "eslapp_esl_events_total":
			w.events = f
		case "eslapp_esl_event_bytes_total":
			w.eventBytes = f
		}
	}
	return w, nil
}
