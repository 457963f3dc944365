package esl

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Event is one FreeSWITCH event for the call, reduced to the headers a call's
// owner acts on. FreeSWITCH puts every channel variable into every channel
// event (about 6 KB each); eslapp reads only these, in one pass over the
// event's bytes (parseEvent).
type Event struct {
	Name           string    // Event-Name, e.g. CHANNEL_EXECUTE_COMPLETE
	Sequence       uint64    // Event-Sequence
	UniqueID       string    // Unique-ID: the channel the event is about
	AppUUID        string    // Application-UUID
	App            string    // Application
	AppResponse    string    // Application-Response
	PlaybackStatus string    // Playback-Status: done or break
	HangupCause    string    // Hangup-Cause
	DTMFDigit      string    // DTMF-Digit
	Subclass       string    // Event-Subclass, for CUSTOM events
	Received       time.Time // when eslapp read the event
}

// parseEvent reads the body of a text/event-plain frame: "Name: value"
// lines with URL-encoded values, up to a blank line (an event's own body,
// if any, follows; eslapp reads none). Only the headers Event has are
// decoded; the variable_* lines, most of an event, are skipped at their
// first byte.
func parseEvent(body []byte, now time.Time) (Event, error) {
	ev := Event{Received: now}
	for line := range lines(body) {
		if line[0] == 'v' {
			continue // variable_*: never read
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return Event{}, fmt.Errorf("%w: event header line without a name: %.40q", ErrMalformedFrame, line)
		}
		name, value := line[:colon], bytes.TrimLeft(line[colon+1:], " \t")
		var dst *string
		switch string(name) {
		case "Event-Name":
			dst = &ev.Name
		case "Event-Sequence":
			ev.Sequence, _ = strconv.ParseUint(string(value), 10, 64)
			continue
		case "Unique-ID":
			dst = &ev.UniqueID
		case "Application-UUID":
			dst = &ev.AppUUID
		case "Application":
			dst = &ev.App
		case "Application-Response":
			dst = &ev.AppResponse
		case "Playback-Status":
			dst = &ev.PlaybackStatus
		case "Hangup-Cause":
			dst = &ev.HangupCause
		case "DTMF-Digit":
			dst = &ev.DTMFDigit
		case "Event-Subclass":
			dst = &ev.Subclass
		default:
			continue
		}
		if *dst == "" {
			*dst = URLDecode(string(value))
		}
	}
	if ev.Name == "" {
		return Event{}, fmt.Errorf("%w: event without Event-Name", ErrMalformedFrame)
	}
	return ev, nil
}

// Events is a call's event stream in the order FreeSWITCH wrote it, kept
// for tests (see Session.events). It never drops an event and never blocks
// the read loop: it grows instead, which is bounded by what FreeSWITCH
// sends for one call (a few dozen events). A reader waits on Ready and
// then takes events with Next until it reports false.
type Events struct {
	mu    sync.Mutex
	queue []Event
	ready chan struct{}
}

func newEvents() *Events { return &Events{ready: make(chan struct{}, 1)} }

// Ready has a value when events are waiting.
func (q *Events) Ready() <-chan struct{} { return q.ready }

// Next takes the oldest waiting event.
func (q *Events) Next() (Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		return Event{}, false
	}
	ev := q.queue[0]
	q.queue[0] = Event{}
	q.queue = q.queue[1:]
	if len(q.queue) == 0 {
		q.queue = nil
	}
	return ev, true
}

func (q *Events) push(ev Event) {
	q.mu.Lock()
	q.queue = append(q.queue, ev)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default: // already signalled; the owner drains everything on one signal
	}
}
