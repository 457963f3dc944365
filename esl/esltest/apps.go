package esltest

import (
	"strconv"
	"strings"
	"time"
)

// The channel thread. Messages (sendmsg, or events queued with sendevent)
// wait in c.queue. FreeSWITCH takes one off when the channel is parked in
// the socket app, and also from inside a running media app (playback, say,
// speak, sleep all call switch_ivr_parse_all_events), which then runs the
// new app nested while it waits: that is why a second prompt must be sent
// with "event-lock: true", which makes switch_core_session_dequeue_private_event
// hold the queue until the locked app has completed. c.stack holds the
// running apps, innermost last.

type appState int

const (
	appPending appState = iota // taken off the queue, CHANNEL_EXECUTE not yet sent
	appRunning
)

type appStatus int

const (
	statusDone    appStatus = iota // ran to its end
	statusBreak                    // uuid_break or a terminator stopped it
	statusError                    // hangup or transfer cut it
	statusMissing                  // file not found
)

type appRun struct {
	name, rawArg, arg string
	uuid              string
	eventLock         bool
	loops, iter       int
	state             appState
	startAt           time.Time
	iterStart         time.Time
	media             bool
	endAt             time.Time
	remaining         time.Duration
	playPath          string // PLAYBACK_* Playback-File-Path; "" for no PLAYBACK events
	playStarted       bool
	played            int // index into c.played, -1 for none
	dur               time.Duration
	// endless: the dialplan's hold music, which only a break or the call
	// moving on ends; applications sent meanwhile run nested inside it.
	endless bool
}

// dialplanHangup is the message that stands for the extension a transfer
// led to: "hangup NORMAL_CLEARING" from the dialplan.
func dialplanHangup() *Command {
	return &Command{Name: "sendmsg", CallCommand: "execute", App: "hangup", AppArg: "NORMAL_CLEARING", Loops: 1}
}

func (c *Call) eventLocked() bool {
	for _, a := range c.stack {
		if a.eventLock {
			return true
		}
	}
	return false
}

// pump takes messages off the queue while the channel can run them.
func (c *Call) pump() {
	for !c.closed && !c.hungUp && len(c.queue) > 0 {
		top := c.top()
		nested := false
		switch {
		case top == nil:
		case top.state == appRunning && top.media && !c.eventLocked():
			nested = true
		default:
			return
		}
		msg := c.queue[0]
		c.queue = c.queue[1:]
		switch strings.ToLower(msg.CallCommand) {
		case "execute":
			if msg.App == "" || msg.Loops == 0 {
				continue
			}
			a := &appRun{name: msg.App, rawArg: msg.AppArg, uuid: msg.EventUUID, eventLock: msg.EventLock, loops: msg.Loops, played: -1}
			if a.uuid == "" {
				a.uuid = NewUUID()
			}
			if nested {
				top.remaining = time.Until(top.endAt)
				top.endAt = time.Time{}
			}
			c.stack = append(c.stack, a)
			if nested || c.opts.AppStartDelay <= 0 {
				c.startApp(a)
			} else {
				a.startAt = time.Now().Add(c.opts.AppStartDelay)
				return
			}
		case "hangup":
			cause := msg.header("hangup-cause")
			if cause == "" {
				cause = "NORMAL_CLEARING"
			}
			c.hangupChannel(cause, "send_bye")
		case "":
		default:
			c.logf("sendmsg call-command %q is not modelled; ignored", msg.CallCommand)
		}
	}
}

// knownApps are the applications the double runs; any other makes
// FreeSWITCH hang up with DESTINATION_OUT_OF_ORDER ("Invalid Application").
var knownApps = map[string]bool{
	"playback": true, "say": true, "speak": true, "sleep": true, "set": true,
	"unset": true, "export": true, "multiset": true, "transfer": true,
	"hangup": true, "answer": true, "pre_answer": true, "ring_ready": true,
	"log": true, "info": true, "event": true,
}

