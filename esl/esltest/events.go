package esltest

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// eventNames is FreeSWITCH's EVENT_NAMES (src/switch_event.c), in
// switch_event_types_t order; "ALL" is last.
var eventNames = []string{
	"CUSTOM", "CLONE", "CHANNEL_CREATE", "CHANNEL_DESTROY", "CHANNEL_STATE",
	"CHANNEL_CALLSTATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE",
	"CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HOLD", "CHANNEL_UNHOLD",
	"CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
	"CHANNEL_OUTGOING", "CHANNEL_PARK", "CHANNEL_UNPARK", "CHANNEL_APPLICATION",
	"CHANNEL_ORIGINATE", "CHANNEL_UUID", "API", "LOG", "INBOUND_CHAN", "OUTBOUND_CHAN",
	"STARTUP", "SHUTDOWN", "PUBLISH", "UNPUBLISH", "TALK", "NOTALK", "SESSION_CRASH",
	"MODULE_LOAD", "MODULE_UNLOAD", "DTMF", "MESSAGE", "PRESENCE_IN", "NOTIFY_IN",
	"PRESENCE_OUT", "PRESENCE_PROBE", "MESSAGE_WAITING", "MESSAGE_QUERY", "ROSTER",
	"CODEC", "BACKGROUND_JOB", "DETECTED_SPEECH", "DETECTED_TONE", "PRIVATE_COMMAND",
	"HEARTBEAT", "TRAP", "ADD_SCHEDULE", "DEL_SCHEDULE", "EXE_SCHEDULE", "RE_SCHEDULE",
	"RELOADXML", "NOTIFY", "PHONE_FEATURE", "PHONE_FEATURE_SUBSCRIBE", "SEND_MESSAGE",
	"RECV_MESSAGE", "REQUEST_PARAMS", "CHANNEL_DATA", "GENERAL", "COMMAND",
	"SESSION_HEARTBEAT", "CLIENT_DISCONNECTED", "SERVER_DISCONNECTED", "SEND_INFO",
	"RECV_INFO", "RECV_RTCP_MESSAGE", "SEND_RTCP_MESSAGE", "CALL_SECURE", "NAT",
	"RECORD_START", "RECORD_STOP", "PLAYBACK_START", "PLAYBACK_STOP", "CALL_UPDATE",
	"FAILURE", "SOCKET_DATA", "MEDIA_BUG_START", "MEDIA_BUG_STOP",
	"CONFERENCE_DATA_QUERY", "CONFERENCE_DATA", "CALL_SETUP_REQ", "CALL_SETUP_RESULT",
	"CALL_DETAIL", "DEVICE_STATE", "TEXT", "SHUTDOWN_REQUESTED", "ALL",
}

var eventIndex = func() map[string]int {
	m := make(map[string]int, len(eventNames))
	for i, n := range eventNames {
		m[n] = i
	}
	return m
}()

var (
	evCustom = eventIndex["CUSTOM"]
	evAll    = eventIndex["ALL"]
)

// nameEvent is switch_name_event: case-insensitive, with or without the
// "SWITCH_EVENT_" prefix.
func nameEvent(name string) (int, bool) {
	up := strings.ToUpper(name)
	if len(up) > 13 {
		if i, ok := eventIndex[up[13:]]; ok {
			return i, true
		}
	}
	i, ok := eventIndex[up]
	return i, ok
}

// myEvents is the event list "myevents" subscribes (parse_command in
// mod_event_socket.c). PLAYBACK_*, CUSTOM and BACKGROUND_JOB are not in it.
var myEvents = []string{
	"CHANNEL_ANSWER", "CHANNEL_APPLICATION", "CHANNEL_BRIDGE", "CHANNEL_CREATE",
	"CHANNEL_DATA", "CHANNEL_DESTROY", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE",
	"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_ORIGINATE", "CHANNEL_UUID",
	"CHANNEL_OUTGOING", "CHANNEL_PARK", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
	"CHANNEL_STATE", "CHANNEL_UNBRIDGE", "CHANNEL_UNPARK", "DETECTED_SPEECH", "DTMF",
	"NOTALK", "TALK",
}

// subscription is a listener's event_list, event_hash (CUSTOM subclasses)
// and filters, with event_handler's delivery rule.
type subscription struct {
	on       bool // LFLAG_EVENTS
	myevents bool // LFLAG_MYEVENTS
	list     [96]bool
	custom   map[string]bool
	filters  []Header
	format   string
}

// wantsName is the cheap first half of event_handler's test (event_list and
// subclass); callers skip building events nobody would receive.
func (s *subscription) wantsName(id int, subclass string) bool {
	if !s.on {
		return false
	}
	if s.list[evAll] {
		return true
	}
	if !s.list[id] {
		return false
	}
	return id != evCustom || subclass == "" || s.custom[subclass]
}

// delivers is the rest of event_handler: filters, then the myevents rule
// (only events whose Unique-ID is the controlled channel).
func (s *subscription) delivers(h []Header, uuid string) bool {
	send := true
	if len(s.filters) > 0 {
		send = false
		for _, f := range s.filters {
			hval, ok := headerFold(h, f.Name)
			if !ok {
				continue
			}
			comp, pos := f.Value, true
			for comp != "" {
				if comp[0] == '+' {
					pos = true
				} else if comp[0] == '-' {
					pos = false
				} else if comp[0] != ' ' {
					break
				}
				comp = comp[1:]
			}
			if send && pos {
				continue
			}
			var cmp bool
			if strings.HasPrefix(f.Value, "/") {
				cmp = regexMatch(comp, hval)
			} else {
				cmp = strings.EqualFold(hval, comp)
			}
			if cmp {
				if !pos {
					send = false
					break
				}
				send = true
			}
		}
	}
	if send && s.myevents {
		id, ok := headerFold(h, "unique-id")
		send = ok && id == uuid
		if owner, _ := headerFold(h, "Job-Owner-UUID"); owner == uuid {
			send = true
		}
	}
	return send
}

