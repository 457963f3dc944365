package esl

// SessionEvents gives the external tests the events a session saw.
var SessionEvents = (*Session).events
