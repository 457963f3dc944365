package prompts

import (
	"fmt"
	"github.com/eslapp/eslapp/conf"
	"path"
	"strings"

	"github.com/eslapp/eslapp/esl"
)

// Defaults of RenderConfig.
const (
	DefaultTTSEngine = "flite"
	DefaultTTSVoice  = "kal"
	DefaultLanguage  = "en"
)

// maxPlayItems is the most items FreeSWITCH plays from one file_string://
// list (file_string_file_open keeps 128); longer runs are split.
const maxPlayItems = 128

// RenderConfig is how sequences are parsed and played: the TOML tables
// sounds, tts and prompts. The zero value is usable: default
// prefixes, flite/kal, English, relative file names left to FreeSWITCH's
// sound_prefix.
type RenderConfig struct {
	// SoundsDir is the absolute directory, as FreeSWITCH sees it, that
	// relative file names are joined to (TOML sounds.dir). Empty leaves them
	// relative, for FreeSWITCH's sound_prefix (and unchecked by Check).
	SoundsDir string
	// TTSEngine and TTSVoice make tts://ENGINE|VOICE|TEXT (TOML tts.engine,
	// tts.voice); default flite and kal.
	TTSEngine, TTSVoice string
	// Language is the say module language (TOML prompts.language); default en.
	Language string
	// Prefixes is the prefix table Parse uses (TOML prompts.prefixes).
	Prefixes Prefixes
}

func (c RenderConfig) withDefaults() RenderConfig {
	if c.TTSEngine == "" {
		c.TTSEngine = DefaultTTSEngine
	}
	if c.TTSVoice == "" {
		c.TTSVoice = DefaultTTSVoice
	}
	if c.Language == "" {
		c.Language = DefaultLanguage
	}
	return c
}

