package esltest

import (
	"strconv"
	"strings"
	"time"
)

// hangupCauses maps the causes tests use to their Q.850 codes
// (switch_channel.c CAUSE_CHART); others report 0.
var hangupCauses = map[string]int{
	"UNSPECIFIED": 0, "UNALLOCATED_NUMBER": 1, "NORMAL_CLEARING": 16, "USER_BUSY": 17,
	"NO_USER_RESPONSE": 18, "NO_ANSWER": 19, "CALL_REJECTED": 21,
	"DESTINATION_OUT_OF_ORDER": 27, "NORMAL_UNSPECIFIED": 31,
	"NORMAL_TEMPORARY_FAILURE": 41, "ORIGINATOR_CANCEL": 487, "LOSE_RACE": 502,
	"MANAGER_REQUEST": 503, "ALLOTTED_TIMEOUT": 602,
}

// hangupChannel is switch_channel_hangup and what follows on the socket,
// in the order of s1/s3/s4: CHANNEL_HANGUP; the running apps complete
// (playback with PLAYBACK ERROR), queued messages are dropped; while the
// socket app still runs, CHANNEL_UNPARK and its CHANNEL_EXECUTE_COMPLETE
// (repeating the last response); CHANNEL_STATE CS_HANGUP and CS_REPORTING;
// CHANNEL_HANGUP_COMPLETE. Without linger the final notice follows and the
// socket closes; with linger the linger notice falls where
// CallOptions.LingerNotice says and the socket waits for exit.
func (c *Call) hangupChannel(cause, disposition string) {
	if c.hungUp || c.closed {
		return
	}
	now := time.Now()
	c.mu.Lock()
	c.hungUp = true
	c.controlled.Store(false)
	c.outcome.HangupCause = cause
	c.outcome.HungUpAt = now
	if c.outcome.Kind == Active && !c.socketDone {
		c.outcome.Kind = HungUp
	}
	c.mu.Unlock()
	if c.opts.LingerNotice == LingerBeforeHangup {
		c.sendLingerNotice()
	}
	c.ch.answerState = "hangup"
	c.ch.hcau = cause
	c.ch.stateNum = channelStates["CS_HANGUP"]
	c.emit(eventSpec{name: "CHANNEL_HANGUP", loc: locHangup})
	c.unwind()
	c.queue = nil
	c.xferAt = time.Time{}
	c.endSocketApp()
	c.ch.state = "CS_HANGUP"
	c.emit(eventSpec{name: "CHANNEL_STATE", loc: locState, noVars: true})
	if c.opts.LingerNotice == LingerAfterStateHangup {
		c.sendLingerNotice()
	}
	c.ch.state, c.ch.callState = "CS_REPORTING", "HANGUP"
	c.ch.stateNum = channelStates["CS_REPORTING"]
	c.ch.hungup = now
	c.emit(eventSpec{name: "CHANNEL_STATE", loc: locState, noVars: true})
	c.setHangupVars(cause, disposition, now)
	c.emit(eventSpec{name: "CHANNEL_HANGUP_COMPLETE", loc: locHangupComplete, causeFirst: true})
	if !c.linger {
		c.sendFinalNotice()
		c.closeConn()
		return
	}
	c.sendLingerNotice()
	if c.lingerSecs >= 0 {
		c.lingerEnd = time.Now().Add(time.Duration(c.lingerSecs) * time.Second)
	}
}

// unwind completes every running app, innermost first, as their loops see
// the channel go down or leave for a transfer; pending ones never start.
func (c *Call) unwind() {
	for len(c.stack) > 0 {
		a := c.top()
		if a.state == appPending {
			c.stack = c.stack[:len(c.stack)-1]
			continue
		}
		c.completeApp(a, statusError)
	}
}

// endSocketApp sends CHANNEL_UNPARK and the socket app's
// CHANNEL_EXECUTE_COMPLETE, once, when the call leaves the socket app.
func (c *Call) endSocketApp() {
	if c.socketDone {
		return
	}
	c.socketDone = true
	c.controlled.Store(false)
	c.delVar("current_loop")
	c.delVar("total_loops")
	c.emit(eventSpec{name: "CHANNEL_UNPARK", loc: locUnpark})
	resp, ok := c.ch.vars.get("current_application_response")
	if !ok {
		resp = "_none_"
	}
	c.emit(eventSpec{name: "CHANNEL_EXECUTE_COMPLETE", loc: locExecuteComplete, extra: []Header{
		{"Application", c.parkApp},
		{"Application-Data", c.socketData},
		{"Application-Response", resp},
		{"Application-UUID", c.socketUUID},
	}})
}

