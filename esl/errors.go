package esl

import (
	"errors"
	"fmt"
)

// Sentinel errors for the kinds of failure a call's owner must tell apart.
// Test for them with errors.Is: they are always wrapped with context.
var (
	// ErrHangup means the caller's channel is gone: FreeSWITCH sent a
	// disconnect notice or a CHANNEL_HANGUP event for the call.
	ErrHangup = errors.New("esl: call hung up")

	// ErrDisconnected means the TCP connection to FreeSWITCH ended without a
	// disconnect notice, or was closed by eslapp.
	ErrDisconnected = errors.New("esl: connection to FreeSWITCH lost")

	// ErrCommandTimeout means FreeSWITCH did not answer a command within the
	// session's command timeout. The connection is closed when this happens:
	// a late reply would otherwise be taken as the answer to the next command.
	ErrCommandTimeout = errors.New("esl: command timed out")

	// ErrNotFull means the dialplan started eslapp with "socket ... async"
	// but without "full", so FreeSWITCH refuses api, event, linger and
	// sendevent (transcript s8).
	ErrNotFull = errors.New("esl: socket not in full mode (dialplan must use 'async full')")

	// ErrNoEvents means an application was started before Subscribe: its
	// start and end are only known from the call's events.
	ErrNoEvents = errors.New("esl: Subscribe before starting applications")

	// ErrAppTimeout means FreeSWITCH accepted an application but never
	// reported its end (CHANNEL_EXECUTE_COMPLETE) within the bound it was
	// started with: a stuck or broken peer.
	ErrAppTimeout = errors.New("esl: application did not complete in time")

	// ErrShutdown is the cause of a call context cancelled because eslapp is
	// shutting down.
	ErrShutdown = errors.New("esl: eslapp shutting down")

	// ErrNetFired means the safety net FreeSWITCH held for a socket-less
	// call fired while eslapp had the call (eslapp stood still longer
	// than the step's bound): FreeSWITCH moved the call to OnError, and
	// eslapp sends it nothing more. A call ended so has a context whose
	// cause is both ErrHangup and ErrNetFired.
	ErrNetFired = errors.New("esl: the call's safety net fired")

	// ErrClaimLost means another eslapp took a contended socket-less call,
	// or the call's pick-up net had already moved it (socket-less, or a
	// held socket that eslapp took up too late).
	ErrClaimLost = errors.New("esl: the call was claimed by another eslapp or its pick-up net fired")
)

// ReplyError is FreeSWITCH's refusal of a command: a command/reply whose
// Reply-Text, or an api/response whose body, starts with "-ERR".
type ReplyError struct {
	Command string // the command as sent, without arguments that may hold outside data
	Text    string // FreeSWITCH's text after "-ERR ", e.g. "No such channel!"
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("esl: %s: -ERR %s", e.Command, e.Text)
}

// UnsafeValueError reports a value that no escaping can carry safely to the
// sink it was meant for, for example a newline in an api argument.
type UnsafeValueError struct {
	Sink   string // which kind of FreeSWITCH argument, e.g. "api argument"
	Reason string
}

func (e *UnsafeValueError) Error() string {
	return fmt.Sprintf("esl: value refused for %s: %s", e.Sink, e.Reason)
}
