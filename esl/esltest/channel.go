package esltest

import (
	"strconv"
	"strings"
	"time"
)

// varList holds channel variables in the order FreeSWITCH keeps them:
// channel->variables is an event whose headers are unique, so setting a
// variable deletes the old header and appends a new one at the bottom (the
// transcripts show current_application moving to the end on every app).
// Names compare case-insensitively, like switch_event_get_header. A linear
// scan over ~100 entries is cheaper in memory than a map per call.
type varList struct {
	names, vals []string
}

func (v *varList) find(name string) int {
	for i, n := range v.names {
		if len(n) == len(name) && strings.EqualFold(n, name) {
			return i
		}
	}
	return -1
}

func (v *varList) get(name string) (string, bool) {
	if i := v.find(name); i >= 0 {
		return v.vals[i], true
	}
	return "", false
}

func (v *varList) del(name string) {
	if i := v.find(name); i >= 0 {
		v.names = append(v.names[:i], v.names[i+1:]...)
		v.vals = append(v.vals[:i], v.vals[i+1:]...)
	}
}

// set is switch_channel_set_variable with var_check false: delete, then
// append; an empty value only deletes (switch_event_add_header_string does
// not add NULL values; FreeSWITCH's set app treats an empty value as unset).
func (v *varList) set(name, val string) {
	v.del(name)
	if val == "" {
		return
	}
	v.names = append(v.names, name)
	v.vals = append(v.vals, val)
}

// insertAfter adds name=val right after the variable after, or at the end.
func (v *varList) insertAfter(after, name, val string) {
	v.del(name)
	i := v.find(after)
	if i < 0 {
		v.set(name, val)
		return
	}
	v.names = append(v.names[:i+1], append([]string{name}, v.names[i+1:]...)...)
	v.vals = append(v.vals[:i+1], append([]string{val}, v.vals[i+1:]...)...)
}

// channelStates maps a state name to Channel-State-Number.
var channelStates = map[string]int{
	"CS_NEW": 0, "CS_INIT": 1, "CS_ROUTING": 2, "CS_SOFT_EXECUTE": 3, "CS_EXECUTE": 4,
	"CS_EXCHANGE_MEDIA": 5, "CS_PARK": 6, "CS_CONSUME_MEDIA": 7, "CS_HIBERNATE": 8,
	"CS_RESET": 9, "CS_HANGUP": 10, "CS_REPORTING": 11, "CS_DESTROY": 12,
}

// channel is the FreeSWITCH channel behind one call: caller profile, state
// and variables. It is owned by the call's goroutine; readers from other
// goroutines take Call.mu.
type channel struct {
	uuid, name string
	vars       varList

	direction, username, dialplan     string
	cidName, cidNumber, ani, network  string
	dest, source, context             string
	transferSource, rdnis             string
	profileIndex                      int
	created, answered, profileCreated time.Time
	hungup, transferred               time.Time
	// state is the running state (Channel-State); stateNum the state the
	// channel is heading to (Channel-State-Number): on hangup FreeSWITCH
	// reports CS_EXECUTE with number 10, on transfer CS_EXECUTE with 2.
	state                  string
	stateNum               int
	callState, answerState string
	hcau                   string
}

// appendBasicData appends what switch_channel_event_set_basic_data adds to
// every channel event (the order of transcript s1).
func (ch *channel) appendBasicData(h []Header) []Header {
	h = append(h,
		Header{"Channel-State", ch.state},
		Header{"Channel-Call-State", ch.callState},
		Header{"Channel-State-Number", strconv.Itoa(ch.stateNum)},
		Header{"Channel-Name", ch.name},
		Header{"Unique-ID", ch.uuid},
		Header{"Call-Direction", ch.direction},
		Header{"Presence-Call-Direction", ch.direction},
		Header{"Channel-HIT-Dialplan", "true"},
		Header{"Channel-Presence-ID", ch.cidNumber + "@127.0.0.1"},
		Header{"Channel-Call-UUID", ch.uuid},
		Header{"Answer-State", ch.answerState},
	)
	if ch.hcau != "" {
		h = append(h, Header{"Hangup-Cause", ch.hcau})
	}
	return append(h,
		Header{"Channel-Read-Codec-Name", "PCMU"},
		Header{"Channel-Read-Codec-Rate", "8000"},
		Header{"Channel-Read-Codec-Bit-Rate", "64000"},
		Header{"Channel-Write-Codec-Name", "PCMU"},
		Header{"Channel-Write-Codec-Rate", "8000"},
		Header{"Channel-Write-Codec-Bit-Rate", "64000"},
	)
}

