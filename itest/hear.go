package itest

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-audio/wav"
)

// What a caller hears: one call placed by baresip, a real SIP user agent,
// whose decoded audio is recorded and analysed (itest/hear and
// TestCallerHears). FreeSWITCH's events say what FreeSWITCH meant to play;
// the recording says what reached the caller, including the stretches in
// which FreeSWITCH sent no RTP at all.
//
// baresip 1.0.0 (Debian's baresip-core) records with its sndfile module, an
// audio filter: "dec" is what the decoder produced, frame by frame as RTP
// arrived, so a stretch without RTP leaves no trace in it. The timed record
// is "enc": the call's player and source are the two ends of one aubridge
// device, a bridge whose thread pulls from the player every 20 ms by its own
// clock (silence when no RTP came) and pushes that into the source, so what
// the caller sends, and the sndfile filter records as "enc", is what its
// speaker played, second by second from the moment the call's audio
// started. FreeSWITCH gets its own audio back; nothing in its dialplan
// listens to it.

// BaresipModules are the modules a call needs; BaresipPath checks that
// they are installed.
var BaresipModules = []string{"g711.so", "sndfile.so", "aubridge.so", "account.so", "menu.so", "ctrl_tcp.so"}

// BaresipPath is baresip's path (ESLAPP_BARESIP, else baresip on PATH) and
// its module directory (ESLAPP_BARESIP_MODULES, else the first of Debian's
// and a source build's that holds the modules), or "" with the reason when
// either is missing.
func BaresipPath() (bin, modules, why string) {
	bin = cmp.Or(os.Getenv("ESLAPP_BARESIP"), "baresip")
	p, err := exec.LookPath(bin)
	if err != nil {
		return "", "", "baresip is not installed (bash .ci/install-baresip installs Debian's baresip-core): " + err.Error()
	}
	bin = p
	dirs := []string{"/usr/lib/baresip/modules", "/usr/local/lib/baresip/modules", "/usr/lib/x86_64-linux-gnu/baresip/modules"}
	if d := os.Getenv("ESLAPP_BARESIP_MODULES"); d != "" {
		dirs = []string{d}
	}
	for _, d := range dirs {
		missing := false
		for _, m := range BaresipModules {
			if _, err := os.Stat(filepath.Join(d, m)); err != nil {
				missing = true
				break
			}
		}
		if !missing {
			return bin, d, ""
		}
	}
	return "", "", fmt.Sprintf("baresip's modules %s are not all in %s (set ESLAPP_BARESIP_MODULES)", strings.Join(BaresipModules, " "), strings.Join(dirs, " or "))
}

// BaresipCall is one call placed by baresip.
type BaresipCall struct {
	Baresip string // the baresip binary
	Modules string // its module directory
	// Dir is the call's own directory (created): baresip's configuration
	// (-f Dir), its console log and the recordings (Dir/rec).
	Dir string
	// URI is whom to call, sip:EXT@HOST:PORT.
	URI string
	// Limit ends the call (baresip quits) if the far end has not hung up
	// by then; default 60 s.
	Limit time.Duration
	// Answered, when set, is called (on another goroutine) when baresip
	// reports the call established.
	Answered func(at time.Time)
}

// BaresipResult is how a call went, on this machine's clock.
type BaresipResult struct {
	Dialled  time.Time // the dial command was given
	Answered time.Time // baresip's CALL_ESTABLISHED (zero: never answered)
	Ended    time.Time // baresip's CALL_CLOSED, or when it quit
	// Closed is CALL_CLOSED's reason as baresip words it: "Connection
	// reset by peer" is the far end's BYE; "" when the limit ended the
	// call first.
	Closed string
	// Heard is the timed recording (aubridge, sndfile's "enc"): what the
	// caller's speaker played from the start of the call's audio, silence
	// included. Received is sndfile's "dec": the decoded RTP only.
	Heard, Received string
	Log             string // baresip's console
	Events          []string
}

// ByFarEnd reports whether the far end hung up (its BYE).
func (r *BaresipResult) ByFarEnd() bool { return strings.Contains(r.Closed, "reset by peer") }

