package itest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Eslapp is eslapp running as a child process, for the end-to-end tests and
// the PBX-cost tool.

// BuildEslapp builds eslapp from this checkout into dir and returns the
// binary's path.
func BuildEslapp(ctx context.Context, dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is not on PATH (or set ESLAPP_BIN to an eslapp binary): %w", err)
	}
	bin := filepath.Join(dir, "eslapp")
	cmd := exec.CommandContext(ctx, goCmd, "build", "-buildvcs=false", "-o", bin, "./cmd/eslapp")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/eslapp: %w\n%s", err, out)
	}
	return bin, nil
}

// Eslapp is one eslapp process.
type Eslapp struct {
	Metrics string // its metrics address, host:port
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

// StartEslapp starts bin serve -config cfgPath in dir, logging to logPath,
// with env (NAME=value) added to its environment, and waits until it
// serves /metrics on metrics (it binds the Event Socket listener first).
// Stop ends it.
func StartEslapp(ctx context.Context, bin, dir, cfgPath, metrics, logPath string, env ...string) (*Eslapp, error) {
	p := &Eslapp{Metrics: metrics, LogPath: logPath, done: make(chan struct{})}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(bin, "serve", "-config", cfgPath)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = childAttr()
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	go func() { p.err = p.cmd.Wait(); logFile.Close(); close(p.done) }()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err == nil {
			resp.Body.Close()
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("eslapp exited: %v\n%s", p.err, p.Tail(40))
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			p.Stop()
			return nil, fmt.Errorf("eslapp did not serve /metrics on %s: %w\n%s", metrics, ctx.Err(), p.Tail(40))
		}
	}
}

// PID is the process id.
func (p *Eslapp) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited; Err says how.
func (p *Eslapp) Done() <-chan struct{} { return p.done }
func (p *Eslapp) Err() error            { return p.err }

// Stop asks eslapp to drain (SIGTERM) and kills it after 15 s.
func (p *Eslapp) Stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// WaitSocketless waits until eslapp's inbound connections to FreeSWITCH
// are up and subscribed (eslapp_socketless_connected{freeswitch} 1 for
// every host): before that, a socket-less call is heard by no one and
// waits for its pick-up net.
func (p *Eslapp) WaitSocketless(ctx context.Context) error {
	for {
		lines, err := p.MetricLines("eslapp_socketless_connected{")
		up := err == nil
		for _, l := range lines {
			up = up && strings.HasSuffix(l, " 1")
		}
		if up {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("eslapp exited: %v\n%s", p.err, p.Tail(40))
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("eslapp did not connect to FreeSWITCH's event socket: %w (%v)\n%s", ctx.Err(), err, p.Tail(40))
		}
	}
}

// Kill ends eslapp at once (SIGKILL), as a crash would, and waits for it.
func (p *Eslapp) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Tail is the last n lines of eslapp's log.
func (p *Eslapp) Tail(n int) string { return fileTail(p.LogPath, n) }

// MetricLines returns eslapp's metrics whose names start with prefix.
func (p *Eslapp) MetricLines(prefix string) ([]string, error) {
	resp, err := http.Get("http://" + p.Metrics + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no metric " + prefix)
	}
	return out, nil
}

// FreeTCPAddr is a loopback address nothing listens on now.
func FreeTCPAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func fileTail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