// startApp runs one iteration of the app at the top of the stack:
// switch_ivr_parse_event, switch_core_session_execute_application and
// switch_core_session_exec.
func (c *Call) startApp(a *appRun) {
	a.state = appRunning
	a.iter++
	a.iterStart = time.Now()
	name := strings.ToLower(a.name)
	if !knownApps[name] {
		c.logf("Invalid Application %s", a.name)
		c.stack = c.stack[:len(c.stack)-1]
		c.hangupChannel("DESTINATION_OUT_OF_ORDER", "send_bye")
		return
	}
	c.setVar("current_loop", strconv.Itoa(a.iter))
	c.setVar("total_loops", strconv.Itoa(a.loops))
	a.arg = a.rawArg
	if v, _ := c.ch.vars.get("app_disable_expand_variables"); !switchTrue(v) {
		a.arg = c.expand(a.rawArg)
	}
	c.setVar("current_application", a.name)
	c.setVar("current_application_data", a.arg)
	c.delVar("current_application_response")
	c.emit(eventSpec{name: "CHANNEL_EXECUTE", loc: locExecute, extra: appHeaders(a, false, "")})

	switch name {
	case "playback", "say", "speak", "sleep":
		c.startMedia(a, name)
		return
	case "set":
		c.baseSet(a.arg)
	case "multiset":
		arg, delim := a.arg, byte(' ')
		if strings.HasPrefix(arg, "^^") && len(arg) > 2 {
			delim, arg = arg[2], arg[3:]
		}
		for _, part := range SeparateString(arg, delim, 256) {
			c.baseSet(part)
		}
	case "unset":
		if a.arg != "" {
			c.delVar(a.arg)
		}
	case "export":
		c.export(a.arg)
	case "transfer":
		if parts := transferArgs(a.arg); len(parts) > 0 && parts[0] != "" {
			c.transferProfile(parts)
			c.queue = nil
			c.completeApp(a, statusDone)
			c.transferRoute()
			return
		}
	case "hangup":
		cause := a.arg
		if cause == "" {
			cause = "NORMAL_CLEARING"
		}
		c.hangupChannel(cause, "send_bye")
		return
	}
	c.completeApp(a, statusDone)
}

// appHeaders are the Application-* headers of CHANNEL_EXECUTE(_COMPLETE);
// Application-Data is absent when there is no argument.
func appHeaders(a *appRun, complete bool, response string) []Header {
	h := []Header{{"Application", a.name}}
	if a.arg != "" {
		h = append(h, Header{"Application-Data", a.arg})
	}
	if complete {
		h = append(h, Header{"Application-Response", response})
	}
	return append(h, Header{"Application-UUID", a.uuid})
}

// baseSet is mod_dptools' base_set: NAME=VALUE (or NAME,VALUE); the value
// is expanded once more; an empty value unsets.
func (c *Call) baseSet(data string) {
	if data == "" {
		return
	}
	name, val, ok := strings.Cut(data, "=")
	if !ok {
		name, val, _ = strings.Cut(data, ",")
	}
	if val != "" {
		val = c.expand(val)
	}
	c.setVar(name, val)
}

// export is base_export plus switch_channel_export_variable_var_check.
func (c *Call) export(data string) {
	if data == "" {
		return
	}
	name, val, _ := strings.Cut(data, "=")
	if val != "" {
		val = c.expand(val)
	}
	local := true
	if strings.HasPrefix(name, "nolocal:") {
		name, local = name[len("nolocal:"):], false
	}
	if local {
		c.setVar(name, val)
	}
	if val != "" {
		if ex, ok := c.ch.vars.get("export_vars"); ok {
			c.setVar("export_vars", ex+","+name)
		} else {
			c.setVar("export_vars", name)
		}
	}
}

