package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/eslapp/eslapp/esl"
)

// serve runs eslapp until a signal. SIGHUP reloads the configuration
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
	applyGoMaxProcs(s.GoMaxProcs)
	reg, metrics := newMetrics(s.MetricsListen)

	// Every call runs on the configuration current when it starts; SIGHUP
	// replaces it for the calls after (reload.go).
	gens := &generations{}
	bind := gens.bind
	if hooks.handler != nil {
		bind = func() esl.Binding { b := gens.bind(); b.Handler = hooks.handler; return b }
	}
	runner, srv, inbounds, err := newWaysIn(s, log, bind)
	if err != nil {
		log.Error("cannot take calls", "err", err)
		return 1
	}
	// Late results go to the agent over the inbound connection to the
	// call's FreeSWITCH (esl.Call.Inbound).
	g, err := newGeneration(src, genOptions{logger: log, metrics: metrics})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	gens.replace(g)
	defer func() { gens.p.Load().close() }()
	log.Info("eslapp starting", "version", versionString(), "config", src.name, "sounds", g.b.render.SoundsDir, "gomaxprocs", runtime.GOMAXPROCS(0))
	for _, w := range warningLines(g.b) {
		log.Warn("configuration", "warning", w)
	}
	rl := newReloader(&reloader{path: configPath, explicit: explicit, log: log, level: level, metrics: metrics,
		gens: gens, runner: runner, srv: srv}, reg)
	rl.drain.Store(int64(s.DrainTimeout))
	registerWayInMetrics(reg, srv, inbounds)

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
	stopMetrics, err := serveMetrics(reg, s, log)
	if err != nil {
		_ = ln.Close()
		return 1
	}
	defer stopMetrics()

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	for _, in := range inbounds {
		log.Info("socket-less calls: connecting to FreeSWITCH's event socket", "addr", in.Address(), "subclass", s.Socketless.Subclass)
		go in.Serve()
	}
	if hooks.ready != nil {
		hooks.ready <- ln.Addr()
	}

	for stop := false; !stop; {
		select {
		case err := <-served:
			log.Error("listener failed", "err", err)
			runner.Close()
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
	start := time.Now()
	ended := drain(runner, rl.drainTimeout(), signals, log)
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

// newWaysIn makes the runner and the ways calls reach it: the outbound
// socket server, which stops listening as soon as a drain starts (so that
// FreeSWITCH's "socket A|B" goes to the next eslapp), and, with
// [socketless], one inbound connection per FreeSWITCH host.
func newWaysIn(s *Settings, log *slog.Logger, bind func() esl.Binding) (*esl.Runner, *esl.Server, []*esl.Inbound, error) {
	rcfg := esl.RunnerConfig{Bind: bind, MaxCalls: s.MaxCalls, CommandTimeout: s.CommandTimeout, Logger: log}
	if s.Socketless != nil {
		rcfg.ClaimStagger = s.Socketless.ClaimStagger
	}
	runner, err := esl.NewRunner(rcfg)
	if err != nil {
		return nil, nil, nil, err
	}
	srv, err := esl.NewServer(runner, esl.ServerConfig{
		Allow:                s.Allow,
		CommandTimeout:       s.CommandTimeout,
		MaxConnecting:        s.MaxConnecting,
		MaxConnectBytes:      s.MaxConnectBytes,
		StopListeningOnDrain: true,
		Logger:               log,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	sl := s.Socketless
	if sl == nil {
		return runner, srv, nil, nil
	}
	var inbounds []*esl.Inbound
	for _, h := range sl.Hosts {
		in, err := esl.NewInbound(runner, esl.InboundConfig{
			Address: h.Address, Password: h.Password.Reveal(), Subclass: sl.Subclass, WaitMusic: sl.WaitMusic,
			CommandTimeout: s.CommandTimeout, ProbeEvery: sl.ProbeEvery, MaxBackoff: sl.MaxBackoff,
			Logger: log,
		})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("socket-less connection to %s: %w", h.Address, err)
		}
		inbounds = append(inbounds, in)
	}
	return runner, srv, inbounds, nil
}

// drain shuts the runner down within timeout and returns the number of
// calls it had to end. A second signal ends the drain now: the calls left
// are handed back (OnError, "eslapp is shutting down") as at the deadline.
// A third closes every connection without a word.
func drain(runner *esl.Runner, timeout time.Duration, signals <-chan os.Signal, log *slog.Logger) int {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
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
			runner.Close()
		}
	}()
	return runner.Shutdown(ctx)
}
