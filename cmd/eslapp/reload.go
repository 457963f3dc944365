package main

import (
	"context"
	"log/slog"
	"os"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eslapp/eslapp/callflow"
	"github.com/eslapp/eslapp/esl"
)

// generation is one loaded configuration: what it built and the engine on
// it. A call takes the current generation when it starts and holds it to
// its end, so that a reload never changes a call midway; the last call of
// a replaced generation closes its services (the CRM clients).
type generation struct {
	src    *source
	b      *built
	engine *callflow.Engine

	refs      atomic.Int64
	retired   atomic.Bool
	closeOnce sync.Once
}

func (g *generation) release() {
	if g.refs.Add(-1) == 0 && g.retired.Load() {
		g.close()
	}
}

func (g *generation) close() { g.closeOnce.Do(g.b.close) }

// generations holds the current generation.
type generations struct {
	p atomic.Pointer[generation]
}

// acquire returns the current generation, held until release.
func (gs *generations) acquire() *generation {
	for {
		g := gs.p.Load()
		g.refs.Add(1)
		if gs.p.Load() == g {
			return g
		}
		g.release() // replaced meanwhile: take the new one
	}
}

// replace makes g current; the old one closes when its last call ends.
func (gs *generations) replace(g *generation) {
	old := gs.p.Swap(g)
	if old == nil {
		return
	}
	old.retired.Store(true)
	if old.refs.Load() == 0 {
		old.close()
	}
}

// The call handlers, each on the generation current when the call starts.
func (gs *generations) handle(ctx context.Context, s *esl.Session) {
	g := gs.acquire()
	defer g.release()
	g.engine.Handle(ctx, s)
}

func (gs *generations) refuse(ctx context.Context, s *esl.Session, why error) {
	g := gs.acquire()
	defer g.release()
	g.engine.Refuse(ctx, s, why)
}

func (gs *generations) handleInbound(ctx context.Context, c *esl.InboundCall) {
	g := gs.acquire()
	defer g.release()
	g.engine.HandleInbound(ctx, c)
}

func (gs *generations) refuseInbound(ctx context.Context, c *esl.InboundCall, why error) {
	g := gs.acquire()
	defer g.release()
	g.engine.RefuseInbound(ctx, c, why)
}

// channelVars is the connect-time variable filter. It reads the current
// generation: a call connecting across a reload keeps the variables of the
// one it saw, a few more or fewer than the next would read.
func (gs *generations) channelVars(lookup func(string) (string, bool)) func(string) bool {
	return gs.p.Load().engine.ChannelVars(lookup)
}

// reloader re-reads the configuration on SIGHUP. The new one is checked
// whole first; any problem leaves the running one in place.
type reloader struct {
	path     string
	explicit bool
	log      *slog.Logger
	level    *slog.LevelVar
	metrics  *callflow.Metrics
	gens     *generations
	srv      *esl.Server
	inbound  *esl.Inbound
	drain    atomic.Int64 // drain_timeout, nanoseconds

	lastOK, lastFailed prometheus.Gauge // Unix seconds of the last reload that worked, and failed
	failures           prometheus.Counter
}

func newReloader(r *reloader, reg *prometheus.Registry) *reloader {
	r.lastOK = prometheus.NewGauge(prometheus.GaugeOpts{Name: "eslapp_config_last_reload_success_timestamp_seconds",
		Help: "When the configuration was last loaded (at start or by SIGHUP), Unix seconds."})
	r.lastFailed = prometheus.NewGauge(prometheus.GaugeOpts{Name: "eslapp_config_last_reload_failure_timestamp_seconds",
		Help: "When a SIGHUP reload last failed (the running configuration stayed), Unix seconds; 0: never."})
	r.failures = prometheus.NewCounter(prometheus.CounterOpts{Name: "eslapp_config_reload_failures_total",
		Help: "SIGHUP reloads refused because the new configuration had problems."})
	r.lastOK.SetToCurrentTime()
	if reg != nil {
		reg.MustRegister(r.lastOK, r.lastFailed, r.failures)
	}
	return r
}

func (r *reloader) drainTimeout() time.Duration { return time.Duration(r.drain.Load()) }