// Run places the call, waits until it ends (the far end's BYE, or Limit),
// and returns where baresip left its recordings.
func (c BaresipCall) Run(ctx context.Context) (*BaresipResult, error) {
	if c.Limit == 0 {
		c.Limit = 60 * time.Second
	}
	rec := filepath.Join(c.Dir, "rec")
	if err := os.MkdirAll(rec, 0o755); err != nil {
		return nil, err
	}
	sipPort, err := freeUDPTCPPort()
	if err != nil {
		return nil, err
	}
	ctrl, err := FreeTCPAddr()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "config"), []byte(BaresipConfig(c.Modules, rec, sipPort, ctrl)), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "accounts"), []byte("<sip:caller@127.0.0.1>;regint=0\n"), 0o644); err != nil {
		return nil, err
	}
	r := &BaresipResult{Log: filepath.Join(c.Dir, "baresip.log")}
	logFile, err := os.Create(r.Log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	// -t is a last resort: the call is ended through ctrl_tcp well before.
	limit := int((c.Limit + 10*time.Second) / time.Second)
	cmd := exec.Command(c.Baresip, "-f", c.Dir, "-t", strconv.Itoa(limit))
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("baresip: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	defer func() {
		if !exited {
			_ = cmd.Process.Kill()
			<-done
		}
	}()

	// ctrl_tcp: commands in, events out, JSON in netstrings.
	var conn net.Conn
	for deadline := time.Now().Add(10 * time.Second); ; {
		if conn, err = net.Dial("tcp", ctrl); err == nil {
			break
		}
		select {
		case err := <-done:
			exited = true
			return nil, fmt.Errorf("baresip exited while starting: %v\n%s", err, fileTail(r.Log, 20))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("baresip's ctrl_tcp on %s: %w\n%s", ctrl, err, fileTail(r.Log, 20))
		}
	}
	defer conn.Close()
	type event struct {
		at   time.Time
		kind string
		text string
	}
	events := make(chan event, 64)
	go func() {
		defer close(events)
		br := bufio.NewReader(conn)
		for {
			msg, err := readNetstring(br)
			if err != nil {
				return
			}
			at := time.Now()
			var m struct {
				Event bool   `json:"event"`
				Type  string `json:"type"`
				Param string `json:"param"`
			}
			if json.Unmarshal(msg, &m) == nil && m.Event {
				events <- event{at, m.Type, string(msg)}
			}
		}
	}()
	send := func(command, params string) error {
		b, _ := json.Marshal(map[string]string{"command": command, "params": params, "token": command})
		_, err := fmt.Fprintf(conn, "%d:%s,", len(b), b)
		return err
	}
	r.Dialled = time.Now()
	if err := send("dial", c.URI); err != nil {
		return nil, fmt.Errorf("baresip: dial: %w", err)
	}
	timer := time.NewTimer(c.Limit)
	defer timer.Stop()
wait:
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				break wait
			}
			r.Events = append(r.Events, fmt.Sprintf("%s +%.3fs %s", ev.at.Format("15:04:05.000"), ev.at.Sub(r.Dialled).Seconds(), ev.text))
			switch ev.kind {
			case "CALL_ESTABLISHED":
				r.Answered = ev.at
				if c.Answered != nil {
					go c.Answered(ev.at)
				}
			case "CALL_CLOSED":
				r.Ended = ev.at
				var m struct {
					Param string `json:"param"`
				}
				_ = json.Unmarshal([]byte(ev.text), &m)
				r.Closed = m.Param
				break wait
			}
		case <-timer.C:
			r.Ended = time.Now()
			break wait
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	// quit closes the recordings (sndfile writes the wav headers then).
	_ = send("quit", "")
	select {
	case <-done:
		exited = true
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("baresip did not quit\n%s", fileTail(r.Log, 20))
	}
	r.Heard, _ = onlyFile(rec, "*-enc.wav")
	r.Received, _ = onlyFile(rec, "*-dec.wav")
	if r.Answered.IsZero() {
		return r, fmt.Errorf("the call to %s was not answered (%s)\n%s", c.URI, r.Closed, fileTail(r.Log, 20))
	}
	if r.Heard == "" {
		return r, fmt.Errorf("baresip recorded nothing in %s\n%s", rec, fileTail(r.Log, 20))
	}
	return r, nil
}

// BaresipConfig is the configuration of a call: G.711 only, the player and
// source bridged (aubridge, the timed recording), sndfile recording into
// rec, SIP on 127.0.0.1:sipPort, ctrl_tcp on ctrl, no sound device, no
// NAT helpers, no console UI (stdin is not a terminal).
func BaresipConfig(modules, rec string, sipPort int, ctrl string) string {
	return fmt.Sprintf(`# Written by itest (hear.go): one call, recorded.
poll_method		epoll
sip_listen		127.0.0.1:%d
call_local_timeout	120
call_max_calls		1
# The player and the source are the two ends of the aubridge device
# "hear": its thread plays every 20 ms what was received (silence when
# nothing was) into the source, which sndfile records as "enc".
audio_player		aubridge,hear
audio_source		aubridge,hear
audio_alert		aubridge,alert
audio_level		no
ausrc_format		s16
auplay_format		s16
auenc_format		s16
audec_format		s16
# Little buffering (loopback has no jitter): the recording lags the RTP by
# 20-40 ms. 1.0.0's default jitter buffer (5-10 frames) adds 80 ms more.
audio_buffer		20-160
jitter_buffer_delay	1-10
rtp_stats		no
rtcp_mux		no
rtp_ports		40000-59999
module_path		%s
module			g711.so
module			sndfile.so
module			aubridge.so
module_tmp		account.so
module_app		menu.so
module_app		ctrl_tcp.so
snd_path		%s
ctrl_tcp_listen		%s
ringback_disabled	yes
statmode_default	off
`, sipPort, modules, rec, ctrl)
}