func headerFold(h []Header, name string) (string, bool) {
	for _, x := range h {
		if strings.EqualFold(x.Name, name) {
			return x.Value, true
		}
	}
	return "", false
}

var regexCache sync.Map

// regexMatch is switch_regex_perform for a "/pattern/" filter value.
func regexMatch(expr, s string) bool {
	p := strings.TrimPrefix(expr, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[:i]
	}
	re, ok := regexCache.Load(p)
	if !ok {
		r, err := regexp.Compile(p)
		if err != nil {
			return false
		}
		re, _ = regexCache.LoadOrStore(p, r)
	}
	return re.(*regexp.Regexp).MatchString(s)
}

// appendCoreHeaders appends what switch_event_prep_for_delivery adds: name,
// host identity, dates, the calling location and the global sequence.
func (fs *FreeSWITCH) appendCoreHeaders(h []Header, name string, at time.Time, loc callingLoc) []Header {
	return append(h,
		Header{"Event-Name", name},
		Header{"Core-UUID", fs.coreUUID},
		Header{"FreeSWITCH-Hostname", fs.opts.Hostname},
		Header{"FreeSWITCH-Switchname", fs.opts.Hostname},
		Header{"FreeSWITCH-IPv4", fs.opts.IPv4},
		Header{"FreeSWITCH-IPv6", fs.opts.IPv6},
		Header{"Event-Date-Local", at.Format("2006-01-02 15:04:05")},
		Header{"Event-Date-GMT", at.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")},
		Header{"Event-Date-Timestamp", strconv.FormatInt(at.UnixMicro(), 10)},
		Header{"Event-Calling-File", loc.file},
		Header{"Event-Calling-Function", loc.fn},
		Header{"Event-Calling-Line-Number", loc.line},
		Header{"Event-Sequence", strconv.FormatUint(fs.seq.Add(1), 10)},
	)
}

// callingLoc is the source location FreeSWITCH 1.10.12 reports for an event
// (Event-Calling-File/-Function/-Line-Number, values from the transcripts).
type callingLoc struct{ file, fn, line string }

var (
	locExecute         = callingLoc{"switch_core_session.c", "switch_core_session_exec", "2944"}
	locExecuteComplete = callingLoc{"switch_core_session.c", "switch_core_session_exec", "2967"}
	locPlaybackStart   = callingLoc{"switch_ivr_play_say.c", "switch_ivr_play_file", "1646"}
	locPlaybackStop    = callingLoc{"switch_ivr_play_say.c", "switch_ivr_play_file", "2020"}
	locHangup          = callingLoc{"switch_channel.c", "switch_channel_perform_hangup", "3445"}
	locUnpark          = callingLoc{"switch_ivr.c", "switch_ivr_park", "1213"}
	locState           = callingLoc{"switch_channel.c", "switch_channel_perform_set_running_state", "2408"}
	locHangupComplete  = callingLoc{"switch_core_state_machine.c", "switch_core_session_reporting_state", "943"}
	locChannelData     = callingLoc{"mod_event_socket.c", "parse_command", "2021"}
	locSendEvent       = callingLoc{"mod_event_socket.c", "parse_command", "2275"}
	// Not in the transcripts: the function is FreeSWITCH's, the line a guess.
	locDTMF          = callingLoc{"switch_channel.c", "switch_channel_dequeue_dtmf", "0"}
	locBackgroundJob = callingLoc{"mod_event_socket.c", "api_exec", "0"}
)

// Buffers and header lists are pooled: a call holds none between frames,
// which keeps thousands of idle calls small.
var (
	bufPool    = sync.Pool{New: func() any { b := make([]byte, 0, 8192); return &b }}
	headerPool = sync.Pool{New: func() any { h := make([]Header, 0, 192); return &h }}
)

func getBuf() *[]byte { bp := bufPool.Get().(*[]byte); *bp = (*bp)[:0]; return bp }

func putBuf(bp *[]byte) {
	if cap(*bp) <= 1<<20 {
		bufPool.Put(bp)
	}
}

func getHeaders() *[]Header { hp := headerPool.Get().(*[]Header); *hp = (*hp)[:0]; return hp }

func putHeaders(hp *[]Header) {
	clear(*hp)
	headerPool.Put(hp)
}

// appendSerialized appends the event as switch_event_serialize writes it
// (URL-encoded values, "_undef_" for an empty value, then "\n", or
// "Content-Length: N\n\n" and the body when there is one), framed as
// mod_event_socket sends it: Content-Length first, then
// Content-Type: text/event-plain.
func appendSerialized(dst []byte, h []Header, body []byte) []byte {
	bp := getBuf()
	b := serializeHeaders(*bp, h)
	if body != nil {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\n\n"...)
		b = append(b, body...)
	} else {
		b = append(b, '\n')
	}
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, "\nContent-Type: text/event-plain\n\n"...)
	dst = append(dst, b...)
	*bp = b
	putBuf(bp)
	return dst
}

// serializeHeaders appends "Name: url-encoded-value\n" lines.
func serializeHeaders(b []byte, h []Header) []byte {
	for _, x := range h {
		b = append(b, x.Name...)
		b = append(b, ": "...)
		if x.Value == "" || x.Value[0] == 0 {
			b = append(b, "_undef_"...)
		} else {
			b = appendURLEncoded(b, x.Value)
		}
		b = append(b, '\n')
	}
	return b
}
