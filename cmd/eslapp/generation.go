package main

import (
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

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

// genOptions are what a generation reports to and delivers through.
type genOptions struct {
	logger  *slog.Logger      // nil: discard
	metrics *callflow.Metrics // nil: none
	// workflows wraps the CRM the engine asks (try records it); nil:
	// the configuration's own.
	workflows func(callflow.Workflows) callflow.Workflows
}

// newGeneration builds what serve, reload and try run calls on: the
// packages' values from a configuration (build: every problem, FILE:LINE:
// KEY: each), then the engine on them. It is the one place an engine is
// made.
func newGeneration(src *source, opts genOptions) (*generation, error) {
	b, err := src.build(opts.logger, opts.metrics)
	if err != nil {
		b.close()
		return nil, err
	}
	cfg := b.engine
	if opts.workflows != nil {
		cfg.CRM = opts.workflows(cfg.CRM)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	engine, err := callflow.New(cfg)
	if err != nil {
		b.close()
		return nil, err
	}
	return &generation{src: src, b: b, engine: engine}, nil
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

// bind gives a call arriving now the current generation, held until the
// call is over: its variable filter, handler and refusal (the runner's
// esl.RunnerConfig.Bind). A reload never changes a call midway.
func (gs *generations) bind() esl.Binding {
	g := gs.acquire()
	b := g.engine.Binding()
	b.Release = g.release
	return b
}

// applyGoMaxProcs sets the CPUs eslapp's Go code runs on: n, or every CPU
// for 0. A GOMAXPROCS environment variable wins.
func applyGoMaxProcs(n int) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	if n == 0 {
		runtime.SetDefaultGOMAXPROCS() // every CPU; GOMAXPROCS(0) would only read it
		return
	}
	runtime.GOMAXPROCS(n)
}