// Validate checks the configuration: its errors are conf.FieldErrors at
// the keys the values come from ([sounds] dir, [tts] engine and voice,
// [prompts] language).
func (c RenderConfig) Validate() error {
	c = c.withDefaults()
	var errs conf.FieldErrors
	if d := c.SoundsDir; d != "" {
		if len(d) > 1 {
			d = strings.TrimSuffix(d, "/")
		}
		if !path.IsAbs(d) || path.Clean(d) != d {
			errs.Add([]string{"sounds", "dir"}, fmt.Sprintf("%q is not a clean absolute path", d))
		} else if _, err := esl.File(d); err != nil {
			errs.Add([]string{"sounds", "dir"}, err.Error())
		}
	}
	if _, err := esl.TTS(c.TTSEngine, DefaultTTSVoice, "x"); err != nil {
		errs.Add([]string{"tts", "engine"}, err.Error())
	}
	if _, err := esl.TTS(DefaultTTSEngine, c.TTSVoice, "x"); err != nil {
		errs.Add([]string{"tts", "voice"}, err.Error())
	}
	if _, err := esl.SayArg(c.Language, esl.SayNumber, esl.SayPronounced, "1"); err != nil {
		errs.Add([]string{"prompts", "language"}, err.Error())
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// Step is one FreeSWITCH application to run for a sequence.
type Step struct {
	App string     // "playback" or "say"
	Arg esl.AppArg // the argument, built by the esl builders
	// Kind is the say kind (currency, number, digits) of a say step; for a
	// playback it is KindTTS when any item is spoken, else KindFile.
	Kind Kind
	// Files lists the playback's file items in order, as FreeSWITCH gets
	// them (absolute paths, relative names, stream URLs): for the Catalog.
	Files []string
	// Items is the number of play items of a playback (1 for a say).
	Items int
	// Text describes the step for logs, unescaped. It may hold CRM data.
	Text string
}

// Renderer turns resolved segments into FreeSWITCH applications. It is
// immutable and safe for concurrent use.
type Renderer struct {
	cfg RenderConfig
}

// NewRenderer validates cfg and fills in its defaults.
func NewRenderer(cfg RenderConfig) (*Renderer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.SoundsDir != "/" {
		cfg.SoundsDir = strings.TrimSuffix(cfg.SoundsDir, "/")
	}
	return &Renderer{cfg: cfg}, nil
}

// Config returns the configuration with its defaults filled in.
func (r *Renderer) Config() RenderConfig { return r.cfg }

// Parse parses seq with the configured prefixes (see Parse).
func (r *Renderer) Parse(seq string) (*Sequence, error) { return Parse(seq, r.cfg.Prefixes) }

// Play resolves q through res and renders it.
func (r *Renderer) Play(q *Sequence, res Resolver) ([]Step, error) {
	segs, err := q.Resolve(res)
	if err != nil {
		return nil, err
	}
	return r.Render(segs)
}

// FilePath returns the path FreeSWITCH is given for a file segment's
// value: a relative name joined to the sounds directory, an absolute path
// or a stream URL unchanged. The name is checked as described at Parse
// (no "..", no scheme other than the streams FreeSWITCH plays); errors
// are *ValueError. Rate directories are not added: FreeSWITCH's
// mod_sndfile looks in DIR/RATE/NAME itself (see Catalog).
func (r *Renderer) FilePath(value string) (string, error) {
	p, reason := r.filePath(value)
	if reason != "" {
		return "", &ValueError{Kind: KindFile, Value: value, Reason: reason}
	}
	return p, nil
}

func (r *Renderer) filePath(value string) (string, string) {
	p, reason := checkFileName(value)
	if reason != "" || r.cfg.SoundsDir == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "://") {
		return p, reason
	}
	return path.Join(r.cfg.SoundsDir, p), ""
}

// Render returns the applications that play segs, in order and as few as
// possible: consecutive file and TTS segments become one playback (a
// file_string:// list when there are several items: one
// Application-UUID, one break point), and each currency, number and digits
// segment a say application.
//
// Values are normalised before they are built into arguments:
//
//   - TTS text with esl.NormalizeSpeech (control characters and line
//     breaks become spaces); a TTS segment whose text comes out empty is
//     left out, there is nothing to say;
//   - currency: "12.50", "$12.50", "-$3", "1,234.56", ".5"; the dollar
//     sign, thousands commas (which must group by three: "12,50" is
//     refused rather than read as 1250) and leading zeros are dropped,
//     cents get two digits ("12.5" → "12.50", which mod_say_en would read
//     as five cents), at most 9 digits of dollars;
//   - number: a whole number 0 to 999,999,999, commas allowed;
//   - digits: 1 to 32 digits, spaces and hyphens allowed between them;
//     '*' and '#' are refused (mod_say_en reads digits only);
//   - file: see FilePath.
//
// Whatever a value holds ('!', '|', quotes, braces, newlines, ${...}), it
// stays one item of one application: the esl builders escape it. A value
// that cannot be played is a *ValueError; nothing is rendered then.
func (r *Renderer) Render(segs []Resolved) ([]Step, error) {
	var steps []Step
	var pb playback
	for _, s := range segs {
		fail := func(reason string, err error) error {
			return &ValueError{Line: s.Line, Column: s.Column, Kind: s.Kind, Value: s.Value, Reason: reason, Err: err}
		}
		switch s.Kind {
		case KindFile, KindTTS:
			var item esl.PlayItem
			var err error
			file := ""
			if s.Kind == KindFile {
				var reason string
				if file, reason = r.filePath(s.Value); reason != "" {
					return nil, fail(reason, nil)
				}
				item, err = esl.File(file)
			} else {
				text := esl.NormalizeSpeech(s.Value)
				if text == "" {
					continue
				}
				item, err = esl.TTS(r.cfg.TTSEngine, r.cfg.TTSVoice, text)
			}
			if err != nil {
				return nil, fail("", err)
			}
			if len(pb.items) == maxPlayItems {
				if steps, err = pb.flush(steps); err != nil {
					return nil, fail("", err)
				}
			}
			pb.add(item, file)
		case KindCurrency, KindNumber, KindDigits:
			v, reason := checkValue(s.Kind, s.Value)
			if reason != "" {
				return nil, fail(reason, nil)
			}
			var err error
			if steps, err = pb.flush(steps); err != nil {
				return nil, fail("", err)
			}
			typ, method := esl.SayNumber, esl.SayPronounced
			switch s.Kind {
			case KindCurrency:
				typ = esl.SayCurrency
			case KindDigits:
				method = esl.SayIterated
			}
			arg, err := esl.SayArg(r.cfg.Language, typ, method, v)
			if err != nil {
				return nil, fail("", err)
			}
			steps = append(steps, Step{App: "say", Arg: arg, Kind: s.Kind, Items: 1, Text: s.Kind.String() + " " + v})
		default:
			return nil, fail(fmt.Sprintf("no renderer for kind %d", s.Kind), nil)
		}
	}
	steps, err := pb.flush(steps)
	if err != nil {
		return nil, err
	}
	return steps, nil
}

// Render renders segs with cfg; see Renderer.Render. A long-lived caller
// makes one Renderer instead.
func Render(segs []Resolved, cfg RenderConfig) ([]Step, error) {
	r, err := NewRenderer(cfg)
	if err != nil {
		return nil, err
	}
	return r.Render(segs)
}

// playback collects consecutive play items.
type playback struct {
	items []esl.PlayItem
	files []string
	tts   bool
}

func (p *playback) add(item esl.PlayItem, file string) {
	p.items = append(p.items, item)
	if file != "" {
		p.files = append(p.files, file)
	} else {
		p.tts = true
	}
}

// flush appends the collected items to steps as one playback.
func (p *playback) flush(steps []Step) ([]Step, error) {
	if len(p.items) == 0 {
		return steps, nil
	}
	arg, err := esl.PlaybackArg(p.items...)
	if err != nil {
		return steps, err
	}
	kind := KindFile
	if p.tts {
		kind = KindTTS
	}
	texts := make([]string, len(p.items))
	for i, it := range p.items {
		texts[i] = it.String()
	}
	steps = append(steps, Step{App: "playback", Arg: arg, Kind: kind, Files: p.files, Items: len(p.items), Text: strings.Join(texts, " ! ")})
	*p = playback{}
	return steps, nil
}
