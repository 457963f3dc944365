//go:build integration

package itest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTwoFreeSWITCH starts two FreeSWITCH processes on the one
// conf/freeswitch tree, side by side as in a pool, each with its own
// directory, ports, RTP range, socket list and call table, and calls the
// pure-dialplan extension 7090 on each. Their ports are not the defaults,
// so the test runs beside the end-to-end tests' FreeSWITCH.
func TestTwoFreeSWITCH(t *testing.T) {
	bin := os.Getenv("ESLAPP_FREESWITCH")
	if bin == "" {
		const why = "two FreeSWITCH processes need a FreeSWITCH binary: set ESLAPP_FREESWITCH (the kit's install prints it); see itest/README.md"
		if os.Getenv("CI") != "" {
			t.Fatal("CI: " + why)
		}
		t.Skip(why)
	}
	sipp, why := sippPath()
	if sipp == "" {
		t.Skip(why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	ports := freeTCPUDPPorts(t, "127.0.0.1", 4)
	specs := []FreeSWITCHOptions{
		{SIPPort: ports[0], ESLPort: ports[1], RTPStart: 12000, RTPEnd: 12999, Sockets: "127.0.0.1:18084|127.0.0.1:18085"},
		{SIPPort: ports[2], ESLPort: ports[3], RTPStart: 13000, RTPEnd: 13999, Sockets: "127.0.0.1:18085|127.0.0.1:18084"},
	}
	fss := make([]*FreeSWITCH, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i := range specs {
		o := &specs[i]
		o.Binary, o.Dir = bin, t.TempDir()
		wg.Add(1)
		go func() {
			defer wg.Done()
			fss[i], errs[i] = StartFreeSWITCH(ctx, *o)
		}()
	}
	wg.Wait()
	for i, fs := range fss {
		if fs != nil {
			t.Cleanup(fs.Stop) // before its TempDir goes
		}
		if errs[i] != nil {
			t.Fatalf("FreeSWITCH %d: %v", i, errs[i])
		}
	}
	if fss[0].CoreDB == fss[1].CoreDB {
		t.Errorf("both FreeSWITCH processes use the call table %s", fss[0].CoreDB)
	}

	// Each answers on its own Event Socket, runs its own SIP profile, and
	// has the settings it was given.
	conns := make([]*InboundConn, len(fss))
	for i, fs := range fss {
		o := specs[i]
		t.Logf("FreeSWITCH %d: pid %d, SIP %s, ESL %s, RTP %d-%d, sockets %s, core db %s", i, fs.PID(), fs.SIP, fs.ESL, fs.RTPStart, fs.RTPEnd, fs.Sockets, fs.CoreDB)
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := DialInbound(dctx, fs.ESL, fs.Password)
		dcancel()
		if err != nil {
			t.Fatalf("FreeSWITCH %d: its Event Socket %s: %v", i, fs.ESL, err)
		}
		defer c.Close()
		conns[i] = c
		// "eslapp  profile  sip:mod_sofia@127.0.0.1:PORT  RUNNING (0)"
		status, err := c.API("sofia status")
		running := false
		for _, line := range strings.Split(status, "\n") {
			f := strings.Fields(line)
			running = running || len(f) >= 4 && f[0] == "eslapp" && f[2] == fmt.Sprintf("sip:mod_sofia@127.0.0.1:%d", o.SIPPort) && f[3] == "RUNNING"
		}
		if err != nil || !running {
			t.Errorf("FreeSWITCH %d: the SIP profile eslapp does not run on port %d (%v):\n%s", i, o.SIPPort, err, status)
		}
		for name, want := range map[string]string{
			"sip_port": strconv.Itoa(o.SIPPort), "esl_listen_port": strconv.Itoa(o.ESLPort),
			"rtp_start_port": strconv.Itoa(o.RTPStart), "rtp_end_port": strconv.Itoa(o.RTPEnd),
			"eslapp_sockets": o.Sockets, "core_db_name": fs.CoreDB,
		} {
			if got, err := c.API("global_getvar " + name); err != nil || got != want {
				t.Errorf("FreeSWITCH %d: %s = %q (%v), want %q", i, name, got, err, want)
			}
		}
		if _, err := c.Command("event plain CHANNEL_HANGUP_COMPLETE"); err != nil {
			t.Fatalf("FreeSWITCH %d: %v", i, err)
		}
	}

	// A call to 7090 on each, at the same time: the prompt, OnSuccess, the
	// agent stand-in's BYE. Each FreeSWITCH sees its own caller only, with
	// media on a port of its range.
	dir := t.TempDir()
	waits := make([]func() SIPpResult, len(fss))
	for i, fs := range fss {
		waits[i] = sippRun{scenario: "uac_wait_bye.xml", remote: fs.SIP, localIP: "127.0.0.1",
			args: []string{"-s", "7090", "-key", "ani", fmt.Sprintf("123555017%d", i), "-m", "1"}, timeout: 60 * time.Second}.
			start(ctx, t, sipp, dir)
	}
	for i, wait := range waits {
		if res := wait(); res.Err != nil || res.Successful != 1 {
			t.Errorf("FreeSWITCH %d: the call to 7090: %v\nits console:\n%s", i, res, fss[i].ConsoleTail(30))
		}
	}
	for i, c := range conns {
		ev, err := nextEvent(ctx, c, 10*time.Second)
		if err != nil {
			t.Errorf("FreeSWITCH %d: no CHANNEL_HANGUP_COMPLETE: %v", i, err)
			continue
		}
		ani := fmt.Sprintf("123555017%d", i)
		port, _ := strconv.Atoi(ev.Get("variable_local_media_port"))
		switch {
		case ev.Get("Caller-Caller-ID-Number") != ani:
			t.Errorf("FreeSWITCH %d: hangup of caller %q, want %s", i, ev.Get("Caller-Caller-ID-Number"), ani)
		case ev.Get("variable_wfe_branch") != "OnSuccess" || ev.Get("variable_harness_agent") != "1000":
			t.Errorf("FreeSWITCH %d: branch %q, agent %q, want OnSuccess and 1000", i, ev.Get("variable_wfe_branch"), ev.Get("variable_harness_agent"))
		case port < specs[i].RTPStart || port > specs[i].RTPEnd:
			t.Errorf("FreeSWITCH %d: media on port %q, outside its range %d-%d", i, ev.Get("variable_local_media_port"), specs[i].RTPStart, specs[i].RTPEnd)
		default:
			t.Logf("FreeSWITCH %d: caller %s ended on %s at the agent, media port %d", i, ani, ev.Get("variable_wfe_branch"), port)
		}
	}
}

// nextEvent waits at most d for the connection's next event.
func nextEvent(ctx context.Context, c *InboundConn, d time.Duration) (Event, error) {
	type result struct {
		ev  Event
		err error
	}
	ch := make(chan result, 1)
	go func() {
		ev, err := c.Next()
		ch <- result{ev, err}
	}()
	select {
	case r := <-ch:
		return r.ev, r.err
	case <-time.After(d):
		c.Close() // ends Next
		return Event{}, fmt.Errorf("none in %v", d)
	case <-ctx.Done():
		c.Close()
		return Event{}, ctx.Err()
	}
}

// freeTCPUDPPorts finds n distinct ports that ip can bind for both TCP and
// UDP, below the RTP ports (16384 up) and the kernel's ephemeral ports.
func freeTCPUDPPorts(t *testing.T, ip string, n int) []int {
	t.Helper()
	var ports []int
	for range 1000 {
		if len(ports) == n {
			return ports
		}
		p := 10000 + rand.IntN(2000)
		addr := net.JoinHostPort(ip, strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		dup := false
		for _, q := range ports {
			dup = dup || q == p
		}
		if !dup {
			ports = append(ports, p)
		}
	}
	t.Fatalf("no %d free TCP and UDP ports on %s", n, ip)
	return nil
}