func readNetstring(r *bufio.Reader) ([]byte, error) {
	head, err := r.ReadString(':')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[:len(head)-1]))
	if err != nil || n < 0 || n > 1<<20 {
		return nil, fmt.Errorf("netstring: bad length %q", head)
	}
	b := make([]byte, n+1)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	if b[n] != ',' {
		return nil, errors.New("netstring: no comma")
	}
	return b[:n], nil
}

func onlyFile(dir, pattern string) (string, error) {
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(m) != 1 {
		return "", fmt.Errorf("%s: %d files match %s", dir, len(m), pattern)
	}
	return m[0], nil
}

// freeUDPTCPPort is a loopback port free for both UDP and TCP (baresip
// listens for SIP on both), from the range where SIPp's ports come from.
func freeUDPTCPPort() (int, error) {
	for range 100 {
		port, err := FreeUDPPorts("127.0.0.1", 1)
		if err != nil {
			return 0, err
		}
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			ln.Close()
			return port, nil
		}
	}
	return 0, errors.New("no port free for both UDP and TCP on 127.0.0.1")
}

// What the analysis calls audio. The recording is cut into frames of 20 ms
// (FreeSWITCH's and baresip's packet time) and each frame's RMS level is
// compared with AudibleDBFS. Calibrated on 7090 and 7010 calls on this
// harness and on the files FreeSWITCH plays:
//
//   - nothing decoded (no RTP in time): digital zero, no level at all;
//   - FreeSWITCH's silent RTP (what it sends while a file's silent padding
//     plays, or between applications): -84 dBFS, the smallest step of G.711;
//   - flite's lead-in before the first word of a TTS prompt: -70 to -75;
//   - the quietest frames inside speech (eslapp's prompts, flite): -54 to
//     -68, between words; the hold music's dip at each chord change (one
//     frame every 2.5 s): -62 to -64; speech and music otherwise -12 to -50.
//
// -60 dBFS puts everything FreeSWITCH sends as silence, and flite's lead-in,
// below the line and the music and speech above it; the frames that cross
// it inside music or speech are single frames (20 ms), far below any gap
// worth reporting. Gaps count from the first audible frame to the end of
// the call.
const (
	HearFrame   = 20 * time.Millisecond
	AudibleDBFS = -60.0
	// The agent stand-in's tone (tone_stream://%(300,100,440)): frames in
	// which the 440 Hz component (Goertzel) carries at least ToneShare of
	// the frame's energy, ToneFrames in a row. A pure tone gives 0.98-1.02
	// per frame; eslapp's prompts and the hold music at most 0.55 in any
	// single frame and never two in a row above 0.8.
	ToneHz     = 440.0
	ToneShare  = 0.8
	ToneFrames = 5
	// A prompt is found where speech starts after silence and matches the
	// prompt's speech chunk by chunk (PromptChunk each, normalized
	// cross-correlation at least PromptMatch): G.711 keeps the waveform
	// (0.99 and more on a match), other speech stays below 0.5. Prompts
	// that start with the same words (hold.wav and transferring.wav: "Please
	// hold while we ...") are told apart by how far they go on matching.
	PromptChunk = 100 * time.Millisecond
	PromptMatch = 0.8
	// PromptHeard is the least that counts as hearing a prompt: a single
	// chunk can match a syllable of another prompt.
	PromptHeard = 300 * time.Millisecond
)

// HearGap is a stretch without audio, from the answer.
type HearGap struct {
	From, To time.Duration
	// NoRTP is the part of it in which nothing was decoded: FreeSWITCH sent
	// no RTP (or it came too late to be played).
	NoRTP time.Duration
}

// Len is the gap's length.
func (g HearGap) Len() time.Duration { return g.To - g.From }

func (g HearGap) String() string {
	if g.Len() <= 0 {
		return "none"
	}
	s := fmt.Sprintf("%.2f s (%.2f-%.2f s)", g.Len().Seconds(), g.From.Seconds(), g.To.Seconds())
	if g.NoRTP > 0 {
		s += fmt.Sprintf(", %.2f s of it without RTP", g.NoRTP.Seconds())
	}
	return s
}

// CallerHeard is what the caller heard, every time from the answer (the
// start of the timed recording: baresip starts the call's audio when the
// 200 OK arrives, and reports the call established at the same
// millisecond).
type CallerHeard struct {
	Length time.Duration // the recording: from the answer to the end of the call
	// RTPStart is when the first decoded frame played; Received how much
	// decoded audio baresip's decoder produced in all (sndfile's "dec"):
	// Length - RTPStart - Received is about how long no RTP came.
	RTPStart, Received time.Duration
	FirstAudio         time.Duration // the first audible frame; -1 when none
	LastAudio          time.Duration // the end of the last audible frame
	// Longest is the longest gap after the first audio, up to the end of
	// the call (the silence after the last audio counts); Gaps are all of
	// at least 200 ms, in order.
	Longest HearGap
	Gaps    []HearGap
	// NoRTP is how long, after RTP started, nothing was decoded.
	NoRTP time.Duration
	Tone  time.Duration // the agent's 440 Hz tone; -1 when not heard
	// Prompts is where each known prompt's speech was first heard;
	// absent when not heard.
	Prompts map[string]HeardPrompt
}

