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
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/eslapp/eslapp/callflow"
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
	switch cmd {
	case "graph":
		return graphCmd(args, stdout, stderr)
	case "try":
		return tryCmd(args, stdout, stderr)
	}
	flags := flag.NewFlagSet("eslapp "+cmd, flag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("config", conf.DefaultPath, "configuration `file`")
	flags.Usage = func() {
		fmt.Fprintf(stderr, "usage: eslapp [serve|check|version] [-config FILE]\n       eslapp graph [-config FILE] [-flow NAME] [-format mermaid|dot|svg]\n       eslapp try [-config FILE] (-flow NAME | -dialplan VARS.toml) [-var K=V ...] [-crm fixture|live] [-expect BRANCH]\n")
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
	if cmd == "check" {
		src, err := load(*configPath, explicit)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		b, err := src.build(nil, nil)
		if b != nil && b.warnings != nil {
			fmt.Fprintln(stderr, b.warnings)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		b.close()
		fmt.Fprintf(stdout, "%s: ok\n", src.name)
		if sl := src.set.Socketless; sl != nil {
			// The connection's state, for the operator: not a
			// configuration error (FreeSWITCH may start later; eslapp
			// keeps trying, and calls go by the dialplan's safety net
			// meanwhile).
			if err := esl.CheckInbound(sl.Address, sl.Password.Reveal(), src.set.CommandTimeout); err != nil {
				fmt.Fprintf(stdout, "socket-less: FreeSWITCH's event socket at %s: not usable: %v\n", sl.Address, err)
			} else {
				fmt.Fprintf(stdout, "socket-less: FreeSWITCH's event socket at %s: logged in\n", sl.Address)
			}
		}
		return 0
	}
	return serve(*configPath, explicit, stderr, hooks)
}

// load reads the configuration. Without -config, a missing conf/eslapp.toml
// is not an error: the copy embedded in the binary is used.
func load(path string, explicit bool) (*source, error) {
	if !explicit && isNotExist(path) {
		return parseSource("embedded "+conf.DefaultPath, conf.Default, ".")
	}
	return readConfig(path)
}

func isNotExist(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, fs.ErrNotExist)
}

// newLogger logs to w at the configured level and format. The level is
// level's, which a reload may change.
func newLogger(w io.Writer, s *Settings, level *slog.LevelVar) *slog.Logger {
	setLogLevel(level, s.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if s.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs the server until a signal. SIGHUP reloads the configuration
// (reload.go). The first SIGTERM or SIGINT drains: new calls go back to the
// dialplan, running calls get drain_timeout to end; a second hands the
// calls left back at once, a third closes every connection.
func serve(configPath string, explicit bool, stderr io.Writer, hooks runHooks) int {
	// Signals first: a SIGHUP while eslapp starts must not end it (the
	// default action); it is handled once serving.
	signals := hooks.signals
	if signals == nil {
		c := make(chan os.Signal, 4)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		defer signal.Stop(c)
		signals = c
	}
	// In order: the configuration, read once; the logger and the metrics it
	// asks for; then the services, which report to both from the start.
	src, err := load(configPath, explicit)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	s := src.set
	level := new(slog.LevelVar)
	log := newLogger(stderr, s, level)
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(s.GoMaxProcs) // 0 leaves Go's default: every CPU
	}
	var reg *prometheus.Registry
	var metrics *callflow.Metrics
	if s.MetricsListen != "" {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		metrics = callflow.NewMetrics(reg)
	}
	b, err := src.build(log, metrics)
	if err != nil {
		fmt.Fprintln(stderr, err)
		b.close()
		return 1
	}
	log.Info("eslapp starting", "version", versionString(), "config", src.name, "sounds", b.render.SoundsDir, "gomaxprocs", runtime.GOMAXPROCS(0))
	if b.warnings != nil {
		for _, w := range b.warnings.lines {
			log.Warn("configuration", "warning", w.text)
		}
	}
	var metricsSrv *http.Server
	if reg != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		if s.Pprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		metricsSrv = newMetricsServer(mux, s.Pprof)
	}
	// Every call runs on the configuration current when it starts; SIGHUP
	// replaces it for the calls after (reload.go).
	gens := &generations{}
	handler, refuse, filter := gens.handle, esl.RefuseFunc(gens.refuse), esl.VarFilter(gens.channelVars)
	if hooks.handler != nil {
		handler, refuse, filter = hooks.handler, nil, nil
	}
	srv, err := esl.NewServer(esl.ServerConfig{
		Allow:           s.Allow,
		MaxCalls:        s.MaxCalls,
		CommandTimeout:  s.CommandTimeout,
		MaxConnecting:   s.MaxConnecting,
		MaxConnectBytes: s.MaxConnectBytes,
		VarFilter:       filter,
		Logger:          log,
		Handler:         handler,
		Refuse:          refuse,
	})
	if err != nil {
		log.Error("server", "err", err)
		return 1
	}
	var inbound *esl.Inbound
	if sl := s.Socketless; sl != nil {
		inbound, err = esl.NewInbound(esl.InboundConfig{
			Address: sl.Address, Password: sl.Password.Reveal(), Subclass: sl.Subclass,
			CommandTimeout: s.CommandTimeout, ProbeEvery: sl.ProbeEvery, MaxBackoff: sl.MaxBackoff,
			MaxCalls: s.MaxCalls, VarFilter: esl.VarFilter(gens.channelVars), Logger: log,
			Handler: gens.handleInbound, Refuse: gens.refuseInbound,
		})
		if err != nil {
			log.Error("socket-less connection", "err", err)
			b.close()
			return 1
		}
		b.engine.Late = inbound // late results go to the agent over it
	}
	engine, err := callflow.New(b.engine)
	if err != nil {
		log.Error("engine", "err", err)
		b.close()
		return 1
	}
	gens.replace(&generation{src: src, b: b, engine: engine})
	defer func() { gens.p.Load().close() }()
	rl := newReloader(&reloader{path: configPath, explicit: explicit, log: log, level: level, metrics: metrics,
		gens: gens, srv: srv, inbound: inbound}, reg)
	rl.drain.Store(int64(s.DrainTimeout))
	if reg != nil {
		registerServerMetrics(reg, srv, inbound)
		if inbound != nil {
			registerInboundMetrics(reg, inbound)
		}
	}
	// No TCP keep-alive: every wait on FreeSWITCH is bounded (commands by
	// command_timeout, applications by what they play), so a host that
	// vanished is found without probes, and a call's socket costs four
	// setsockopt calls fewer.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", s.Listen)
	if err != nil {
		log.Error("cannot listen", "addr", s.Listen, "err", err)
		return 1
	}
	if metricsSrv != nil {
		mln, err := net.Listen("tcp", s.MetricsListen)
		if err != nil {
			log.Error("cannot listen for metrics", "addr", s.MetricsListen, "err", err)
			_ = ln.Close()
			return 1
		}
		go func() { _ = metricsSrv.Serve(newBoundedListener(mln, maxMetricsConns)) }()
		defer metricsSrv.Close()
		log.Info("metrics", "addr", mln.Addr().String())
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if inbound != nil {
		log.Info("socket-less calls: connecting to FreeSWITCH's event socket", "addr", s.Socketless.Address, "subclass", s.Socketless.Subclass)
		go inbound.Serve()
	}
	if hooks.ready != nil {
		hooks.ready <- ln.Addr()
	}

	for stop := false; !stop; {
		select {
		case err := <-served:
			log.Error("listener failed", "err", err)
			srv.Close()
			if inbound != nil {
				inbound.Close()
			}
			return 1
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				log.Info("signal: reloading the configuration", "config", src.name)
				rl.reload()
				continue
			}
			log.Info("signal: draining; a second signal hands the calls back at once", "signal", sig.String(), "drain_timeout", rl.drainTimeout())
			stop = true
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), rl.drainTimeout())
	defer cancel()
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		// A second signal ends the drain now: the calls left are handed
		// back (OnError, "eslapp is shutting down") as at the deadline. A
		// third closes every connection without a word.
		next := func() (os.Signal, bool) {
			for {
				select {
				case sig := <-signals:
					if sig == syscall.SIGHUP {
						log.Warn("signal: no reload while shutting down", "signal", sig.String())
						continue
					}
					return sig, true
				case <-stopped:
					return nil, false
				}
			}
		}
		sig, ok := next()
		if !ok {
			return
		}
		log.Warn("second signal: handing the calls back now", "signal", sig.String())
		cancel()
		if sig, ok = next(); ok {
			log.Warn("third signal: closing every connection", "signal", sig.String())
			srv.Close()
			if inbound != nil {
				inbound.Close()
			}
		}
	}()
	start := time.Now()
	inboundEnded := make(chan int, 1)
	go func() {
		n := 0
		if inbound != nil {
			n = inbound.Shutdown(ctx)
		}
		inboundEnded <- n
	}()
	ended, _ := srv.Shutdown(ctx)
	ended += <-inboundEnded
	<-served
	// Late results still on their way: a few seconds to deliver them.
	if g := gens.p.Load(); g.b.crm != nil {
		lctx, lcancel := context.WithTimeout(context.Background(), 5*time.Second)
		if n := g.b.crm.WaitLate(lctx); n > 0 {
			log.Warn("late results still pending at exit are dropped", "requests", n)
		}
		lcancel()
	}
	log.Info("eslapp stopped", "drained_in", time.Since(start).Round(time.Millisecond), "calls_ended", ended)
	return 0
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

// registerServerMetrics exports what the listener refused before a call
// could start.
func registerServerMetrics(reg prometheus.Registerer, srv *esl.Server, inbound *esl.Inbound) {
	refused := func(reason string, f func(esl.ServerStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "eslapp_connections_refused_total",
			Help:        "Connections closed before a call started: source not allowed, too many connecting, no valid connect reply.",
			ConstLabels: prometheus.Labels{"reason": reason},
		}, func() float64 { return float64(f(srv.Stats())) })
	}
	reg.MustRegister(
		refused("source", func(st esl.ServerStats) uint64 { return st.RefusedSource }),
		refused("max_connecting", func(st esl.ServerStats) uint64 { return st.RefusedConnecting }),
		refused("connect_failed", func(st esl.ServerStats) uint64 { return st.ConnectFailed }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eslapp_connections_connecting", Help: "Connections accepted that have not completed connect.",
		}, func() float64 { return float64(srv.Stats().Connecting) }),
	)
	// The wire counters add the calls' sockets and the shared inbound
	// connection: what FreeSWITCH reads and writes for eslapp in all.
	wire := func(name, help string, f func(esl.WireStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 {
				n := f(srv.Stats().Wire)
				if inbound != nil {
					n += f(inbound.Stats().Wire)
				}
				return float64(n)
			})
	}
	reg.MustRegister(
		wire("eslapp_esl_commands_total", "Commands written to FreeSWITCH.", func(w esl.WireStats) uint64 { return w.Commands }),
		wire("eslapp_esl_command_bytes_total", "Bytes of those commands (FreeSWITCH reads a command's headers a byte at a time).", func(w esl.WireStats) uint64 { return w.CommandBytes }),
		wire("eslapp_esl_events_total", "Events read from FreeSWITCH (each one it serialised for eslapp).", func(w esl.WireStats) uint64 { return w.Events }),
		wire("eslapp_esl_event_bytes_total", "Bytes of those events.", func(w esl.WireStats) uint64 { return w.EventBytes }),
		wire("eslapp_esl_replies_total", "Command replies read from FreeSWITCH.", func(w esl.WireStats) uint64 { return w.Replies }),
	)
}

