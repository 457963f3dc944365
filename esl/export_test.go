package esl

import "time"

// SessionEvents gives the external tests the events a session saw.
var SessionEvents = (*Session).events

// SessionOf gives the external tests the socket a held call runs on, for
// what only a socket does (linger, more events).
func SessionOf(c *Call) *Session { return c.leg.(*Session) }

// NetDueNow makes a socket-less call's net look due, as after eslapp stood
// still past its bound: the next command re-arms it first.
func NetDueNow(c *Call) {
	l := c.leg.(*inboundLeg)
	l.net.mu.Lock()
	l.net.due = time.Now()
	l.net.mu.Unlock()
}