// LongestBefore is the longest gap of at least 200 ms that ends by t
// (zero when none).
func (h *CallerHeard) LongestBefore(t time.Duration) HearGap {
	var g HearGap
	for _, x := range h.Gaps {
		if x.To <= t && x.Len() > g.Len() {
			g = x
		}
	}
	return g
}

// HearPrompt is a prompt the analysis looks for: its speech, from its
// first audible frame.
type HearPrompt struct {
	Name   string
	Rate   int
	speech []float64
}

// HeardPrompt is where a prompt was heard.
type HeardPrompt struct {
	At     time.Duration // its first audible frame, from the answer
	Played time.Duration // how much of its speech matched (less when cut off)
}

// LoadHearPrompts reads the prompts NAME.wav of soundsDir/RATE (eslapp's
// sounds layout) and keeps their speech.
func LoadHearPrompts(soundsDir string, rate int, names ...string) ([]HearPrompt, error) {
	var out []HearPrompt
	for _, name := range names {
		s, r, err := readWavMono(filepath.Join(soundsDir, strconv.Itoa(rate), name))
		if err != nil {
			return nil, err
		}
		n := r * int(HearFrame) / int(time.Second)
		first, last := -1, -1
		for i := 0; i+n <= len(s); i += n {
			if frameDBFS(s[i:i+n]) > AudibleDBFS {
				if first < 0 {
					first = i
				}
				last = i + n
			}
		}
		if first < 0 || last-first < r*int(PromptChunk)/int(time.Second) {
			return nil, fmt.Errorf("%s: no speech to look for", name)
		}
		out = append(out, HearPrompt{Name: name, Rate: r, speech: s[first:last]})
	}
	return out, nil
}

// AnalyseHeard reads a call's timed recording (and, if given, the decoded
// RTP) and says what the caller heard.
func AnalyseHeard(heard, received string, prompts []HearPrompt) (*CallerHeard, error) {
	s, rate, err := readWavMono(heard)
	if err != nil {
		return nil, err
	}
	n := rate * int(HearFrame) / int(time.Second)
	at := func(frame int) time.Duration { return time.Duration(frame) * HearFrame }
	frames := len(s) / n
	h := &CallerHeard{Length: time.Duration(len(s)) * time.Second / time.Duration(rate), FirstAudio: -1, Tone: -1, RTPStart: -1, Prompts: map[string]HeardPrompt{}}
	if received != "" {
		if d, r, err := readWavMono(received); err == nil && r > 0 {
			h.Received = time.Duration(len(d)) * time.Second / time.Duration(r)
		}
	}
	audible := make([]bool, frames)
	zero := make([]bool, frames)
	toneRun := 0
	for f := range frames {
		x := s[f*n : (f+1)*n]
		db := frameDBFS(x)
		zero[f] = math.IsInf(db, -1)
		audible[f] = db > AudibleDBFS
		if !zero[f] && h.RTPStart < 0 {
			h.RTPStart = at(f)
		}
		if zero[f] && h.RTPStart >= 0 {
			h.NoRTP += HearFrame
		}
		if audible[f] {
			if h.FirstAudio < 0 {
				h.FirstAudio = at(f)
			}
			h.LastAudio = at(f + 1)
		}
		if audible[f] && goertzelShare(x, ToneHz, rate) >= ToneShare {
			toneRun++
			if toneRun == ToneFrames && h.Tone < 0 {
				h.Tone = at(f + 1 - ToneFrames)
			}
		} else {
			toneRun = 0
		}
	}
	if h.RTPStart < 0 {
		h.RTPStart = h.Length
	}
	// Gaps: runs of inaudible frames after the first audio, to the end.
	if h.FirstAudio >= 0 {
		var g *HearGap
		for f := int(h.FirstAudio / HearFrame); f <= frames; f++ {
			if f < frames && !audible[f] {
				if g == nil {
					g = &HearGap{From: at(f)}
				}
				g.To = at(f + 1)
				if zero[f] {
					g.NoRTP += HearFrame
				}
				continue
			}
			if g != nil {
				if g.Len() > h.Longest.Len() {
					h.Longest = *g
				}
				if g.Len() >= 200*time.Millisecond {
					h.Gaps = append(h.Gaps, *g)
				}
				g = nil
			}
		}
		if frames*n < len(s) && h.Longest.To == at(frames) {
			h.Longest.To = h.Length
		}
	}
	// Prompts: where speech starts after a silent frame, each prompt is
	// followed chunk by chunk; the one that goes on matching longest is
	// the one heard there.
	for _, p := range prompts {
		if p.Rate != rate {
			return nil, fmt.Errorf("%s: recorded at %d Hz, prompt %s at %d Hz", heard, rate, p.Name, p.Rate)
		}
	}
	for f := 1; f < frames; f++ {
		if !audible[f] || audible[f-1] {
			continue
		}
		var best HeardPrompt
		name := ""
		for _, p := range prompts {
			if _, seen := h.Prompts[p.Name]; seen {
				continue
			}
			at, played := followPrompt(s, p.speech, (f-2)*n, (f+1)*n, rate)
			if played > best.Played {
				best, name = HeardPrompt{At: time.Duration(at) * time.Second / time.Duration(rate), Played: played}, p.Name
			}
		}
		if name != "" && best.Played >= PromptHeard {
			h.Prompts[name] = best
		}
	}
	return h, nil
}

