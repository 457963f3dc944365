// Command eslapp runs CRM workflows for FreeSWITCH calls on the outbound
// Event Socket.
//
//	eslapp [serve] [-config FILE]   accept calls (the default)
//	eslapp check   [-config FILE]   check a configuration and exit
//	eslapp version                  print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/eslapp/eslapp/conf"
	"github.com/eslapp/eslapp/esl"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, runHooks{}))
}

// runHooks let tests drive serve without real signals or a fixed port.
type runHooks struct {
	ready   chan<- net.Addr  // receives the listener's address once serve accepts calls
	signals <-chan os.Signal // replaces SIGTERM/SIGINT delivery
	handler esl.Handler      // replaces the call handler
}

// run is main with its inputs made explicit, for tests.
func run(args []string, stdout, stderr io.Writer, hooks runHooks) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	flags := flag.NewFlagSet("eslapp "+cmd, flag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("config", conf.DefaultPath, "configuration `file`")
	flags.Usage = func() {
		fmt.Fprintf(stderr, "usage: eslapp [serve|check|version] [-config FILE]\n")
		flags.PrintDefaults()
	}
	switch cmd {
	case "serve", "check", "version":
	case "help", "-h", "--help":
		flags.Usage()
		return 0
	default:
		fmt.Fprintf(stderr, "eslapp: unknown command %q\n", cmd)
		flags.Usage()
		return 2
	}
	if err := flags.Parse(args); err != nil {
		return 2
	}
	explicit := false
	flags.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })

	if cmd == "version" {
		fmt.Fprintln(stdout, "eslapp", versionString())
		return 0
	}
	name, settings, err := load(*configPath, explicit)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if cmd == "check" {
		fmt.Fprintf(stdout, "%s: ok\n", name)
		return 0
	}
	return serve(settings, name, stderr, hooks)
}

// load reads the configuration. Without -config, a missing conf/eslapp.toml
// is not an error: the copy embedded in the binary is used.
func load(path string, explicit bool) (string, *Settings, error) {
	_, settings, err := loadConfig(path)
	if err == nil {
		return path, settings, nil
	}
	var ces ConfigErrors
	if !explicit && errors.As(err, &ces) && len(ces) == 1 && ces[0].Line == 0 && isNotExist(path) {
		name := "embedded " + conf.DefaultPath
		_, settings, err = parseConfig(name, conf.Default)
		return name, settings, err
	}
	return path, nil, err
}

func isNotExist(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, fs.ErrNotExist)
}

func newLogger(w io.Writer, s *Settings) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(s.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if s.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs the server until a signal. The first SIGTERM or SIGINT drains:
// new calls go back to the dialplan, running calls get drain_timeout to end.
// A second signal ends the calls at once.
func serve(s *Settings, configName string, stderr io.Writer, hooks runHooks) int {
	log := newLogger(stderr, s)
	log.Info("eslapp starting", "version", versionString(), "config", configName)

	handler := hooks.handler
	if handler == nil {
		handler = handBack
	}
	srv, err := esl.NewServer(esl.ServerConfig{
		Allow:          s.Allow,
		MaxCalls:       s.MaxCalls,
		CommandTimeout: s.CommandTimeout,
		Logger:         log,
		Handler:        handler,
	})
	if err != nil {
		log.Error("server", "err", err)
		return 1
	}
	// Keep-alive probes find a FreeSWITCH host that vanished without closing
	// its connections (power loss, a partition), which no read would notice.
	lc := net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3}}
	ln, err := lc.Listen(context.Background(), "tcp", s.Listen)
	if err != nil {
		log.Error("cannot listen", "addr", s.Listen, "err", err)
		return 1
	}
	signals := hooks.signals
	if signals == nil {
		c := make(chan os.Signal, 2)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(c)
		signals = c
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if hooks.ready != nil {
		hooks.ready <- ln.Addr()
	}

	select {
	case err := <-served:
		log.Error("listener failed", "err", err)
		srv.Close()
		return 1
	case sig := <-signals:
		log.Info("signal: draining; a second signal ends calls at once", "signal", sig.String(), "drain_timeout", s.DrainTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.DrainTimeout)
	defer cancel()
	go func() {
		select {
		case sig := <-signals:
			log.Warn("second signal: ending calls now", "signal", sig.String())
			srv.Close()
		case <-ctx.Done():
		}
	}()
	start := time.Now()
	ended, _ := srv.Shutdown(ctx)
	<-served
	log.Info("eslapp stopped", "drained_in", time.Since(start).Round(time.Millisecond), "calls_ended", ended)
	return 0
}

// handBack is the call handler until a flow engine is wired in: it hands
// every call straight back to the dialplan.
func handBack(ctx context.Context, s *esl.Session) {
	s.Logger().Info("call received; handing back to the dialplan",
		"destination", s.Data().Header("Caller-Destination-Number"))
	if err := s.Resume(ctx); err != nil {
		s.Logger().Warn("resume", "err", err)
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
