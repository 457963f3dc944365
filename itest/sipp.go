package itest

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SIPp runs SIPp with a scenario of itest/sipp: the callers of the
// end-to-end tests and of the PBX-cost tool.

// DTMFPcap is the RFC 2833 key "1" that uac_dtmf.xml replays, as Debian's
// sip-tester package installs it.
const DTMFPcap = "/usr/share/sip-tester/dtmf_2833_1.pcap"

// SIPpPath is SIPp's path (ESLAPP_SIPP, else sipp on PATH), or "" with the
// reason when it is missing.
func SIPpPath() (string, string) {
	if p := os.Getenv("ESLAPP_SIPP"); p != "" {
		return p, ""
	}
	p, err := exec.LookPath("sipp")
	if err != nil {
		return "", "SIPp is not installed (bash .ci/install-sipp installs Debian's sip-tester)"
	}
	return p, ""
}

// SIPp is one SIPp process: a scenario and its options.
type SIPp struct {
	Path     string        // the sipp binary
	Scenario string        // a file name in itest/sipp, or a path
	Remote   string        // host:port; "" for a server scenario
	LocalIP  string        // -i
	Port     int           // -p; 0 lets SIPp choose
	Args     []string      // more options (-s, -key, -d, -m, -r, ...)
	Timeout  time.Duration // the whole run; default 60 s
	Dir      string        // where SIPp writes its logs
	Messages bool          // keep every SIP message (-trace_msg): for single calls, not load
}

// SIPpResult is how a SIPp run ended. SIPp exits 0 only when every call of
// the run succeeded.
type SIPpResult struct {
	Err        error
	Output     string // the statistics screen
	Messages   string // -trace_msg, when asked for
	Errors     string // -trace_err
	Successful int    // calls that reached the end of the scenario
	Failed     int    // calls that did not
	// CallLength is the mean length of the run's successful calls, from
	// the INVITE to the end of the scenario (SIPp's CallLength(C)); 0
	// when SIPp did not report it.
	CallLength time.Duration
}

func (r SIPpResult) String() string {
	return fmt.Sprintf("sipp: %v (%d successful, %d failed calls)\n--- errors (last 4000 bytes)\n%s\n--- messages (last 4000 bytes)\n%s",
		r.Err, r.Successful, r.Failed, tail(r.Errors, 4000), tail(r.Messages, 4000))
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Start runs SIPp; wait returns its result.
func (s SIPp) Start(ctx context.Context) (wait func() SIPpResult) {
	fail := func(err error) func() SIPpResult { return func() SIPpResult { return SIPpResult{Err: err} } }
	scenario := s.Scenario
	if !filepath.IsAbs(scenario) {
		root, err := RepoRoot()
		if err != nil {
			return fail(err)
		}
		scenario = filepath.Join(root, "itest", "sipp", scenario)
	}
	mediaPort, err := FreeUDPPorts(s.LocalIP, 4)
	if err != nil {
		return fail(err)
	}
	name := strings.TrimSuffix(filepath.Base(s.Scenario), ".xml") + fmt.Sprintf("-%d", rand.IntN(1e6))
	msgFile := filepath.Join(s.Dir, name+"-messages.log")
	errFile := filepath.Join(s.Dir, name+"-errors.log")
	statFile := filepath.Join(s.Dir, name+"-stats.csv")
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	var args []string
	if s.Remote != "" {
		args = append(args, s.Remote)
	}
	args = append(args,
		"-sf", scenario,
		"-i", s.LocalIP,
		"-mp", strconv.Itoa(mediaPort),
		"-nostdin",
		"-timeout", strconv.Itoa(int(timeout.Seconds())), "-timeout_error",
		"-trace_err", "-error_file", errFile,
		"-trace_stat", "-stf", statFile, "-fd", "3600",
	)
	if s.Messages {
		args = append(args, "-trace_msg", "-message_file", msgFile)
	}
	if s.Port != 0 {
		args = append(args, "-p", strconv.Itoa(s.Port))
	}
	args = append(args, s.Args...)
	cmd := exec.CommandContext(ctx, s.Path, args...)
	cmd.Dir = s.Dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	return func() SIPpResult {
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%s exited %d (0: every call succeeded; 1: a call failed; 97/99: stopped early; 255: fatal)", s.Scenario, ee.ExitCode())
		}
		msgs, _ := os.ReadFile(msgFile)
		errs, _ := os.ReadFile(errFile)
		r := SIPpResult{Err: err, Output: out.String(), Messages: string(msgs), Errors: string(errs)}
		r.Successful, r.Failed, r.CallLength = sippCounts(statFile)
		return r
	}
}

// sippCounts reads the cumulative successful and failed calls and the
// mean call length from the last line of SIPp's statistics file
// (-trace_stat; ';'-separated, with a header line naming the columns). -1
// (and 0) when the file cannot be read.
func sippCounts(path string) (successful, failed int, length time.Duration) {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1, -1, 0
	}
	r := csv.NewReader(bytes.NewReader(b))
	r.Comma, r.FieldsPerRecord, r.LazyQuotes = ';', -1, true
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		return -1, -1, 0
	}
	cell := func(name string) string {
		for i, h := range rows[0] {
			if h == name && i < len(rows[len(rows)-1]) {
				return rows[len(rows)-1][i]
			}
		}
		return ""
	}
	count := func(name string) int {
		if v, err := strconv.Atoi(cell(name)); err == nil {
			return v
		}
		return -1
	}
	return count("SuccessfulCall(C)"), count("FailedCall(C)"), sippDuration(cell("CallLength(C)"))
}

// sippDuration reads SIPp's statistics durations, "HH:MM:SS:micros"
// ("00:00:05:299000"); 0 when s is not one.
func sippDuration(s string) time.Duration {
	f := strings.Split(s, ":")
	if len(f) != 4 {
		return 0
	}
	var n [4]int
	for i, v := range f {
		x, err := strconv.Atoi(v)
		if err != nil || x < 0 {
			return 0
		}
		n[i] = x
	}
	return time.Duration(n[0])*time.Hour + time.Duration(n[1])*time.Minute + time.Duration(n[2])*time.Second + time.Duration(n[3])*time.Microsecond
}

// FreeUDPPorts finds n consecutive UDP ports that ip can bind (SIPp takes
// the media port and the next ones for RTCP and video), above the RTP ports
// of conf/freeswitch (16384-32768): SIPp may share FreeSWITCH's addresses.
func FreeUDPPorts(ip string, n int) (int, error) {
	for range 200 {
		port := 40000 + 4*rand.IntN(5000)
		var conns []net.PacketConn
		ok := true
		for p := port; p < port+n; p++ {
			c, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(p)))
			if err != nil {
				ok = false
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
		if ok {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no %d free UDP ports on %s", n, ip)
}

// LocalIPFor is the local address this host uses to reach addr (no packet
// is sent).
func LocalIPFor(addr string) (string, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// RepoRoot is the repository's top directory: the nearest directory up
// from the working directory that holds go.mod and itest/sipp.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "itest", "sipp")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the eslapp repository (no go.mod with itest/sipp above the working directory)")
		}
		dir = parent
	}
}
