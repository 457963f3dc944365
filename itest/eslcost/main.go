// Command eslcost measures what the Event Socket itself costs FreeSWITCH,
// apart from any call: the CPU FreeSWITCH spends per command eslapp's kind
// sends on an inbound connection, and per byte of a command's header
// block (mod_event_socket's read_packet reads the header block one byte
// per recv, the body in one). It starts FreeSWITCH on a temporary copy of
// conf/freeswitch, connects once, and times blocks of identical commands,
// each waiting for its reply as eslapp's do, by FreeSWITCH's utime +
// stime (/proc/PID/stat); blocks alternate over several rounds and the
// report gives medians, with FreeSWITCH's idle CPU over the same time
// taken away.
//
//	go run ./itest/eslcost -freeswitch /opt/freeswitch/bin/freeswitch
//
// See BENCHMARKS.md, "Capacity to the limit (issue 22)".
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/eslapp/eslapp/itest"
)

// probe is one kind of command, sent n times per block.
type probe struct {
	name string
	cmds func(i int) []string // the commands of one repetition
}

func main() {
	var (
		freeswitch = flag.String("freeswitch", os.Getenv("ESLAPP_FREESWITCH"), "the freeswitch binary (default $ESLAPP_FREESWITCH)")
		n          = flag.Int("n", 4000, "repetitions per block")
		rounds     = flag.Int("rounds", 3, "rounds (the blocks alternate in each)")
		pad        = flag.Int("pad", 500, "header bytes the long command adds")
	)
	flag.Parse()
	if *freeswitch == "" {
		fmt.Fprintln(os.Stderr, "eslcost: -freeswitch (or $ESLAPP_FREESWITCH) names the freeswitch binary")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *freeswitch, *n, *rounds, *pad); err != nil {
		fmt.Fprintln(os.Stderr, "eslcost:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin string, n, rounds, pad int) error {
	dir, err := os.MkdirTemp("", "eslapp-eslcost-")
	if err != nil {
		return err
	}
	sipPort, err := freePort()
	if err != nil {
		return err
	}
	eslPort, err := freePort()
	if err != nil {
		return err
	}
	fs, err := itest.StartFreeSWITCH(ctx, itest.FreeSWITCHOptions{
		Binary: bin, Dir: filepath.Join(dir, "freeswitch"), SIPPort: sipPort, ESLPort: eslPort, LogLevel: "warning",
	})
	if err != nil {
		return err
	}
	defer fs.Stop()
	conn, err := itest.DialInbound(ctx, fs.ESL, fs.Password)
	if err != nil {
		return err
	}
	defer conn.Close()
	fmt.Printf("FreeSWITCH pid %d in %s; %d repetitions per block, %d rounds\n", fs.PID(), dir, n, rounds)

	const uuid = "0f3e2c1a-7b6d-4e5f-9a8b-1c2d3e4f5a6b" // a UUID-long word, as eslapp's commands carry
	long := strings.Repeat("a", pad)
	probes := []probe{
		{"api echo a", func(int) []string { return []string{"api echo a"} }},
		{fmt.Sprintf("api echo (+%d header bytes)", pad), func(int) []string { return []string{"api echo a" + long} }},
		{"api sched_del eslapp-net-UUID (nothing to delete)", func(int) []string { return []string{"api sched_del eslapp-net-" + uuid} }},
		{"filter Unique-ID UUID, then filter delete", func(i int) []string {
			id := uuid[:len(uuid)-6] + fmt.Sprintf("%06d", i%1000000)
			return []string{"filter Unique-ID " + id, "filter delete Unique-ID " + id}
		}},
	}
	idle := func(d time.Duration) (time.Duration, error) {
		before, err := itest.CPUTime(fs.PID())
		if err != nil {
			return 0, err
		}
		time.Sleep(d)
		after, err := itest.CPUTime(fs.PID())
		return after - before, err
	}
	results := make([][]float64, len(probes)) // µs per repetition, per round
	bytesPer := make([]int, len(probes))
	for r := range rounds {
		order := slices.Clone(probes)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, p := range order {
			i := slices.IndexFunc(probes, func(q probe) bool { return q.name == p.name })
			bytesPer[i] = 0
			for _, c := range p.cmds(0) {
				bytesPer[i] += len(c) + 2 // the blank line that ends it
			}
			before, err := itest.CPUTime(fs.PID())
			if err != nil {
				return err
			}
			start := time.Now()
			for k := range n {
				for _, c := range p.cmds(k) {
					if _, err := conn.Command(c); err != nil {
						return fmt.Errorf("%s: %w", c, err)
					}
				}
			}
			wall := time.Since(start)
			after, err := itest.CPUTime(fs.PID())
			if err != nil {
				return err
			}
			base, err := idle(wall)
			if err != nil {
				return err
			}
			us := float64(after-before-base) / float64(time.Microsecond) / float64(n)
			results[i] = append(results[i], us)
			fmt.Printf("  round %d, %s: %.1f µs of FreeSWITCH CPU per repetition (%d header bytes), %v\n", r+1, p.name, us, bytesPer[i], wall.Round(time.Millisecond))
		}
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| command\t header bytes\t FreeSWITCH µs\t rounds\t")
	fmt.Fprintln(tw, "|---\t---\t---\t---\t")
	med := make([]float64, len(probes))
	for i, p := range probes {
		med[i] = median(results[i])
		var rs []string
		for _, v := range results[i] {
			rs = append(rs, strconv.FormatFloat(v, 'f', 1, 64))
		}
		fmt.Fprintf(tw, "| %s\t %d\t %.1f\t %s\t\n", p.name, bytesPer[i], med[i], strings.Join(rs, " "))
	}
	tw.Flush()
	fmt.Printf("\nper header byte: %.2f µs (the long echo against the short, %d bytes apart)\n", (med[1]-med[0])/float64(pad), pad)
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// freePort finds a TCP port free on loopback now (itest.FreeTCPAddr).
func freePort() (int, error) {
	addr, err := itest.FreeTCPAddr()
	if err != nil {
		return 0, err
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(port)
}
