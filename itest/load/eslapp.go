package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// eslappProc is eslapp running as a child process, on its own config.
type eslappProc struct {
	cmd         *exec.Cmd
	listen      string // where FreeSWITCH connects
	metrics     string // host:port of /metrics
	mu          sync.Mutex
	logTail     []string
	warnings    int
	firstWarns  []string // the first few warning and error lines, for the report
	done        chan struct{}
	exitErr     error
	interesting *regexp.Regexp
}

var addrRE = regexp.MustCompile(`addr=(\S+)`)

// startEslapp writes a configuration for the run and starts eslapp on it.
func startEslapp(ctx context.Context, bin, dir, crmURL, sounds string, stepTimeout time.Duration, http2 string, maxConnecting int, env []string) (*eslappProc, error) {
	server := ""
	if maxConnecting > 0 {
		server = fmt.Sprintf("max_connecting = %d\n", maxConnecting)
	}
	cfg := fmt.Sprintf(`[server]
%s
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"
pprof = true
max_calls = 0
drain_timeout = "10s"
command_timeout = "10s"

[log]
level = "info"

[sounds]
dir = %q

[integrations.load]
base_url = %q
timeout_ms = %d
retries = 1
invalid_workflow_status = [404]
breaker_failures = 0
http2 = %q

[integrations.load.workflows.lookup]
`, server, sounds, crmURL, stepTimeout.Milliseconds(), http2)
	path := filepath.Join(dir, "eslapp.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	p := &eslappProc{done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, bin, "serve", "-config", path)
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	go p.readLog(stderr, ready)
	go func() { p.exitErr = p.cmd.Wait(); close(p.done) }()
	select {
	case <-ready:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("eslapp exited: %v\n%s", p.exitErr, p.tail())
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		return nil, fmt.Errorf("eslapp did not start\n%s", p.tail())
	}
}

// readLog follows eslapp's log: the addresses it listens on, a count of
// warnings and errors, and the last lines for reports.
func (p *eslappProc) readLog(r io.Reader, ready chan<- struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			p.warnings++
			if len(p.firstWarns) < 5 {
				p.firstWarns = append(p.firstWarns, line)
			}
		}
		p.logTail = append(p.logTail, line)
		if len(p.logTail) > 40 {
			p.logTail = p.logTail[1:]
		}
		if m := addrRE.FindStringSubmatch(line); m != nil {
			switch {
			case strings.Contains(line, "listening for FreeSWITCH"):
				p.listen = m[1]
			case strings.Contains(line, `msg=metrics`):
				p.metrics = m[1]
			}
		}
		if !signalled && p.listen != "" && p.metrics != "" {
			signalled = true
			close(ready)
		}
		p.mu.Unlock()
	}
}

func (p *eslappProc) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logTail, "\n")
}

// stop sends SIGTERM and waits for eslapp to drain and exit.
func (p *eslappProc) stop() error {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
		return p.exitErr
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		return fmt.Errorf("eslapp did not stop")
	}
}

// sample is a reading of eslapp's metrics.
type sample struct {
	At          time.Time
	Goroutines  float64
	RSS         float64
	CPUSeconds  float64
	ActiveCalls float64
	HeapInuse   float64
	StackInuse  float64
	OpenFDs     float64
	// Refused is eslapp_connections_refused_total by reason.
	Refused map[string]float64
}

func (p *eslappProc) sample() (sample, error) {
	s := sample{At: time.Now()}
	req, _ := http.NewRequest("GET", "http://"+p.metrics+"/metrics", nil)
	req.Header.Set("Accept-Encoding", "identity") // no gzip: sampling must cost eslapp little
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			s.Goroutines = v
		case "process_resident_memory_bytes":
			s.RSS = v
		case "process_cpu_seconds_total":
			s.CPUSeconds = v
		case "eslapp_active_calls":
			s.ActiveCalls = v
		case "go_memstats_heap_inuse_bytes":
			s.HeapInuse = v
		case "go_memstats_stack_inuse_bytes":
			s.StackInuse = v
		case "process_open_fds":
			s.OpenFDs = v
		default:
			if reason, ok := strings.CutPrefix(name, `eslapp_connections_refused_total{reason="`); ok {
				if s.Refused == nil {
					s.Refused = map[string]float64{}
				}
				s.Refused[strings.TrimSuffix(reason, `"}`)] = v
			}
		}
	}
	return s, sc.Err()
}

// profile saves one of eslapp's /debug/pprof/ profiles to path.
func (p *eslappProc) profile(what, path string) error {
	resp, err := http.Get("http://" + p.metrics + "/debug/pprof/" + what)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}
