package prompts

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Reason is why the Catalog flags a sound.
type Reason uint8

// Reasons. The ones from ReasonUnchecked on are warnings: FreeSWITCH can
// play the sound, the catalog just cannot vouch for it or its length.
const (
	ReasonMissing     Reason = iota + 1 // no file at the path or in any rate directory
	ReasonUnreadable                    // the file exists but cannot be read
	ReasonNoExtension                   // FreeSWITCH would look for NAME.<codec> and NAME.wav
	ReasonFormat                        // an extension or URL scheme no FreeSWITCH module plays
	ReasonNotWAV                        // a .wav file that is not a RIFF/WAVE file
	ReasonNotPCM                        // a wav that is not linear PCM (float, A-law, ...)
	ReasonChannels                      // not mono
	ReasonBitDepth                      // not 16-bit (8-bit, 24-bit, ...)
	ReasonRate                          // not 8, 16, 32 or 48 kHz
	ReasonRateDir                       // DIR/RATE/NAME holds audio at another rate
	ReasonTruncated                     // the data is shorter than its header says, or missing
	ReasonEmpty                         // a 0-byte file or no audio

	ReasonUnchecked // a format FreeSWITCH plays but the catalog does not inspect
	ReasonRemote    // fetched at play time (http, https, shout)
	ReasonRelative  // relative to FreeSWITCH's sound_prefix: not checked
	ReasonLengths   // the rate variants differ in length
)

var reasonNames = [...]string{
	ReasonMissing: "missing", ReasonUnreadable: "unreadable", ReasonNoExtension: "no extension",
	ReasonFormat: "unplayable format", ReasonNotWAV: "not a wav", ReasonNotPCM: "not PCM",
	ReasonChannels: "not mono", ReasonBitDepth: "not 16-bit", ReasonRate: "odd sample rate",
	ReasonRateDir: "wrong rate directory", ReasonTruncated: "truncated", ReasonEmpty: "zero length",
	ReasonUnchecked: "not checked", ReasonRemote: "remote", ReasonRelative: "relative path",
	ReasonLengths: "variants differ",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", r)
}

// Warning reports whether the reason is a warning rather than an error.
func (r Reason) Warning() bool { return r >= ReasonUnchecked }

// SoundError is a problem with one sound file or URL.
type SoundError struct {
	Path   string // the file examined (a rate variant, or the path itself)
	Reason Reason
	Detail string
}

func (e *SoundError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%s: %s", e.Path, e.Reason)
	}
	return fmt.Sprintf("%s: %s: %s", e.Path, e.Reason, e.Detail)
}

// Warning reports whether the problem is only a warning.
func (e *SoundError) Warning() bool { return e.Reason.Warning() }

// Variant is one file FreeSWITCH may open for a sound path.
type Variant struct {
	File                 string
	RateDir              int // 8000 for DIR/8000/NAME, ...; 0 for the path itself
	Rate, Channels, Bits int // from the wav header; 0 for other formats
	Length               time.Duration
}

// Sound is what the catalog knows about one path a playback names. It is
// shared by every caller: do not modify it.
type Sound struct {
	Path     string
	Variants []Variant
	// Length is the playing time; Known reports whether it is exact
	// (a wav without errors, or silence_stream://MS).
	Length   time.Duration
	Known    bool
	Problems []*SoundError // errors and warnings, errors first
}

// Err returns the first error (not warning), or nil.
func (s *Sound) Err() error {
	for _, p := range s.Problems {
		if !p.Warning() {
			return p
		}
	}
	return nil
}

// fileFormat is how FreeSWITCH plays files with an extension.
type fileFormat struct {
	module   string
	rateDirs bool // mod_sndfile's DIR/RATE/NAME lookup applies
	inspect  bool // wav: checked in full
	note     string
}

