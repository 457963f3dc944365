package main

import (
	"errors"
	"log/slog"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eslapp/eslapp/callflow"
	"github.com/eslapp/eslapp/esl"
)

// reloader re-reads the configuration on SIGHUP. The new one is checked
// whole first; any problem leaves the running one in place.
type reloader struct {
	path     string
	explicit bool
	log      *slog.Logger
	level    *slog.LevelVar
	metrics  *callflow.Metrics
	gens     *generations
	runner   *esl.Runner
	srv      *esl.Server
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
	g, err := newGeneration(src, genOptions{logger: r.log, metrics: r.metrics})
	if err != nil {
		return r.logProblems(fail, err)
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

	r.runner.SetMaxCalls(now.MaxCalls)
	r.srv.SetAllow(now.Allow)
	r.drain.Store(int64(now.DrainTimeout))
	setLogLevel(r.level, now.LogLevel)
	applyGoMaxProcs(now.GoMaxProcs)
	old.b.reporting.Store(false)
	r.metrics.ResetBreakers()
	r.gens.replace(g)
	for _, w := range warningLines(g.b) {
		r.log.Warn("configuration", "warning", w)
	}
	r.lastOK.SetToCurrentTime()
	r.log.Info("reload: configuration loaded; new calls use it, running calls finish on theirs", "config", src.name)
	return true
}

// logProblems logs every problem of a configuration, one line each.
func (r *reloader) logProblems(fail func(string, ...any) bool, err error) bool {
	var p *configProblems
	if errors.As(err, &p) {
		for _, l := range p.lines {
			r.log.Error("reload: configuration problem", "problem", l.text)
		}
		return fail("the configuration has problems", "problems", len(p.lines))
	}
	return fail("the configuration cannot be used", "err", err)
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
	key := []any{s.Subclass, s.ProbeEvery, s.MaxBackoff, s.ClaimStagger, s.WaitMusic}
	for _, h := range s.Hosts {
		key = append(key, h.Address, h.Password.Reveal())
	}
	return key
}