func (c *Call) setHangupVars(cause, disposition string, at time.Time) {
	start := c.ch.created
	q850 := hangupCauses[cause]
	c.setVar("hangup_cause", cause)
	c.setVar("hangup_cause_q850", strconv.Itoa(q850))
	c.setVar("digits_dialed", "none")
	c.setVar("start_stamp", start.Format("2006-01-02 15:04:05"))
	c.setVar("answer_stamp", c.ch.answered.Format("2006-01-02 15:04:05"))
	c.setVar("end_stamp", at.Format("2006-01-02 15:04:05"))
	c.setVar("start_epoch", strconv.FormatInt(start.Unix(), 10))
	c.setVar("start_uepoch", micros(start))
	c.setVar("answer_epoch", strconv.FormatInt(c.ch.answered.Unix(), 10))
	c.setVar("answer_uepoch", micros(c.ch.answered))
	c.setVar("end_epoch", strconv.FormatInt(at.Unix(), 10))
	c.setVar("end_uepoch", micros(at))
	if last, ok := c.ch.vars.get("current_application"); ok {
		c.setVar("last_app", last)
	}
	c.setVar("caller_id", "\""+c.ch.cidName+"\" <"+c.ch.cidNumber+">")
	d := at.Sub(start)
	c.setVar("duration", strconv.FormatInt(int64(d/time.Second), 10))
	c.setVar("billsec", strconv.FormatInt(int64(at.Sub(c.ch.answered)/time.Second), 10))
	c.setVar("mduration", strconv.FormatInt(d.Milliseconds(), 10))
	c.setVar("billmsec", strconv.FormatInt(at.Sub(c.ch.answered).Milliseconds(), 10))
	c.setVar("uduration", strconv.FormatInt(d.Microseconds(), 10))
	c.setVar("billusec", strconv.FormatInt(at.Sub(c.ch.answered).Microseconds(), 10))
	c.setVar("sip_hangup_disposition", disposition)
	for _, n := range rtpStats {
		c.setVar(n, "0")
	}
}

// rtpStats stand for the RTP statistics FreeSWITCH adds before
// CHANNEL_HANGUP_COMPLETE (they make that event about 9 KB).
var rtpStats = []string{
	"rtp_audio_in_raw_bytes", "rtp_audio_in_media_bytes", "rtp_audio_in_packet_count",
	"rtp_audio_in_media_packet_count", "rtp_audio_in_skip_packet_count",
	"rtp_audio_in_jitter_packet_count", "rtp_audio_in_dtmf_packet_count",
	"rtp_audio_in_cng_packet_count", "rtp_audio_in_flush_packet_count",
	"rtp_audio_in_largest_jb_size", "rtp_audio_in_jitter_min_variance",
	"rtp_audio_in_jitter_max_variance", "rtp_audio_in_jitter_loss_rate",
	"rtp_audio_in_jitter_burst_rate", "rtp_audio_in_mean_interval",
	"rtp_audio_in_flaw_total", "rtp_audio_in_quality_percentage", "rtp_audio_in_mos",
	"rtp_audio_out_raw_bytes", "rtp_audio_out_media_bytes", "rtp_audio_out_packet_count",
	"rtp_audio_out_media_packet_count", "rtp_audio_out_skip_packet_count",
	"rtp_audio_out_dtmf_packet_count", "rtp_audio_out_cng_packet_count",
	"rtp_audio_rtcp_packet_count", "rtp_audio_rtcp_octet_count",
}

// transferProfile is the first half of switch_ivr_session_transfer with
// args EXT [DIALPLAN [CONTEXT]]: a new caller profile (destination,
// context, RDNIS, Transfer-Source) and the channel heading for CS_ROUTING.
// The apps it interrupts report their completion with the new profile
// already (s2, s9).
func (c *Call) transferProfile(args []string) {
	dest, dialplan, context := args[0], "XML", "default"
	if len(args) > 1 && args[1] != "" {
		dialplan = args[1]
	}
	if len(args) > 2 && args[2] != "" {
		context = args[2]
	}
	now := time.Now()
	c.mu.Lock()
	if c.outcome.TransferDest == "" {
		c.outcome.TransferDest = dest + " " + dialplan + " " + context
		c.outcome.TransferredAt = now
	}
	c.outcome.Transfers = append(c.outcome.Transfers, dest+" "+dialplan+" "+context)
	if c.outcome.Kind == Active && !c.socketDone {
		c.outcome.Kind = Transferred
	}
	// The profile is read by other calls' uuid_getvar (lookup), so it
	// changes under mu.
	c.ch.transferSource = strconv.FormatInt(now.Unix(), 10) + ":" + NewUUID() + ":bl_xfer:" + dest + "/" + context + "/" + dialplan
	c.ch.rdnis = c.ch.dest
	c.ch.dest, c.ch.context, c.ch.dialplan = dest, context, dialplan
	c.ch.profileIndex++
	c.ch.profileCreated = now
	c.mu.Unlock()
	c.ch.stateNum = channelStates["CS_ROUTING"]
}

// transferRoute is the rest: running apps end (a playback with PLAYBACK
// ERROR, s9), queued messages are dropped, the socket app completes, the
// channel routes (CS_ROUTING, RINGING) and executes the new extension,
// modelled as "hangup NORMAL_CLEARING" after CallOptions.AfterTransfer.
func (c *Call) transferRoute() {
	c.queue = nil
	c.unwind()
	c.endSocketApp()
	c.ch.state, c.ch.callState = "CS_ROUTING", "RINGING"
	c.emit(eventSpec{name: "CHANNEL_STATE", loc: locState, noVars: true})
	c.ch.state, c.ch.callState = "CS_EXECUTE", "ACTIVE"
	c.ch.stateNum = channelStates["CS_EXECUTE"]
	c.emit(eventSpec{name: "CHANNEL_STATE", loc: locState, noVars: true})
	if c.opts.AfterTransfer >= 0 {
		c.xferAt = time.Now().Add(c.opts.AfterTransfer)
	}
}

// transfer is api uuid_transfer: no transfer app events (s9).
func (c *Call) transfer(args []string) {
	if c.hungUp || c.closed {
		return
	}
	c.transferProfile(args)
	c.transferRoute()
}

// transferArgs parses "EXT [DIALPLAN [CONTEXT]]" as the transfer app does.
func transferArgs(s string) []string {
	return SeparateString(strings.TrimSpace(s), ' ', 4)
}