// lookupFormat returns how FreeSWITCH 1.10 plays files with extension
// ext. mod_sndfile (libsndfile, in the default module set) plays wav and
// the others marked rateDirs; its file_open tries DIR/<call rate>/NAME,
// then DIR/48000, 32000, 16000, 8000 /NAME, then the path itself. mp3
// needs mod_shout and opus mod_opusfile, neither loaded by default.
func lookupFormat(ext string) (fileFormat, bool) {
	switch ext {
	case "wav":
		return fileFormat{module: "mod_sndfile", rateDirs: true, inspect: true}, true
	case "aif", "aiff", "au", "snd", "flac", "ogg", "oga", "caf", "w64",
		"raw", "r8", "r16", "r24", "r32", "gsm", "ul", "ulaw", "al", "alaw", "vox", "adpcm":
		return fileFormat{module: "mod_sndfile", rateDirs: true}, true
	case "mp3":
		return fileFormat{module: "mod_shout", note: "needs mod_shout (not loaded by default)"}, true
	case "opus":
		return fileFormat{module: "mod_opusfile", note: "needs mod_opusfile (not loaded by default)"}, true
	}
	return fileFormat{}, false
}

// maxLengthSpread is how much the rate variants of one prompt may differ
// in length before the catalog warns: one 20 ms media frame.
const maxLengthSpread = 20 * time.Millisecond

// Catalog checks the sounds a configuration and its sequences play, and
// knows their lengths. Results are cached by path until Forget. It is safe
// for concurrent use.
//
// A path DIR/NAME.wav stands for every file FreeSWITCH may open for it:
// mod_sndfile looks for DIR/RATE/NAME.wav (RATE the call's rate, then
// 48000, 32000, 16000, 8000) before DIR/NAME.wav. The catalog checks every
// one of those that exists, requires at least one, and requires a file in
// DIR/RATE/ to be at that rate.
type Catalog struct {
	mu     sync.Mutex
	sounds map[string]*Sound
}

// NewCatalog returns an empty catalog.
func NewCatalog() *Catalog {
	return &Catalog{sounds: map[string]*Sound{}}
}