// followPrompt looks for speech's first chunk in s starting between from
// and to, then for each next chunk where the previous one ended (up to one
// frame later: baresip inserts a frame of silence when a packet comes late).
// It returns where the speech started and how much of it matched; a chunk
// that is silent in the prompt counts without a test, and two chunks in a
// row that do not match end it.
func followPrompt(s, speech []float64, from, to, rate int) (int, time.Duration) {
	chunk := rate * int(PromptChunk) / int(time.Second)
	slip := rate * int(HearFrame) / int(time.Second)
	start, ok := matchAt(s, speech[:chunk], from, to)
	if !ok {
		return 0, 0
	}
	matched, misses, pos := 1, 0, start+chunk
	for c := chunk; c+chunk <= len(speech) && misses < 2; c += chunk {
		t := speech[c : c+chunk]
		if frameDBFS(t) <= AudibleDBFS {
			matched++
			pos += chunk
			continue
		}
		if at, ok := matchAt(s, t, pos-slip/4, pos+slip+slip/4); ok {
			matched, misses, pos = matched+1, 0, at+chunk
		} else {
			misses++
			pos += chunk
		}
	}
	return start, time.Duration(matched) * PromptChunk
}

// matchAt looks for t in s starting between from and to, and returns the
// best start if its normalized correlation reaches PromptMatch.
func matchAt(s, t []float64, from, to int) (int, bool) {
	var tt float64
	for _, v := range t {
		tt += v * v
	}
	best, bestAt := 0.0, -1
	for o := max(from, 0); o <= to && o+len(t) <= len(s); o++ {
		var xt, xx float64
		for k, v := range t {
			x := s[o+k]
			xt += x * v
			xx += x * x
		}
		if xx == 0 {
			continue
		}
		if r := xt / math.Sqrt(xx*tt); r > best {
			best, bestAt = r, o
		}
	}
	return bestAt, bestAt >= 0 && best >= PromptMatch
}

// frameDBFS is a frame's RMS level in dB below a 16-bit full scale; -Inf
// for digital zero.
func frameDBFS(x []float64) float64 {
	var sum float64
	for _, v := range x {
		sum += v * v
	}
	if sum == 0 {
		return math.Inf(-1)
	}
	return 20 * math.Log10(math.Sqrt(sum/float64(len(x)))/32768)
}

// goertzelShare is the share of a frame's energy at hz: 1 for a pure tone
// of that frequency.
func goertzelShare(x []float64, hz float64, rate int) float64 {
	c := 2 * math.Cos(2*math.Pi*hz/float64(rate))
	var s1, s2, sum float64
	for _, v := range x {
		s1, s2 = v+c*s1-s2, s1
		sum += v * v
	}
	if sum == 0 {
		return 0
	}
	power := s1*s1 + s2*s2 - c*s1*s2
	return 2 * power / (float64(len(x)) * sum)
}

// readWavMono reads a 16-bit mono wav file.
func readWavMono(path string) ([]float64, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	d := wav.NewDecoder(f)
	buf, err := d.FullPCMBuffer()
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	if d.NumChans != 1 || d.BitDepth != 16 || d.SampleRate == 0 {
		return nil, 0, fmt.Errorf("%s: %d channels, %d bits, %d Hz: want 16-bit mono", path, d.NumChans, d.BitDepth, d.SampleRate)
	}
	s := make([]float64, len(buf.Data))
	for i, v := range buf.Data {
		s[i] = float64(v)
	}
	return s, int(d.SampleRate), nil
}

// HearScenario is a situation a call is placed into, on a pool (two
// FreeSWITCH processes, two eslapps each connected to both).
type HearScenario struct {
	Name string // for the table and -run
	Ext  string // the extension called
	What string // one line: what happens
	// Socketless: the call waits in hold music, so the bounds on gaps
	// apply.
	Socketless bool
	// prepare runs before the call; answered runs from the answer on (on
	// a goroutine of its own). Each returns a note for the report.
	prepare  func(ctx context.Context, p *Pool, host int) (string, error)
	answered func(p *Pool, host int, at time.Time) string
	// limit, when set, ends the call (the caller hangs up) this long
	// after the dial.
	limit time.Duration
}

