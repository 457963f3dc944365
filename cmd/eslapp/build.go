package main

import (
	"errors"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/BurntSushi/toml"

	"github.com/eslapp/eslapp/callflow"
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
	engine   callflow.Config // without Logger and Metrics
	warnings ConfigErrors
}

// build checks the parts of the configuration that the packages own and
// builds them. logger receives the CRM's lines (nil for check).
func (c *configChecker) build(cfg *Config, baseDir string, logger *slog.Logger) *built {
	b := &built{catalog: prompts.NewCatalog()}

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
		var pe *prompts.PrefixError
		if errors.As(err, &pe) {
			c.errorf(toml.Key{"prompts", "prefixes", pe.Key}, "%s", pe.Reason)
		} else {
			c.errorf(toml.Key{"prompts", "prefixes"}, "%v", err)
		}
	}
	b.render = prompts.RenderConfig{
		SoundsDir: dir,
		TTSEngine: cfg.TTS.Engine,
		TTSVoice:  cfg.TTS.Voice,
		Language:  cfg.Prompts.Language,
		Prefixes:  prefixes,
	}
	b.renderer, err = prompts.NewRenderer(b.render)
	if err != nil {
		var ce *prompts.ConfigError
		if errors.As(err, &ce) {
			c.errorf(renderKey[ce.Field], "%s", ce.Reason)
		} else {
			c.errorf(toml.Key{"sounds"}, "%v", err)
		}
		return b
	}
	b.render = b.renderer.Config()

	// CRM.
	b.crm, err = crm.New(crm.Config{Tenants: cfg.Tenants, Integrations: cfg.Integrations}, crm.Options{Logger: logger, BaseDir: baseDir})
	if err != nil {
		var fes crm.FieldErrors
		if errors.As(err, &fes) {
			for _, fe := range fes {
				c.errorf(toml.Key(fe.Key), "%s", fe.Msg)
			}
		} else {
			c.errorf(toml.Key{"integrations"}, "%v", err)
		}
	}

	// Flows and the sounds their sequences play.
	b.flows, err = callflow.CompileFlows(cfg.Flows, b.renderer)
	if err != nil {
		var fes callflow.FieldErrors
		if errors.As(err, &fes) {
			for _, fe := range fes {
				c.errorf(toml.Key(fe.Key), "%s", fe.Msg)
			}
		} else {
			c.errorf(toml.Key{"flows"}, "%v", err)
		}
	}
	for _, w := range callflow.Lint(b.flows) {
		key := toml.Key(w.Key)
		b.warnings = append(b.warnings, ConfigError{File: c.file, Line: lineOf(c.lines, key), Key: key.String(), Msg: "warning: " + w.Msg})
	}
	for _, name := range sortedKeys(cfg.Flows) {
		for _, id := range sortedKeys(cfg.Flows[name].Actions) {
			if seq := cfg.Flows[name].Actions[id].Sequence; seq != "" {
				c.sequenceSounds(b, toml.Key{"flows", name, "actions", id, "sequence"}, seq)
			}
		}
	}

	// Engine defaults.
	b.engine = callflow.Config{
		Flows:               b.flows,
		Renderer:            b.renderer,
		Catalog:             b.catalog,
		PlaybackTerminators: "none",
		HoldMusic:           "holdmusic.wav",
		DefaultPolicy:       cfg.Prompts.Policy,
		DefaultGraceMs:      cfg.Prompts.GraceMs,
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
	switch cfg.Prompts.Policy {
	case "", callflow.PolicyInterrupt, callflow.PolicyComplete, callflow.PolicyLoop:
	default:
		c.errorf(toml.Key{"prompts", "policy"}, "%q: one of interrupt, complete, loop", cfg.Prompts.Policy)
	}
	if cfg.Prompts.GraceMs < 0 {
		c.errorf(toml.Key{"prompts", "grace_ms"}, "must be 0 or more, in milliseconds")
	}
	if b.engine.HoldMusic != "" {
		c.holdMusicSound(b, b.engine.HoldMusic, cfg.Prompts.HoldMusic != nil)
	}
	return b
}

var renderKey = map[string]toml.Key{
	"SoundsDir": {"sounds", "dir"},
	"TTSEngine": {"tts", "engine"},
	"TTSVoice":  {"tts", "voice"},
	"Language":  {"prompts", "language"},
}

// sequenceSounds reports the sound problems of a sequence (missing files,
// stereo wavs, ...); its syntax errors come from CompileFlows.
func (c *configChecker) sequenceSounds(b *built, key toml.Key, seq string) {
	for _, p := range prompts.Check(seq, b.render, b.catalog) {
		var se *prompts.SyntaxError
		if errors.As(p.Err, &se) {
			continue
		}
		if p.Severity == prompts.SeverityError {
			c.errorf(key, "%s", p.String())
		} else {
			b.warnings = append(b.warnings, ConfigError{File: c.file, Line: lineOf(c.lines, key), Key: key.String(), Msg: "warning: " + p.String()})
		}
	}
}

func (c *configChecker) holdMusicSound(b *built, name string, explicit bool) {
	key := toml.Key{"prompts", "hold_music"}
	note := ""
	if !explicit {
		note = "(the default, " + strconv.Quote(name) + ") "
	}
	path, err := b.renderer.FilePath(name)
	if err != nil {
		c.errorf(key, "%s%v", note, err)
		return
	}
	for _, p := range b.catalog.Sound(path).Problems {
		if p.Warning() {
			b.warnings = append(b.warnings, ConfigError{File: c.file, Line: lineOf(c.lines, key), Key: key.String(), Msg: "warning: " + note + p.Error()})
		} else {
			c.errorf(key, "%s%v", note, p)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