// Sound returns what the catalog knows about p, a path or URL as a
// playback step names it (Step.Files), examining it on first use.
func (c *Catalog) Sound(p string) *Sound {
	c.mu.Lock()
	s, ok := c.sounds[p]
	c.mu.Unlock()
	if ok {
		return s
	}
	s = inspectSound(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.sounds[p]; ok {
		return old
	}
	c.sounds[p] = s
	return s
}

// Forget empties the cache, e.g. after the sound files were replaced.
func (c *Catalog) Forget() {
	c.mu.Lock()
	c.sounds = map[string]*Sound{}
	c.mu.Unlock()
}

// Length returns how long the file part of steps plays: the sum of the
// known lengths of their files. exact is false when any part has no known
// length (TTS, say, streams other than silence_stream://MS, unchecked
// formats, files with errors); d is then a lower bound.
func (c *Catalog) Length(steps []Step) (d time.Duration, exact bool) {
	exact = true
	for _, st := range steps {
		if st.App != "playback" || st.Kind == KindTTS {
			exact = false
		}
		for _, f := range st.Files {
			s := c.Sound(f)
			if !s.Known {
				exact = false
				continue
			}
			d += s.Length
		}
	}
	return d, exact
}

// Bounds on how long spoken parts of a prompt play: generous upper bounds
// (flite speaks about 15 characters a second; "say" reads a number or an
// amount in a few seconds), for telling a stuck FreeSWITCH from a long
// prompt, never for timing the caller.
const (
	speechPerByte = 200 * time.Millisecond
	sayPerByte    = 600 * time.Millisecond
	boundSlack    = time.Second
)

// Bound is an upper bound on how long step plays once started: the known
// lengths of its files, and its spoken text at speechPerByte (TTS) or
// sayPerByte (say). ok is false when a part has no bound (a tone or a
// local stream, which play until stopped, or a file whose length is not
// known): only the caller's own deadline bounds such a step.
func (c *Catalog) Bound(st Step) (d time.Duration, ok bool) {
	d = boundSlack
	if st.App == "say" {
		return d + time.Duration(len(st.Text))*sayPerByte, true
	}
	if st.Kind == KindTTS {
		d += time.Duration(len(st.Text)) * speechPerByte
	}
	for _, f := range st.Files {
		s := c.Sound(f)
		if !s.Known {
			return 0, false
		}
		d += s.Length
	}
	return d, true
}

func inspectSound(p string) *Sound {
	s := &Sound{Path: p}
	warn := func(r Reason, detail string) {
		s.Problems = append(s.Problems, &SoundError{Path: p, Reason: r, Detail: detail})
	}
	if scheme, rest, ok := strings.Cut(p, "://"); ok {
		switch scheme {
		case "silence_stream":
			ms, _, _ := strings.Cut(rest, ",")
			if n, err := strconv.Atoi(ms); err == nil && n > 0 {
				s.Length, s.Known = time.Duration(n)*time.Millisecond, true
			}
		case "tone_stream", "local_stream":
		case "http", "https", "shout":
			warn(ReasonRemote, "fetched when played (mod_http_cache, mod_httapi or mod_shout); not checked")
		default:
			warn(ReasonFormat, fmt.Sprintf("no FreeSWITCH stream %q", scheme))
		}
		return s
	}
	if !path.IsAbs(p) {
		warn(ReasonRelative, "relative to FreeSWITCH's sound_prefix; set [sounds] dir to have it checked")
		return s
	}
	ext := strings.ToLower(strings.TrimPrefix(path.Ext(p), "."))
	if ext == "" {
		warn(ReasonNoExtension, "FreeSWITCH would look for NAME.<codec> and NAME.wav; write the extension")
		return s
	}
	ff, ok := lookupFormat(ext)
	if !ok {
		warn(ReasonFormat, fmt.Sprintf("no FreeSWITCH file module plays .%s", ext))
		return s
	}
	dir, name := path.Split(p)
	var looked []string
	if ff.rateDirs {
		for i := len(wavRates) - 1; i >= 0; i-- {
			s.examine(path.Join(dir, strconv.Itoa(wavRates[i]), name), wavRates[i], ff, &looked)
		}
	}
	s.examine(p, 0, ff, &looked)
	if len(s.Variants) == 0 && s.Err() == nil {
		warn(ReasonMissing, "looked for "+strings.Join(looked, ", "))
	}
	s.settle(ff)
	return s
}

// examine adds file as a variant if it exists.
func (s *Sound) examine(file string, rateDir int, ff fileFormat, looked *[]string) {
	*looked = append(*looked, file)
	st, err := os.Stat(file)
	switch {
	case errIsNotExist(err):
		return
	case err != nil:
		s.Problems = append(s.Problems, &SoundError{Path: file, Reason: ReasonUnreadable, Detail: err.Error()})
		return
	case st.IsDir():
		s.Problems = append(s.Problems, &SoundError{Path: file, Reason: ReasonUnreadable, Detail: "a directory"})
		return
	}
	if !ff.inspect {
		s.Variants = append(s.Variants, Variant{File: file, RateDir: rateDir})
		return
	}
	v, probs := inspectWAV(file, rateDir)
	s.Problems = append(s.Problems, probs...)
	if len(probs) == 0 {
		s.Variants = append(s.Variants, v)
	}
}

// settle computes the length and orders the problems.
func (s *Sound) settle(ff fileFormat) {
	if len(s.Variants) > 0 && !ff.inspect {
		s.Problems = append(s.Problems, &SoundError{Path: s.Path, Reason: ReasonUnchecked,
			Detail: strings.TrimPrefix(ff.note+"; ", "; ") + "played by " + ff.module + ", length unknown"})
	}
	if ff.inspect && len(s.Variants) > 0 && s.Err() == nil {
		lo, hi := s.Variants[0].Length, s.Variants[0].Length
		for _, v := range s.Variants[1:] {
			lo, hi = min(lo, v.Length), max(hi, v.Length)
		}
		s.Length, s.Known = hi, true
		if hi-lo > maxLengthSpread {
			s.Problems = append(s.Problems, &SoundError{Path: s.Path, Reason: ReasonLengths,
				Detail: fmt.Sprintf("the rate variants last from %v to %v", lo, hi)})
		}
	}
	// errors first, in the order found
	var errs, warns []*SoundError
	for _, p := range s.Problems {
		if p.Warning() {
			warns = append(warns, p)
		} else {
			errs = append(errs, p)
		}
	}
	s.Problems = append(errs, warns...)
}