// HearScenarios are the situations itest/hear measures; the test picks
// some by name.
func HearScenarios() []HearScenario {
	return []HearScenario{
		{Name: "7090", Ext: "7090", What: "pure dialplan, the baseline: TTS prompt cut after at most 1 s, OnSuccess, agent"},
		{Name: "7010", Ext: "7010", Socketless: true, What: "socket-less, both eslapps up: hold music, eslapp's prompt, CRM after 1 s, OnSuccess, agent"},
		{Name: "7010 no eslapp", Ext: "7010", Socketless: true, What: "socket-less, both eslapps killed before the call: hold music, the pick-up net routes it to OnError",
			prepare: func(ctx context.Context, p *Pool, host int) (string, error) {
				for i := range p.Apps {
					p.KillEslapp(i)
				}
				return "both eslapps killed before the call", nil
			}},
		{Name: "7010 eslapp killed", Ext: "7010", Socketless: true, What: "socket-less, the eslapp that claimed the call killed (SIGKILL) 0.5 s after the answer: its own net routes it to OnError",
			answered: func(p *Pool, host int, at time.Time) string {
				return killClaimer(p, at, "eslapp_socketless_calls{", 500*time.Millisecond)
			}},
		{Name: "7019 eslapp killed", Ext: "7019", Socketless: true, What: "7010 with a short prompt (hold.wav alone), its eslapp killed 0.5 s after the answer: the prompt ends before the net fires",
			answered: func(p *Pool, host int, at time.Time) string {
				return killClaimer(p, at, "eslapp_socketless_calls{", 500*time.Millisecond)
			}},
		{Name: "7010 music only", Ext: "7010", Socketless: true, limit: 25 * time.Second,
			What: "the hold music alone for 25 s: both eslapps killed, the pick-up net cancelled by hand as a claim would; the caller hangs up",
			prepare: func(ctx context.Context, p *Pool, host int) (string, error) {
				for i := range p.Apps {
					p.KillEslapp(i)
				}
				return "both eslapps killed before the call", nil
			},
			answered: func(p *Pool, host int, at time.Time) string {
				return cancelPickup(p, host, at)
			}},
		{Name: "7000", Ext: "7000", What: "held socket, both eslapps up: eslapp's prompt, CRM after 1 s, OnSuccess, agent"},
		{Name: "7000 first killed", Ext: "7000", What: "held socket, the first eslapp of the socket list killed before the call: FreeSWITCH connects to the second",
			prepare: func(ctx context.Context, p *Pool, host int) (string, error) {
				first := strings.Split(p.Hosts[host].Options.Sockets, "|")[0]
				for i, a := range p.Apps {
					if a.Listen == first {
						p.KillEslapp(i)
						return fmt.Sprintf("eslapp %d (%s, first in the list) killed before the call", i, first), nil
					}
				}
				return "", fmt.Errorf("no eslapp listens on %s", first)
			}},
	}
}

