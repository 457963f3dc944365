package esl

import (
	"container/heap"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/percipia/eslgo"
)

// maxHold bounds how long the sequencer waits, once eslapp has closed
// eslgo's side of a connection, for events eslgo had read but may now never
// deliver. While the connection is open there is no timeout: every event
// handed to eslgo reaches the listener or is reported lost (lost), and a
// timer could only release a late event out of order on a busy machine.
const maxHold = time.Second

// sequencer puts events back in Event-Sequence order.
//
// eslgo calls each event listener on a goroutine of its own, so two events
// read back to back can reach the listener in either order. FreeSWITCH writes
// a socket's events in increasing Event-Sequence, but the numbers are global
// to FreeSWITCH: a gap does not say that an event is missing. What does say
// it is the count of event frames wireConn has handed to eslgo. While fewer
// events have arrived than were handed on, one is still on its way, and the
// ones that have arrived wait; once the counts agree, every waiting event is
// released in sequence order. The wait is the time eslgo's goroutines take to
// be scheduled, and no timer is involved in the normal case.
type sequencer struct {
	handed  *atomic.Uint64        // from wireConn
	release func(ev *eslgo.Event) // called in order, with mu held

	mu       sync.Mutex
	received uint64 // events that reached add, plus events given up for lost
	held     eventHeap
	timer    *time.Timer
	settled  chan struct{} // closed when received catches up with handed
	released uint64        // events released so far
	actions  []seqAction   // waiting for the events read before them
}

// seqAction is something that happened on the wire between two events (a
// disconnect notice, the end of the stream) and must be handled in that
// place: after the events read before it, before those read after it.
type seqAction struct {
	after uint64 // events handed to eslgo when it happened
	fn    func()
}

// at runs fn once every event handed to eslgo so far has been released, in
// its place in the stream. fn runs with the sequencer's lock held.
func (q *sequencer) at(fn func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	after := q.handed.Load()
	if q.released >= after && q.held.Len() == 0 {
		fn()
		return
	}
	q.actions = append(q.actions, seqAction{after: after, fn: fn})
	if q.received >= after {
		q.flush()
	}
}

// runActions runs the waiting actions whose place is at or before n
// released events.
func (q *sequencer) runActions(n uint64) {
	for len(q.actions) > 0 && q.actions[0].after <= n {
		fn := q.actions[0].fn
		q.actions = q.actions[1:]
		fn()
	}
}

func (q *sequencer) add(ev *eslgo.Event) {
	seq, _ := strconv.ParseUint(ev.Headers.Get("Event-Sequence"), 10, 64)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.received++
	heap.Push(&q.held, heldEvent{seq: seq, ev: ev})
	if q.received >= q.handed.Load() {
		q.flush()
	}
}

// lost counts an event eslgo read but dropped (it could not parse it), so
// that the events after it are not held for it.
func (q *sequencer) lost() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.received++
	if q.received >= q.handed.Load() {
		q.flush()
	}
}

// giveUp releases the held events after maxHold once the connection is
// closed: the ones still expected are taken to be lost.
func (q *sequencer) giveUp() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.timer = nil
	if handed := q.handed.Load(); q.received < handed {
		q.received = handed
	}
	q.flush()
}

func (q *sequencer) flush() {
	if q.timer != nil {
		q.timer.Stop()
		q.timer = nil
	}
	for q.held.Len() > 0 {
		h := heap.Pop(&q.held).(heldEvent)
		q.runActions(q.released)
		q.release(h.ev)
		q.released++
	}
	// Actions after events given up for lost run now too.
	q.runActions(q.received)
	if q.settled != nil && q.received >= q.handed.Load() {
		close(q.settled)
		q.settled = nil
	}
}

// drain waits until every event handed to eslgo has been released, or for
// maxHold. The connection must be closed already, so that no further event
// can be handed on.
func (q *sequencer) drain() {
	q.mu.Lock()
	if q.received >= q.handed.Load() {
		q.mu.Unlock()
		return
	}
	if q.settled == nil {
		q.settled = make(chan struct{})
	}
	settled := q.settled
	q.mu.Unlock()
	t := time.NewTimer(maxHold)
	defer t.Stop()
	select {
	case <-settled:
	case <-t.C:
	}
}

// stop is called when eslapp has closed eslgo's side of the connection.
// Events eslgo read before may still be on their way, or dropped by eslgo's
// closing: they are released as they come, and after maxHold the rest are
// given up.
func (q *sequencer) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.received >= q.handed.Load() {
		q.flush()
	} else if q.timer == nil {
		q.timer = time.AfterFunc(maxHold, q.giveUp)
	}
}

type heldEvent struct {
	seq uint64
	ev  *eslgo.Event
}

type eventHeap []heldEvent

func (h eventHeap) Len() int           { return len(h) }
func (h eventHeap) Less(i, j int) bool { return h[i].seq < h[j].seq }
func (h eventHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)        { *h = append(*h, x.(heldEvent)) }
func (h *eventHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