// registerInboundMetrics exports the socket-less connection's state.
func registerInboundMetrics(reg prometheus.Registerer, in *esl.Inbound) {
	stat := func(f func(esl.InboundStats) float64) func() float64 {
		return func() float64 { return f(in.Stats()) }
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eslapp_socketless_connected", Help: "1 while the shared inbound connection to FreeSWITCH is up and subscribed.",
		}, stat(func(st esl.InboundStats) float64 {
			if st.State == esl.InboundConnected {
				return 1
			}
			return 0
		})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eslapp_socketless_state_seconds", Help: "Seconds since the connection entered its current state (connected or not).",
		}, stat(func(st esl.InboundStats) float64 { return time.Since(st.Since).Seconds() })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "eslapp_socketless_connects_total", Help: "Connections established (the first one and every reconnection).",
		}, stat(func(st esl.InboundStats) float64 { return float64(st.Connects) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "eslapp_socketless_failures_total", Help: "Connection attempts that failed and connections lost.",
		}, stat(func(st esl.InboundStats) float64 { return float64(st.Failures) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eslapp_socketless_calls", Help: "Socket-less calls eslapp runs now.",
		}, stat(func(st esl.InboundStats) float64 { return float64(st.Calls) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "eslapp_socketless_calls_taken_total", Help: "Socket-less calls taken (start events heard and run).",
		}, stat(func(st esl.InboundStats) float64 { return float64(st.Started) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "eslapp_socketless_calls_refused_total", Help: "Socket-less calls handed back unrun (max_calls, draining).",
		}, stat(func(st esl.InboundStats) float64 { return float64(st.Refused) })),
	)
}