// killClaimer finds the eslapp that holds the call (the gauge metric above
// zero), and kills it after from the answer.
func killClaimer(p *Pool, answered time.Time, gauge string, after time.Duration) string {
	claimer := -1
	for deadline := answered.Add(after + 2*time.Second); claimer < 0 && time.Now().Before(deadline); {
		for i := range p.Apps {
			if eslappAlive(p, i) && p.Metric(i, gauge) > 0 {
				claimer = i
			}
		}
		if claimer < 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if claimer < 0 {
		return "no eslapp held the call: none killed"
	}
	time.Sleep(time.Until(answered.Add(after)))
	p.KillEslapp(claimer)
	return fmt.Sprintf("eslapp %d held the call, killed %.2f s after the answer", claimer, time.Since(answered).Seconds())
}

// cancelPickup cancels the pick-up net of the call just announced, as an
// eslapp's claim does, so that the call stays in the dialplan's hold
// music.
func cancelPickup(p *Pool, host int, answered time.Time) string {
	uuid := ""
	for deadline := answered.Add(1500 * time.Millisecond); uuid == "" && time.Now().Before(deadline); {
		for _, c := range p.Calls() {
			if !c.Announced.IsZero() && c.Ended.IsZero() {
				uuid = c.UUID
			}
		}
		if uuid == "" {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if uuid == "" {
		return "the call was not announced: its pick-up net stays"
	}
	fs := p.Hosts[host].FS()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := DialInbound(ctx, fs.ESL, fs.Password)
	if err != nil {
		return "cancelling the pick-up net: " + err.Error()
	}
	defer c.Close()
	out, err := c.API("sched_del eslapp-pick-" + uuid)
	if err != nil {
		return "cancelling the pick-up net: " + err.Error()
	}
	return fmt.Sprintf("pick-up net cancelled %.2f s after the answer (%s)", time.Since(answered).Seconds(), out)
}

func eslappAlive(p *Pool, i int) bool {
	proc := p.Apps[i].Proc()
	if proc == nil {
		return false
	}
	select {
	case <-proc.Done():
		return false
	default:
		return true
	}
}

// HearOptions say how to place the calls.
type HearOptions struct {
	Baresip, Modules string
	Prompts          []HearPrompt
	Host             int           // the pool's FreeSWITCH to call
	Limit            time.Duration // a call's longest life; default 40 s
}

// HearRun is one call of a scenario: what baresip saw, what the caller
// heard, and the call as FreeSWITCH recorded it.
type HearRun struct {
	Scenario HearScenario
	Call     *BaresipResult
	Heard    *CallerHeard
	FS       *PoolCall // nil when FreeSWITCH's record of it was not found
	// FSEvents is what FreeSWITCH did to the call (the applications it
	// ran, the files it played), from baresip's answer.
	FSEvents []HearFSEvent
	Notes    []string
}

// HearFSEvent is one thing FreeSWITCH did to the call.
type HearFSEvent struct {
	At   time.Duration // from baresip's answer (FreeSWITCH's clock: the same host's)
	What string        // "playback hold.wav", "stop hold.wav", "park", "transfer OnError XML crm_branches", ...
}

// fsWatch records what a FreeSWITCH does to its channels until stopped.
type fsWatch struct {
	c      *InboundConn
	mu     sync.Mutex
	events []Event
	done   chan struct{}
}

func watchFreeSWITCH(ctx context.Context, fs *FreeSWITCH) (*fsWatch, error) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	c, err := DialInbound(dctx, fs.ESL, fs.Password)
	cancel()
	if err != nil {
		return nil, err
	}
	if _, err := c.Command("event plain CHANNEL_ANSWER CHANNEL_EXECUTE PLAYBACK_START PLAYBACK_STOP CHANNEL_HANGUP"); err != nil {
		c.Close()
		return nil, err
	}
	w := &fsWatch{c: c, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			ev, err := c.Next()
			if err != nil {
				return
			}
			w.mu.Lock()
			w.events = append(w.events, ev)
			w.mu.Unlock()
		}
	}()
	return w, nil
}

// stop ends the watch and returns what happened, from answered.
func (w *fsWatch) stop(answered time.Time) []HearFSEvent {
	w.c.Close()
	<-w.done
	var out []HearFSEvent
	for _, ev := range w.events {
		var what string
		switch ev.Get("Event-Name") {
		case "CHANNEL_ANSWER":
			what = "answer"
		case "CHANNEL_EXECUTE":
			app, data := ev.Get("Application"), ev.Get("Application-Data")
			switch app {
			case "playback", "set", "multiset", "event", "export", "log", "answer":
				continue // playback: PLAYBACK_START says more; the rest plays nothing
			}
			what = strings.TrimSpace(app + " " + soundName(data))
		case "PLAYBACK_START":
			what = "playback " + soundName(ev.Get("Playback-File-Path"))
		case "PLAYBACK_STOP":
			what = "stop " + soundName(ev.Get("Playback-File-Path"))
			if st := ev.Get("Playback-Status"); st != "" && st != "done" {
				what += " (" + st + ")"
			}
		case "CHANNEL_HANGUP":
			what = "hangup " + ev.Get("Hangup-Cause")
		default:
			continue
		}
		e := HearFSEvent{At: ev.Time().Sub(answered), What: what}
		if n := len(out); n > 0 && out[n-1] == e {
			continue
		}
		out = append(out, e)
	}
	return out
}

// soundName shortens what FreeSWITCH plays: a file's base name, the hold
// music, a TTS text, a tone.
func soundName(s string) string {
	switch {
	case strings.HasPrefix(s, "file_string://"):
		var parts []string
		for _, f := range strings.Split(strings.TrimPrefix(s, "file_string://"), "!") {
			parts = append(parts, soundName(f))
		}
		return strings.Join(parts, " + ")
	case strings.HasPrefix(s, "local_stream://"):
		return "hold music (" + strings.TrimPrefix(s, "local_stream://") + ")"
	case strings.HasPrefix(s, "tone_stream://"):
		return "tone"
	case strings.Contains(s, "tts://") || strings.HasPrefix(s, "say:") || strings.HasPrefix(s, "{"):
		return "TTS"
	case strings.HasPrefix(s, "/"):
		return filepath.Base(s)
	}
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// During is what FreeSWITCH did from a little before a gap to its end: why
// the caller heard nothing then.
func (r *HearRun) During(g HearGap) string {
	var parts []string
	playing := ""
	for _, ev := range r.FSEvents {
		switch {
		case ev.At < g.From && strings.HasPrefix(ev.What, "playback "):
			playing = ev.What
		case ev.At >= g.From-100*time.Millisecond && ev.At <= g.To+50*time.Millisecond:
			parts = append(parts, fmt.Sprintf("%s at %.2f s", ev.What, ev.At.Seconds()))
		}
	}
	if playing != "" {
		parts = append([]string{"while " + strings.TrimPrefix(playing, "playback ") + " played"}, parts...)
	}
	return strings.Join(parts, ", ")
}

// Hear places one call of sc on the pool, in dir (created), and restarts
// the eslapps the scenario killed.
func Hear(ctx context.Context, p *Pool, sc HearScenario, o HearOptions, dir string) (*HearRun, error) {
	if o.Limit == 0 {
		o.Limit = 40 * time.Second
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := restartDead(ctx, p); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := p.WaitIdle(wctx)
	cancel()
	if err != nil {
		return nil, err
	}
	run := &HearRun{Scenario: sc}
	if sc.prepare != nil {
		note, err := sc.prepare(ctx, p, o.Host)
		if err != nil {
			return nil, err
		}
		run.Notes = append(run.Notes, note)
	}
	p.Forget()
	watch, err := watchFreeSWITCH(ctx, p.Hosts[o.Host].FS())
	if err != nil {
		return nil, err
	}
	var answeredNote chan string
	call := BaresipCall{Baresip: o.Baresip, Modules: o.Modules, Dir: dir, Limit: cmp.Or(sc.limit, o.Limit),
		URI: "sip:" + sc.Ext + "@" + p.Hosts[o.Host].FS().SIP}
	if sc.answered != nil {
		answeredNote = make(chan string, 1)
		call.Answered = func(at time.Time) { answeredNote <- sc.answered(p, o.Host, at) }
	}
	res, err := call.Run(ctx)
	run.Call = res
	if answeredNote != nil && res != nil && !res.Answered.IsZero() {
		run.Notes = append(run.Notes, <-answeredNote)
	}
	defer func() { _ = restartDead(ctx, p) }()
	if err != nil {
		watch.stop(time.Now())
		return run, err
	}
	// FreeSWITCH's record: its CHANNEL_HANGUP_COMPLETE follows the BYE.
	for deadline := time.Now().Add(3 * time.Second); run.FS == nil && time.Now().Before(deadline); {
		for _, c := range p.Calls() {
			if c.Ext == sc.Ext && !c.Ended.IsZero() {
				run.FS = &c
				break
			}
		}
		if run.FS == nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	run.FSEvents = watch.stop(res.Answered)
	if run.Heard, err = AnalyseHeard(res.Heard, res.Received, o.Prompts); err != nil {
		return run, err
	}
	if d := run.Heard.Length - res.Ended.Sub(res.Answered); d > 150*time.Millisecond || d < -150*time.Millisecond {
		run.Notes = append(run.Notes, fmt.Sprintf("the recording (%.2f s) and the call (%.2f s from CALL_ESTABLISHED to CALL_CLOSED) differ by %.2f s",
			run.Heard.Length.Seconds(), res.Ended.Sub(res.Answered).Seconds(), d.Seconds()))
	}
	return run, nil
}

// restartDead starts every eslapp of the pool that is not running.
func restartDead(ctx context.Context, p *Pool) error {
	for i := range p.Apps {
		if !eslappAlive(p, i) {
			if err := p.StartEslapp(ctx, i); err != nil {
				return err
			}
		}
	}
	return nil
}

// Branch is the branch prompt the caller heard first (transferring.wav on
// the way to the agent, apology.wav on OnError), "" when none.
func (r *HearRun) Branch() (string, time.Duration) {
	name, at := "", time.Duration(-1)
	for _, n := range []string{"transferring.wav", "apology.wav"} {
		if hp, ok := r.Heard.Prompts[n]; ok && (at < 0 || hp.At < at) {
			name, at = n, hp.At
		}
	}
	return name, at
}

// FSBranched is when FreeSWITCH started the branch prompt
// (PLAYBACK_START), from baresip's answer: -1 when unknown.
func (r *HearRun) FSBranched() time.Duration {
	if r.FS == nil || r.FS.Branched.IsZero() || r.Call == nil {
		return -1
	}
	return r.FS.Branched.Sub(r.Call.Answered)
}

// Ended says how the call ended: the branches FreeSWITCH took, whether a
// net took it there, whether it reached the agent, and who hung up.
func (r *HearRun) Ended() string {
	var parts []string
	if r.FS != nil {
		b := strings.Join(r.FS.Branches, ", ")
		if b == "" {
			b = "no branch"
		}
		b = strings.ReplaceAll(b, " XML crm_branches", "")
		if r.FS.ByNet() {
			b += " by a net"
		}
		parts = append(parts, b)
		if r.FS.Agent {
			parts = append(parts, "agent")
		}
	} else {
		parts = append(parts, "FreeSWITCH's record missing")
	}
	switch {
	case r.Call == nil:
	case r.Call.ByFarEnd():
		parts = append(parts, "FreeSWITCH's BYE")
	case r.Call.Closed != "":
		parts = append(parts, r.Call.Closed)
	default:
		parts = append(parts, "the caller hung up at the limit")
	}
	return strings.Join(parts, ", ")
}
