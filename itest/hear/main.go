// Command hear measures what a caller hears: it starts a pool (two
// FreeSWITCH processes from the kit, two eslapps connected to both, a CRM
// that answers after 1 s), places calls with baresip, a real SIP user
// agent that records what it plays, and prints per scenario the worst of
// its calls: answer to the first audio, the longest gap without audio,
// answer to the branch prompt and to the agent's tone, and how the call
// ended. See itest/README.md, "What the caller hears".
//
//	go run ./itest/hear -freeswitch /opt/freeswitch/bin/freeswitch
//	go run ./itest/hear -freeswitch $fs -calls 5 -run '7010' -out /tmp/hear
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/eslapp/eslapp/itest"
)

func main() {
	fsBin := flag.String("freeswitch", os.Getenv("ESLAPP_FREESWITCH"), "the freeswitch binary (the pool starts two)")
	calls := flag.Int("calls", 3, "calls per scenario; the table shows the worst")
	run := flag.String("run", "", "only the scenarios whose name matches this regular expression")
	out := flag.String("out", "", "keep the pool's logs and every call's recordings here (default: a temporary directory, removed)")
	host := flag.Int("host", 0, "the pool's FreeSWITCH to call (0 or 1)")
	verbose := flag.Bool("v", false, "print every call")
	flag.Parse()
	log.SetFlags(0)
	if *fsBin == "" {
		log.Fatal("hear: give -freeswitch (or ESLAPP_FREESWITCH): a FreeSWITCH binary, which bash .ci/install-freeswitch prints")
	}
	bin, modules, why := itest.BaresipPath()
	if bin == "" {
		log.Fatal("hear: " + why)
	}
	var only *regexp.Regexp
	if *run != "" {
		only = regexp.MustCompile(*run)
	}
	dir := *out
	if dir == "" {
		d, err := os.MkdirTemp("", "eslapp-hear-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := measure(ctx, *fsBin, bin, modules, dir, only, *calls, *host, *verbose); err != nil {
		log.Print("hear: ", err)
		stop()
		os.Exit(1)
	}
}

func measure(ctx context.Context, fsBin, bin, modules, dir string, only *regexp.Regexp, calls, host int, verbose bool) error {
	root, err := itest.RepoRoot()
	if err != nil {
		return err
	}
	prompts, err := itest.LoadHearPrompts(filepath.Join(root, "sounds"), 8000, "hold.wav", "transferring.wav", "apology.wav")
	if err != nil {
		return err
	}
	logf := func(string, ...any) {}
	if verbose {
		logf = func(f string, a ...any) { log.Printf(f, a...) }
	}
	start := time.Now()
	p, err := itest.StartPool(ctx, itest.PoolOptions{FreeSWITCH: fsBin, Dir: filepath.Join(dir, "pool"), Logf: logf})
	if err != nil {
		return err
	}
	defer p.Stop()
	if host < 0 || host >= len(p.Hosts) {
		return fmt.Errorf("-host %d: the pool has %d FreeSWITCH processes", host, len(p.Hosts))
	}
	log.Printf("pool up in %.1f s (%s); baresip %s; %d call(s) per scenario, on FreeSWITCH %d (%s)",
		time.Since(start).Seconds(), p.Hosts[0].FS().Version, bin, calls, host, p.Hosts[host].FS().SIP)
	o := itest.HearOptions{Baresip: bin, Modules: modules, Prompts: prompts, Host: host}
	var rows []row
	for _, sc := range itest.HearScenarios() {
		if only != nil && !only.MatchString(sc.Name) {
			continue
		}
		var runs []*itest.HearRun
		for i := range calls {
			callDir := filepath.Join(dir, "calls", strings.ReplaceAll(sc.Name, " ", "-")+fmt.Sprintf("-%d", i+1))
			r, err := itest.Hear(ctx, p, sc, o, callDir)
			if err != nil {
				return fmt.Errorf("%s, call %d: %w", sc.Name, i+1, err)
			}
			runs = append(runs, r)
			log.Print(describe(r))
			if verbose {
				for _, ev := range r.FSEvents {
					log.Printf("    FreeSWITCH %6.2f s  %s", ev.At.Seconds(), ev.What)
				}
			}
		}
		rows = append(rows, worst(sc, runs))
	}
	fmt.Printf("\nWhat the caller heard (baresip 1.0.0, G.711 µ-law; worst of %d call(s) per scenario; times from the answer; audio: a 20 ms frame above %.0f dBFS)\n\n", calls, itest.AudibleDBFS)
	fmt.Println("| scenario | answer → first audio | longest gap while waiting (before the branch prompt) | longest gap in the call | answer → branch prompt heard | FreeSWITCH started it | answer → agent's tone | how the call ended |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Println("| " + strings.Join(r.cells, " | ") + " |")
	}
	fmt.Println("\nThe longest gaps, and what FreeSWITCH did then:")
	for _, r := range rows {
		fmt.Printf("- %s: %s\n", r.cells[0], r.gaps)
	}
	return nil
}

func secs(d time.Duration) string {
	if d < 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// describe is one call on one line.
func describe(r *itest.HearRun) string {
	h := r.Heard
	name, at := r.Branch()
	var prompts []string
	for n, hp := range h.Prompts {
		prompts = append(prompts, fmt.Sprintf("%s at %.2f s (%.1f s of its speech)", n, hp.At.Seconds(), hp.Played.Seconds()))
	}
	slices.Sort(prompts)
	var gaps []string
	for _, g := range h.Gaps {
		gaps = append(gaps, g.String())
	}
	s := fmt.Sprintf("%s: answered %.3f s after the dial (the recording %+.0f ms against CALL_CLOSED − CALL_ESTABLISHED); RTP from %s; first audio %s; longest gap %s; gaps ≥ 0.2 s: [%s]; %s; branch %s %s (FreeSWITCH: %s); tone %s; %.2f s long, %.2f s decoded; %s",
		r.Scenario.Name, r.Call.Answered.Sub(r.Call.Dialled).Seconds(), float64((h.Length-r.Call.Ended.Sub(r.Call.Answered))/time.Microsecond)/1000, secs(h.RTPStart), secs(h.FirstAudio), h.Longest, strings.Join(gaps, "; "),
		cmp.Or(strings.Join(prompts, ", "), "no prompt recognised"), cmp.Or(name, "none"), secs(at), secs(r.FSBranched()), secs(h.Tone),
		h.Length.Seconds(), h.Received.Seconds(), r.Ended())
	if len(r.Notes) > 0 {
		s += "; " + strings.Join(r.Notes, "; ")
	}
	if d := r.During(h.Longest); d != "" {
		s += "; FreeSWITCH in the longest gap: " + d
	}
	return s + "; " + filepath.Dir(r.Call.Heard)
}

type row struct {
	cells []string
	gaps  string // the longest gaps and what FreeSWITCH did in them
}

// gapCell is a gap and, when asked, what FreeSWITCH did in it.
func gapCell(g itest.HearGap) string {
	if g.Len() <= 0 {
		return "under 0.2 s"
	}
	return g.String()
}

// worst is a scenario's row: the largest of each figure over its calls.
func worst(sc itest.HearScenario, runs []*itest.HearRun) row {
	first, branch, fsBranch, tone := time.Duration(-1), time.Duration(-1), time.Duration(-1), time.Duration(-1)
	var gap, waitGap itest.HearGap
	var gapRun, waitRun *itest.HearRun
	var names, ends []string
	noAudio, noBranch, noTone := 0, 0, 0
	for _, r := range runs {
		h := r.Heard
		if h.FirstAudio < 0 {
			noAudio++
		}
		first = max(first, h.FirstAudio)
		if gapRun == nil || h.Longest.Len() > gap.Len() {
			gap, gapRun = h.Longest, r
		}
		name, at := r.Branch()
		if name == "" {
			noBranch++
			at = h.Length
		} else if !slices.Contains(names, name) {
			names = append(names, name)
		}
		if w := h.LongestBefore(at); waitRun == nil || w.Len() > waitGap.Len() {
			waitGap, waitRun = w, r
		}
		branch = max(branch, at)
		fsBranch = max(fsBranch, r.FSBranched())
		if h.Tone < 0 {
			noTone++
		}
		tone = max(tone, h.Tone)
		if e := r.Ended(); !slices.Contains(ends, e) {
			ends = append(ends, e)
		}
	}
	of := func(v string, missing int) string {
		if missing > 0 && missing < len(runs) {
			v += fmt.Sprintf(" (none in %d of %d)", missing, len(runs))
		}
		return v
	}
	branchCell := "—"
	if len(names) > 0 {
		branchCell = secs(branch) + " (" + strings.Join(names, ", ") + ")"
	}
	gaps := "in the call " + gapCell(gap)
	if d := gapRun.During(gap); d != "" {
		gaps += ": " + d
	}
	if waitGap.Len() > 0 {
		gaps += "; while waiting " + gapCell(waitGap)
		if d := waitRun.During(waitGap); d != "" {
			gaps += ": " + d
		}
	}
	return row{cells: []string{
		sc.Name,
		of(secs(first), noAudio),
		gapCell(waitGap),
		gapCell(gap),
		of(branchCell, noBranch),
		secs(fsBranch),
		of(secs(tone), noTone),
		strings.Join(ends, "; "),
	}, gaps: gaps}
}
