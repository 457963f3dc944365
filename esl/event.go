package esl

import (
	"strconv"
	"sync"
	"time"

	"github.com/percipia/eslgo"
)

// Event is one FreeSWITCH event for the call, reduced to the headers a call's
// owner acts on. FreeSWITCH puts every channel variable into every channel
// event (about 6 KB each); eslapp reads only these (see wireConn).
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
	Received       time.Time // when eslapp released the event to its owner
}

func newEvent(ev *eslgo.Event, now time.Time) Event {
	seq, _ := strconv.ParseUint(ev.Headers.Get("Event-Sequence"), 10, 64)
	return Event{
		Name:           ev.GetHeader("Event-Name"),
		Sequence:       seq,
		UniqueID:       ev.GetHeader("Unique-ID"),
		AppUUID:        ev.GetHeader("Application-UUID"),
		App:            ev.GetHeader("Application"),
		AppResponse:    ev.GetHeader("Application-Response"),
		PlaybackStatus: ev.GetHeader("Playback-Status"),
		HangupCause:    ev.GetHeader("Hangup-Cause"),
		DTMFDigit:      ev.GetHeader("DTMF-Digit"),
		Subclass:       ev.GetHeader("Event-Subclass"),
		Received:       now,
	}
}

// Events is a call's event stream in Event-Sequence order. It never drops an
// event and never blocks FreeSWITCH's reader: it grows instead, which is
// bounded by what FreeSWITCH sends for one call (a few dozen events).
//
// The owner waits on Ready and then takes events with Next until it reports
// false:
//
//	case <-events.Ready():
//		for ev, ok := events.Next(); ok; ev, ok = events.Next() { ... }
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
