package esltest

import (
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// initChannel builds the channel the socket app runs on: the s1 caller
// profile and variables, with this call's identity substituted.
func (c *Call) initChannel(addr string) {
	o := c.opts
	now := time.Now()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ch := &c.ch
	ch.uuid = c.uuid
	ch.name = "sofia/internal/" + o.CallerIDNumber + "@127.0.0.1:5072"
	ch.direction, ch.username, ch.dialplan = "inbound", o.CallerIDNumber, "XML"
	ch.cidName, ch.cidNumber, ch.ani, ch.network = o.CallerIDName, o.CallerIDNumber, o.ANI, "127.0.0.1"
	if ch.ani == "" {
		ch.ani = o.CallerIDNumber
	}
	ch.dest, ch.source, ch.context = o.DestinationNumber, "mod_sofia", o.Context
	ch.profileIndex = 1
	ch.created, ch.answered, ch.profileCreated = now, now, now
	ch.state, ch.callState, ch.answerState = "CS_EXECUTE", "ACTIVE", "answered"
	ch.stateNum = channelStates["CS_EXECUTE"]

	from := o.CallerIDNumber + "@127.0.0.1:5072"
	to := o.DestinationNumber + "@127.0.0.1:5060"
	subst := map[string]string{
		"uuid":                        c.uuid,
		"call_uuid":                   c.uuid,
		"session_id":                  strconv.FormatUint(c.fs.seq.Load()%100000, 10),
		"sip_from_user":               o.CallerIDNumber,
		"sip_from_user_stripped":      o.CallerIDNumber,
		"sip_from_uri":                from,
		"sip_contact_user":            o.CallerIDNumber,
		"sip_contact_uri":             from,
		"sip_from_display":            o.CallerIDName,
		"sip_full_from":               o.CallerIDName + " <sip:" + from + ">;tag=6187SIPpTag001",
		"channel_name":                ch.name,
		"presence_id":                 o.CallerIDNumber + "@127.0.0.1",
		"sip_req_user":                o.DestinationNumber,
		"sip_req_uri":                 to,
		"sip_to_user":                 o.DestinationNumber,
		"sip_to_uri":                  to,
		"sip_full_to":                 "<sip:" + to + ">",
		"sip_invite_stamp":            micros(now),
		"RFC2822_DATE":                now.Format("Mon, 02 Jan 2006 15:04:05 -0700"),
		"current_application_data":    c.socketData,
		"current_application":         "socket",
		"socket_host":                 host,
		"sip_call_id":                 c.uuid[:8] + "@127.0.0.1",
		"max_forwards":                "70",
		"endpoint_disposition":        "ANSWER",
		"sofia_profile_name":          "internal",
		"recovery_profile_name":       "internal",
		"local_media_port":            strconv.Itoa(16384 + int(c.fs.seq.Load()%16384)),
		"rtp_use_ssrc":                strconv.FormatUint(uint64(now.UnixNano())&0x7fffffff, 10),
		"sip_from_tag":                "6187SIPpTag001",
		"sip_from_host":               "127.0.0.1",
		"sip_network_ip":              "127.0.0.1",
		"sip_received_ip":             "127.0.0.1",
		"sip_local_network_addr":      "127.0.0.1",
		"advertised_media_ip":         "127.0.0.1",
		"remote_media_ip":             "127.0.0.1",
		"local_media_ip":              "127.0.0.1",
		"sip_via_host":                "127.0.0.1",
		"sip_to_host":                 "127.0.0.1",
		"sip_req_host":                "127.0.0.1",
		"sip_contact_host":            "127.0.0.1",
		"rtp_use_codec_string":        "PCMU,PCMA,OPUS",
		"direction":                   "inbound",
		"sofia_profile_url":           "sip:mod_sofia@127.0.0.1:5060",
		"ep_codec_string":             "CORE_PCM_MODULE.PCMU@8000h@20i@64000b",
		"rtp_last_audio_codec_string": "PCMU@8000h@20i@1c",
	}
	n := len(templateVars)
	ch.vars.names = make([]string, n, n+len(o.Vars)+24)
	ch.vars.vals = make([]string, n, n+len(o.Vars)+24)
	for i, kv := range templateVars {
		ch.vars.names[i] = kv[0]
		if v, ok := subst[kv[0]]; ok {
			ch.vars.vals[i] = v
		} else {
			ch.vars.vals[i] = kv[1]
		}
	}
	keys := make([]string, 0, len(o.Vars))
	for k := range o.Vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	after := "export_vars"
	for _, k := range keys {
		ch.vars.insertAfter(after, k, o.Vars[k])
		after = k
	}
}

// lookup is switch_channel_get_variable_dup: channel variable, then caller
// profile field, then global variable.
func (c *Call) lookup(name string, idx int) (string, bool) {
	v, ok := c.ch.vars.get(name)
	if !ok {
		v, ok = c.ch.field(name)
	}
	if !ok {
		v, ok = c.fs.global(name)
	}
	if !ok {
		return "", false
	}
	if idx >= 0 {
		if strings.HasPrefix(v, "ARRAY::") {
			parts := strings.Split(v[len("ARRAY::"):], "|:")
			if idx < len(parts) {
				return parts[idx], true
			}
			return "", false
		}
		if idx != 0 {
			return "", false
		}
	}
	return v, true
}

// lookupLocked is lookup for another call's goroutine.
func (c *Call) lookupLocked(name string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lookup(name, -1)
}

// recordAPI stands in for switch_api_execute during expansion: it records
// the call and returns nothing.
func (c *Call) recordAPI(name, args string) (string, bool) {
	c.logf("variable expansion would execute API %s(%s)", name, args)
	c.mu.Lock()
	c.apiExecs = append(c.apiExecs, name+"("+args+")")
	c.mu.Unlock()
	return "", false
}

// expand expands like switch_channel_expand_variables.
func (c *Call) expand(s string) string { return c.exp.Expand(s) }

// Expand is what FreeSWITCH makes of s when the channel's dialplan uses it
// in an application's argument or a condition field: one expansion pass
// over the channel's variables now, which expands every substituted value
// again. An API it would run is recorded in APIExecutions, not run.
func (c *Call) Expand(s string) string { return c.exp.Expand(s) }

// setVar and delVar change a channel variable under mu (Var reads it).
func (c *Call) setVar(name, val string) {
	c.mu.Lock()
	c.ch.vars.set(name, val)
	c.mu.Unlock()
}

func (c *Call) delVar(name string) {
	c.mu.Lock()
	c.ch.vars.del(name)
	c.mu.Unlock()
}

// top is the app currently executing (the innermost one).
func (c *Call) top() *appRun {
	if len(c.stack) == 0 {
		return nil
	}
	return c.stack[len(c.stack)-1]
}

// eventSpec describes one channel event.
type eventSpec struct {
	name  string
	loc   callingLoc
	extra []Header
	// noVars: CHANNEL_STATE carries no variables.
	noVars bool
	// causeFirst: CHANNEL_HANGUP_COMPLETE repeats Hangup-Cause before the
	// channel data.
	causeFirst bool
}

// emit builds a channel event and sends it when the subscription wants it.
func (c *Call) emit(e eventSpec) {
	id := eventIndex[e.name]
	if slices.Contains(c.opts.Withhold, e.name) {
		return
	}
	own := !c.closed && c.sub.wantsName(id, "")
	inbound := c.fs.inboundWants(id, "")
	if !own && !inbound {
		return
	}
	at := time.Now()
	hp := getHeaders()
	defer putHeaders(hp)
	h := c.fs.appendCoreHeaders(*hp, e.name, at, e.loc)
	if e.causeFirst {
		h = append(h, Header{"Hangup-Cause", c.ch.hcau})
	}
	h = c.ch.appendBasicData(h)
	h = c.ch.appendProfile(h, "Caller")
	if !e.noVars {
		h = c.ch.appendVars(h)
	}
	h = append(h, e.extra...)
	*hp = h
	if own && c.sub.delivers(h, c.uuid) {
		c.sendEvent(h, nil)
	}
	if inbound {
		c.fs.publish(id, "", h)
	}
}

// sendEvent serializes and writes an event.
func (c *Call) sendEvent(h []Header, body []byte) {
	f := SentFrame{Kind: "event"}
	for _, x := range h {
		switch x.Name {
		case "Event-Name":
			f.Event = x.Value
		case "Application":
			f.Application = x.Value
		case "Application-UUID":
			f.ApplicationUUID = x.Value
		case "Application-Response":
			f.Response = x.Value
		case "Playback-Status":
			f.PlaybackStatus = x.Value
		}
	}
	bp := getBuf()
	*bp = appendSerialized(*bp, h, body)
	c.write(*bp, f)
	putBuf(bp)
}

// sendConnect writes the connect reply: the serialized CHANNEL_DATA event
// (parse_command, "connect").
func (c *Call) sendConnect() {
	hp := getHeaders()
	defer putHeaders(hp)
	h := c.fs.appendCoreHeaders(*hp, "CHANNEL_DATA", time.Now(), locChannelData)
	h = c.ch.appendProfile(h, "Channel")
	h = c.ch.appendBasicData(h)
	h = c.ch.appendProfile(h, "Caller")
	h = c.ch.appendVars(h)
	control := "full"
	if c.opts.NotFull {
		control = "single-channel"
	}
	h = append(h,
		Header{"Content-Type", "command/reply"},
		Header{"Reply-Text", "+OK\n"},
		Header{"Socket-Mode", "async"},
		Header{"Control", control},
	)
	*hp = h
	bp := getBuf()
	defer putBuf(bp)
	b := serializeHeaders(*bp, h)
	b = append(b, '\n')
	*bp = b
	c.write(b, SentFrame{Kind: "connect", Text: "+OK\n", Event: "CHANNEL_DATA"})
}