// startMedia begins playback, say, speak or sleep.
func (c *Call) startMedia(a *appRun, name string) {
	p := Played{At: time.Now(), App: name, Arg: a.arg, UUID: a.uuid}
	var dur time.Duration
	found := true
	switch name {
	case "playback":
		c.delVar("playback_terminator_used")
		if text, ok := strings.CutPrefix(a.arg, "say:"); ok {
			// switch_ivr_play_file speaks "say:TEXT" with the channel's
			// tts_engine/tts_voice, without PLAYBACK events.
			p.Texts = []string{text}
			dur = c.speakDuration(text)
			break
		}
		dur, found = c.playbackPlan(a.arg, &p)
		a.playPath = a.arg
	case "say":
		c.delVar("playback_terminator_used")
		if argv := SeparateString(a.arg, ' ', 5); len(argv) > 0 {
			p.Texts = []string{argv[len(argv)-1]}
		}
		dur = c.sayDuration(a.arg)
	case "speak":
		c.delVar("playback_terminator_used")
		parts := SeparateString(a.arg, '|', 3)
		text := ""
		if len(parts) > 0 {
			text = parts[len(parts)-1]
		}
		p.Texts = []string{text}
		dur = c.speakDuration(text)
	case "sleep":
		dur = time.Duration(atoi(a.arg)) * time.Millisecond
	}
	if name != "sleep" {
		c.mu.Lock()
		a.played = len(c.played)
		c.played = append(c.played, p)
		c.mu.Unlock()
	}
	if !found {
		c.completeApp(a, statusMissing)
		return
	}
	a.media = true
	a.dur = max(dur, 0)
	a.endAt = time.Now().Add(a.dur)
	if a.endless {
		a.endAt = time.Time{}
	}
	if a.playPath != "" {
		a.playStarted = true
		c.emit(eventSpec{name: "PLAYBACK_START", loc: locPlaybackStart, extra: playbackHeaders(a.playPath, "")})
	}
}

func playbackHeaders(path, status string) []Header {
	var h []Header
	switch {
	case strings.HasPrefix(path, "local_stream:"):
		h = append(h, Header{"Playback-File-Type", "local_stream"})
	case strings.HasPrefix(path, "tone_stream:"):
		h = append(h, Header{"Playback-File-Type", "tone_stream"})
	}
	h = append(h, Header{"Playback-File-Path", path})
	if status != "" {
		h = append(h, Header{"Playback-Status", status})
	}
	return h
}

// playbackPlan works out what a playback argument plays: a file_string://
// list split like FreeSWITCH's file_string module (switch_separate_string
// on '!'), tts:// and say: TTS files, streams, files. A missing first file
// is FILE NOT FOUND; later missing parts are skipped.
func (c *Call) playbackPlan(arg string, p *Played) (time.Duration, bool) {
	files := []string{arg}
	if rest, ok := strings.CutPrefix(arg, "file_string://"); ok {
		files = SeparateString(rest, '!', 128)
	}
	p.Files = files
	var total time.Duration
	for i, f := range files {
		d, ok := c.fileDuration(f, p)
		if !ok {
			if i == 0 {
				return 0, false
			}
			continue
		}
		total += d
	}
	return total, len(files) > 0
}

func (c *Call) fileDuration(f string, p *Played) (time.Duration, bool) {
	if rest, ok := strings.CutPrefix(f, "tts://"); ok {
		// mod_ssml tts_file_open: switch_separate_string(arg, '|', args, 3)
		// and anything but three fields fails to open.
		parts := SeparateString(rest, '|', 3)
		if len(parts) != 3 {
			return 0, false
		}
		p.Texts = append(p.Texts, parts[2])
		return c.speakDuration(parts[2]), true
	}
	path := f
	if !strings.HasPrefix(path, "/") && !strings.Contains(path, "://") {
		if prefix, ok := c.lookup("sound_prefix", -1); ok {
			path = prefix + "/" + path
		}
	}
	if c.opts.Media != nil {
		return c.opts.Media(path)
	}
	return defaultMedia(path)
}

func defaultMedia(path string) (time.Duration, bool) {
	switch {
	case strings.HasPrefix(path, "silence_stream://"):
		ms := atoi(path[len("silence_stream://"):])
		if ms < 0 {
			return time.Hour, true
		}
		return time.Duration(ms) * time.Millisecond, true
	case strings.HasPrefix(path, "tone_stream://"), strings.HasPrefix(path, "local_stream://"):
		return time.Hour, true
	}
	return time.Second, true
}

func (c *Call) sayDuration(arg string) time.Duration {
	if c.opts.SayDuration != nil {
		return c.opts.SayDuration(arg)
	}
	return 200 * time.Millisecond
}

func (c *Call) speakDuration(text string) time.Duration {
	if c.opts.SpeakDuration != nil {
		return c.opts.SpeakDuration(text)
	}
	return 200 * time.Millisecond
}