// reload loads, checks and builds the configuration and, when all of it is
// sound, makes it the one new calls use. It reports whether it did.
func (r *reloader) reload() bool {
	fail := func(msg string, args ...any) bool {
		r.log.Error("reload: "+msg+"; the running configuration stays", args...)
		r.failures.Inc()
		r.lastFailed.SetToCurrentTime()
		return false
	}
	src, err := load(r.path, r.explicit)
	if err != nil {
		return r.logProblems(fail, err)
	}
	b, err := src.build(r.log, r.metrics)
	if err != nil {
		b.close()
		return r.logProblems(fail, err)
	}
	if r.inbound != nil {
		b.engine.Late = r.inbound
	}
	engine, err := callflow.New(b.engine)
	if err != nil {
		b.close()
		return fail("engine", "err", err)
	}
	old := r.gens.p.Load()
	was, now := old.src.set, src.set
	// What a running process cannot change: its listeners, and the log's
	// format and the socket-less connection, which belong to the process.
	for _, k := range []struct {
		key     string
		changed bool
	}{
		{"server.listen", was.Listen != now.Listen},
		{"server.metrics_listen", was.MetricsListen != now.MetricsListen},
		{"server.pprof", was.Pprof != now.Pprof},
		{"server.command_timeout", was.CommandTimeout != now.CommandTimeout},
		{"server.max_connecting", was.MaxConnecting != now.MaxConnecting},
		{"integrations.*.max_payload_bytes (the bound of a connect reply)", was.MaxConnectBytes != now.MaxConnectBytes},
		{"log.format", was.LogJSON != now.LogJSON},
		{"socketless", !reflect.DeepEqual(socketlessKey(was.Socketless), socketlessKey(now.Socketless))},
	} {
		if k.changed {
			r.log.Warn("reload: a change needs a restart; the running value stays", "key", k.key)
		}
	}
	// Keep what did not change for the rest of this process.
	now.Listen, now.MetricsListen, now.Pprof, now.CommandTimeout, now.MaxConnecting, now.MaxConnectBytes, now.LogJSON, now.Socketless =
		was.Listen, was.MetricsListen, was.Pprof, was.CommandTimeout, was.MaxConnecting, was.MaxConnectBytes, was.LogJSON, was.Socketless

	r.srv.SetLimits(now.Allow, now.MaxCalls)
	if r.inbound != nil {
		r.inbound.SetMaxCalls(now.MaxCalls)
	}
	r.drain.Store(int64(now.DrainTimeout))
	setLogLevel(r.level, now.LogLevel)
	if os.Getenv("GOMAXPROCS") == "" {
		if now.GoMaxProcs == 0 {
			runtime.SetDefaultGOMAXPROCS() // every CPU; GOMAXPROCS(0) would only read it
		} else {
			runtime.GOMAXPROCS(now.GoMaxProcs)
		}
	}
	old.b.reporting.Store(false)
	r.metrics.ResetBreakers()
	r.gens.replace(&generation{src: src, b: b, engine: engine})
	for _, w := range warningLines(b) {
		r.log.Warn("configuration", "warning", w)
	}
	r.lastOK.SetToCurrentTime()
	r.log.Info("reload: configuration loaded; new calls use it, running calls finish on theirs", "config", src.name)
	return true
}

// logProblems logs every problem of a configuration, one line each.
func (r *reloader) logProblems(fail func(string, ...any) bool, err error) bool {
	if p, ok := err.(*configProblems); ok {
		for _, l := range p.lines {
			r.log.Error("reload: configuration problem", "problem", l.text)
		}
		return fail("the configuration has problems", "problems", len(p.lines))
	}
	return fail("cannot read the configuration", "err", err)
}

func warningLines(b *built) []string {
	if b == nil || b.warnings == nil {
		return nil
	}
	out := make([]string, len(b.warnings.lines))
	for i, l := range b.warnings.lines {
		out[i] = l.text
	}
	return out
}

// socketlessKey is what of [socketless] a restart must apply.
func socketlessKey(s *SocketlessSettings) any {
	if s == nil {
		return nil
	}
	return []any{s.Address, s.Password.Reveal(), s.Subclass, s.ProbeEvery, s.MaxBackoff}
}

func setLogLevel(v *slog.LevelVar, name string) {
	var level slog.Level
	_ = level.UnmarshalText([]byte(name))
	v.Set(level)
}
