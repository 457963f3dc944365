package main

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/BurntSushi/toml"

	"github.com/eslapp/eslapp/callflow"
	"github.com/eslapp/eslapp/conf"
	"github.com/eslapp/eslapp/crm"
	"github.com/eslapp/eslapp/prompts"
)

// built is a checked configuration turned into the packages' values.
type built struct {
	render   prompts.RenderConfig
	renderer *prompts.Renderer
	catalog  *prompts.Catalog
	crm      *crm.Service
	flows    map[string]*callflow.Flow
	engine   callflow.Config
	warnings *configProblems // nil when there are none
	// reporting: this configuration's breakers set the metrics (until a
	// reload replaces it).
	reporting atomic.Bool
}

func (b *built) close() {
	if b != nil && b.crm != nil {
		b.crm.Close()
	}
}

// build checks the parts of the configuration the packages own and builds
// them, once: the logger and the metrics exist already, so what reports
// to them is wired as it is made (logger nil for check, metrics nil
// without metrics_listen). Errors are every problem, FILE:LINE: KEY: each.
func (src *source) build(logger *slog.Logger, metrics *callflow.Metrics) (*built, error) {
	cfg := &src.cfg
	b := &built{catalog: prompts.NewCatalog()}
	errs := append(conf.FieldErrors(nil), src.errs...)
	var warns conf.FieldErrors
	addErr := func(err error, key ...string) {
		var fes conf.FieldErrors
		var fe *conf.FieldError
		switch {
		case errors.As(err, &fes):
			errs = append(errs, fes...)
		case errors.As(err, &fe):
			errs = append(errs, fe)
		default:
			errs.Add(key, err.Error())
		}
	}

	// Prompts.
	dir := cfg.Sounds.Dir
	if dir == "" {
		dir = "sounds"
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	prefixes, err := prompts.NewPrefixes(cfg.Prompts.Prefixes)
	if err != nil {
		addErr(err, "prompts", "prefixes")
	}
	b.render = prompts.RenderConfig{
		SoundsDir: dir,
		TTSEngine: cfg.TTS.Engine,
		TTSVoice:  cfg.TTS.Voice,
		Language:  cfg.Prompts.Language,
		Prefixes:  prefixes,
	}
	if b.renderer, err = prompts.NewRenderer(b.render); err != nil {
		addErr(err, "sounds")
		return b, src.problems(errs, "")
	}
	b.render = b.renderer.Config()

	// CRM.
	opts := crm.Options{Logger: logger, BaseDir: src.baseDir}
	b.reporting.Store(true)
	if metrics != nil {
		// Only while this configuration is the current one: after a
		// reload the calls still on it must not set the new one's gauges.
		opts.OnBreakerChange = func(configID, workflowID string, from, to crm.BreakerState) {
			if b.reporting.Load() {
				metrics.BreakerChanged(configID, workflowID, from, to)
			}
		}
	}
	if b.crm, err = crm.New(crm.Config{Tenants: cfg.Tenants, Integrations: cfg.Integrations}, opts); err != nil {
		addErr(err, "integrations")
	}

	// Flows, and the sounds their sequences play.
	if b.flows, err = callflow.CompileFlows(&src.md, cfg.Flows, b.renderer); err != nil {
		addErr(err, "flows")
	}
	warns = append(warns, callflow.Lint(b.flows)...)
	for _, name := range slices.Sorted(maps.Keys(b.flows)) {
		b.flows[name].Sequences(func(key []string, seq *callflow.Sequence) {
			sequenceSounds(b, key, seq.String(), &errs, &warns)
		})
	}

	// Engine defaults.
	b.engine = callflow.Config{
		Flows:               b.flows,
		Renderer:            b.renderer,
		Catalog:             b.catalog,
		Logger:              logger,
		Metrics:             metrics,
		PlaybackTerminators: "none",
		HoldMusic:           "holdmusic.wav",
		DefaultGraceMs:      cfg.Prompts.GraceMs,
		SharedSecret:        src.set.SharedSecret,
		SharedSecretVar:     src.set.SharedSecretVar,
	}
	if b.crm != nil {
		b.engine.CRM = b.crm
	}
	if t := cfg.Prompts.PlaybackTerminators; t != nil {
		b.engine.PlaybackTerminators = *t
	}
	if h := cfg.Prompts.HoldMusic; h != nil {
		b.engine.HoldMusic = *h
	}
	if b.engine.DefaultPolicy, err = callflow.ParsePolicy(cfg.Prompts.Policy); err != nil {
		errs.Add([]string{"prompts", "policy"}, err.Error())
	}
	if err := callflow.CheckGraceMs(cfg.Prompts.GraceMs); err != nil {
		errs.Add([]string{"prompts", "grace_ms"}, err.Error())
	}
	if b.engine.HoldMusic != "" {
		holdMusicSound(b, b.engine.HoldMusic, cfg.Prompts.HoldMusic != nil, &errs, &warns)
	}

	// Keys nothing read: the flows' actions report their own.
	for _, key := range src.md.Undecoded() {
		if len(key) >= 4 && key[0] == "flows" && key[2] == "actions" {
			continue
		}
		errs.Add(key, "unknown key")
	}
	if len(warns) > 0 {
		b.warnings = src.problems(warns, "warning: ")
	}
	if len(errs) > 0 {
		b.close()
		return nil, src.problems(errs, "")
	}
	return b, nil
}

// sequenceSounds reports the sound problems of a sequence (missing files,
// stereo wavs, ...); its syntax errors come from CompileFlows.
func sequenceSounds(b *built, key []string, seq string, errs, warns *conf.FieldErrors) {
	for _, p := range prompts.Check(seq, b.render, b.catalog) {
		var se *prompts.SyntaxError
		if errors.As(p.Err, &se) {
			continue
		}
		if p.Severity == prompts.SeverityError {
			errs.Add(key, p.String())
		} else {
			warns.Add(key, p.String())
		}
	}
}

func holdMusicSound(b *built, name string, explicit bool, errs, warns *conf.FieldErrors) {
	key := toml.Key{"prompts", "hold_music"}
	note := ""
	if !explicit {
		note = "(the default, " + strconv.Quote(name) + ") "
	}
	path, err := b.renderer.FilePath(name)
	if err != nil {
		errs.Add(key, fmt.Sprintf("%s%v", note, err))
		return
	}
	for _, p := range b.catalog.Sound(path).Problems {
		if p.Warning() {
			warns.Add(key, note+p.Error())
		} else {
			errs.Add(key, fmt.Sprintf("%s%v", note, p))
		}
	}
}