func micros(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}

// appendProfile appends switch_caller_profile_event_set_data with this
// prefix ("Caller" in events, "Channel" first in the connect reply).
func (ch *channel) appendProfile(h []Header, prefix string) []Header {
	p := prefix + "-"
	h = append(h,
		Header{p + "Direction", ch.direction},
		Header{p + "Logical-Direction", ch.direction},
		Header{p + "Username", ch.username},
		Header{p + "Dialplan", ch.dialplan},
		Header{p + "Caller-ID-Name", ch.cidName},
		Header{p + "Caller-ID-Number", ch.cidNumber},
		Header{p + "Orig-Caller-ID-Name", ch.cidName},
		Header{p + "Orig-Caller-ID-Number", ch.cidNumber},
		Header{p + "Network-Addr", ch.network},
		Header{p + "ANI", ch.ani},
		Header{p + "Destination-Number", ch.dest},
		Header{p + "Unique-ID", ch.uuid},
		Header{p + "Source", ch.source},
	)
	if ch.transferSource != "" {
		h = append(h, Header{p + "Transfer-Source", ch.transferSource})
	}
	h = append(h, Header{p + "Context", ch.context})
	if ch.rdnis != "" {
		h = append(h, Header{p + "RDNIS", ch.rdnis})
	}
	return append(h,
		Header{p + "Channel-Name", ch.name},
		Header{p + "Profile-Index", strconv.Itoa(ch.profileIndex)},
		Header{p + "Profile-Created-Time", micros(ch.profileCreated)},
		Header{p + "Channel-Created-Time", micros(ch.created)},
		Header{p + "Channel-Answered-Time", micros(ch.answered)},
		Header{p + "Channel-Progress-Time", "0"},
		Header{p + "Channel-Progress-Media-Time", micros(ch.answered)},
		Header{p + "Channel-Hangup-Time", micros(ch.hungup)},
		Header{p + "Channel-Transfer-Time", micros(ch.transferred)},
		Header{p + "Channel-Resurrect-Time", "0"},
		Header{p + "Channel-Bridged-Time", "0"},
		Header{p + "Channel-Last-Hold", "0"},
		Header{p + "Channel-Hold-Accum", "0"},
		Header{p + "Screen-Bit", "true"},
		Header{p + "Privacy-Hide-Name", "false"},
		Header{p + "Privacy-Hide-Number", "false"},
	)
}

// appendVars appends every channel variable as variable_NAME.
func (ch *channel) appendVars(h []Header) []Header {
	for i, n := range ch.vars.names {
		h = append(h, Header{"variable_" + n, ch.vars.vals[i]})
	}
	return h
}

// field is switch_caller_get_field_by_name for the fields the double keeps;
// ${destination_number} and friends resolve through it when no channel
// variable has the name.
func (ch *channel) field(name string) (string, bool) {
	switch strings.ToLower(name) {
	case "dialplan":
		return ch.dialplan, true
	case "username":
		return ch.username, true
	case "caller_id_name", "orig_caller_id_name":
		return ch.cidName, true
	case "caller_id_number", "orig_caller_id_number":
		return ch.cidNumber, true
	case "ani":
		return ch.ani, true
	case "network_addr":
		return ch.network, true
	case "rdnis":
		return ch.rdnis, ch.rdnis != ""
	case "destination_number":
		return ch.dest, true
	case "uuid":
		return ch.uuid, true
	case "source":
		return ch.source, true
	case "transfer_source":
		return ch.transferSource, ch.transferSource != ""
	case "context":
		return ch.context, true
	case "chan_name":
		return ch.name, true
	case "profile_index":
		return strconv.Itoa(ch.profileIndex), true
	}
	return "", false
}