// completeApp ends the top app: PLAYBACK_STOP, the response variable,
// CHANNEL_EXECUTE_COMPLETE; then another loop, the paused outer app, or
// the next message.
func (c *Call) completeApp(a *appRun, st appStatus) {
	if c.top() != a {
		return
	}
	c.stack = c.stack[:len(c.stack)-1]
	name := strings.ToLower(a.name)
	response := ""
	if name == "playback" {
		switch st {
		case statusDone, statusBreak:
			response = "FILE PLAYED"
		case statusMissing:
			response = "FILE NOT FOUND"
		default:
			response = "PLAYBACK ERROR"
		}
	}
	if a.playStarted {
		elapsed := a.dur
		if st != statusDone {
			elapsed = min(a.dur, time.Since(a.iterStart))
		}
		ms := elapsed.Milliseconds()
		c.setVar("playback_last_offset_pos", strconv.FormatInt(ms*8, 10))
		c.setVar("playback_seconds", strconv.FormatInt(ms/1000, 10))
		c.setVar("playback_ms", strconv.FormatInt(ms, 10))
		c.setVar("playback_samples", strconv.FormatInt(ms*8, 10))
		status := "done"
		if st == statusBreak {
			status = "break"
		}
		c.emit(eventSpec{name: "PLAYBACK_STOP", loc: locPlaybackStop, extra: playbackHeaders(a.playPath, status)})
		a.playStarted = false
	}
	if response != "" {
		c.setVar("current_application_response", response)
	}
	resp, ok := c.ch.vars.get("current_application_response")
	if !ok {
		resp = "_none_"
	}
	if a.played >= 0 {
		c.mu.Lock()
		c.played[a.played].Status = resp
		c.played[a.played].Broken = st == statusBreak
		c.mu.Unlock()
	}
	c.emit(eventSpec{name: "CHANNEL_EXECUTE_COMPLETE", loc: locExecuteComplete, extra: appHeaders(a, true, resp)})
	if c.hungUp || c.closed {
		return
	}
	// Apps run by sendmsg are broadcasts: a break also stops the loops.
	if st != statusBreak && (a.iter < a.loops || a.loops < 0) && time.Since(a.iterStart) >= 500*time.Millisecond {
		a.media, a.endAt = false, time.Time{}
		c.stack = append(c.stack, a)
		c.startApp(a)
		return
	}
	if outer := c.top(); outer != nil && outer.state == appRunning && outer.media && outer.endAt.IsZero() && !outer.endless {
		outer.endAt = time.Now().Add(outer.remaining)
	}
	c.pump()
}

// breakMedia is uuid_break's CF_BREAK: the innermost running media app
// stops; if none is running (or the app is still pending) it is lost.
func (c *Call) breakMedia(all bool) {
	if all {
		if n := len(c.queue); n > 0 {
			c.logf("uuid_break all flushed %d queued message(s)", n)
		}
		c.queue = nil
	}
	if a := c.top(); a != nil && a.state == appRunning && a.media {
		c.completeApp(a, statusBreak)
	}
	// Measured on 1.10.12: a break also ends the dialplan's hold music
	// under the prompt, and the dialplan goes on to park.
	if a := c.top(); a != nil && a.state == appRunning && a.endless {
		c.completeApp(a, statusBreak)
	}
}

// dtmf delivers a digit: the DTMF event, then the playback terminator.
func (c *Call) dtmf(digit rune) {
	if c.hungUp || c.closed {
		return
	}
	c.emit(eventSpec{name: "DTMF", loc: locDTMF, extra: []Header{
		{"DTMF-Digit", string(digit)}, {"DTMF-Duration", "2000"}, {"DTMF-Source", "RTP"},
	}})
	a := c.top()
	if a == nil || a.state != appRunning || !a.media || strings.EqualFold(a.name, "sleep") {
		return
	}
	term, ok := c.ch.vars.get("playback_terminators")
	if !ok {
		term = "*"
	}
	if strings.EqualFold(term, "none") {
		return
	}
	if strings.EqualFold(term, "any") {
		term = "1234567890*#"
	}
	if strings.ContainsRune(term, digit) {
		c.setVar("playback_terminator_used", string(digit))
		c.completeApp(a, statusBreak)
	}
}
