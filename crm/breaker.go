package crm

import (
	"sync"
	"time"
)

// BreakerState is the state of an integration's circuit breaker.
type BreakerState int

const (
	// BreakerClosed: requests flow (also the state of a disabled breaker).
	BreakerClosed BreakerState = iota
	// BreakerOpen: steps go to OnError without a request until the
	// cool-down has passed.
	BreakerOpen
	// BreakerHalfOpen: the cool-down has passed; the next request is a
	// probe, and others are refused until it ends.
	BreakerHalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return "unknown"
}

// health is what one step tells the breaker about the CRM.
type health int

const (
	// healthUnknown: the step says nothing about the CRM (the caller hung
	// up before an answer, or nothing was sent).
	healthUnknown health = iota
	// healthUp: the CRM answered with a status below 500.
	healthUp
	// healthDown: a transport error, a 5xx, or no answer before the step
	// timeout. Timeouts count: a CRM that accepts connections and never
	// answers is the failure a breaker exists for, and it costs every
	// caller the whole timeout.
	healthDown
)

// breaker counts consecutive failed steps (not attempts: retries inside one
// step are one failure) and opens after threshold of them.
type breaker struct {
	threshold int // 0: disabled
	cooldown  time.Duration

	mu       sync.Mutex
	state    BreakerState // never BreakerHalfOpen: derived from openedAt
	failures int
	openedAt time.Time
	probing  bool // a half-open probe is in flight
}

type transition struct {
	from, to BreakerState
}

func (t transition) changed() bool { return t.from != t.to }

// current is the state as callers see it: open turns half-open once the
// cool-down has passed, without waiting for a request.
func (b *breaker) current(now time.Time) BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.currentLocked(now)
}

func (b *breaker) currentLocked(now time.Time) BreakerState {
	if b.state == BreakerOpen && now.Sub(b.openedAt) >= b.cooldown {
		return BreakerHalfOpen
	}
	return b.state
}

// allow says whether a request may be sent. probe reports that this
// request is the half-open probe: its caller must report with done.
func (b *breaker) allow(now time.Time) (ok, probe bool) {
	if b.threshold == 0 {
		return true, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.currentLocked(now) {
	case BreakerClosed:
		return true, false
	case BreakerHalfOpen:
		if b.probing {
			return false, false
		}
		b.probing = true
		return true, true
	}
	return false, false
}

// done records a step's health and returns the state change, if any.
func (b *breaker) done(now time.Time, probe bool, h health) transition {
	if b.threshold == 0 {
		return transition{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	from := b.currentLocked(now)
	if probe {
		b.probing = false
	}
	switch h {
	case healthUp:
		b.failures = 0
		b.state = BreakerClosed
	case healthDown:
		b.failures++
		// A failed probe reopens at once; a step that started before the
		// breaker opened only restarts the cool-down if it was the probe.
		if probe || (b.state == BreakerClosed && b.failures >= b.threshold) {
			b.state = BreakerOpen
			b.openedAt = now
		}
	}
	return transition{from: from, to: b.currentLocked(now)}
}
