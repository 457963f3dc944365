package esl

// SessionEvents gives the external tests the events a session saw.
var SessionEvents = (*Session).events

// SessionOf gives the external tests the socket a held call runs on, for
// what only a socket does (linger, more events).
func SessionOf(c *Call) *Session { return c.leg.(*Session) }
