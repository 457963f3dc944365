package esl

import (
	"context"
	"time"
)

// leg is what differs between the two ways a call reaches eslapp: its own
// outbound socket (*Session) or the shared inbound connection of the
// FreeSWITCH that announced it (*inboundLeg). A Call does everything else
// itself. The life cycle a way in drives, through Runner:
//
//	claim     the call becomes eslapp's: its events are subscribed
//	          (myevents on a socket, a Unique-ID filter on a shared
//	          connection, after the claim of a contended call); nothing
//	          is sent to it before
//	arm       its safety net is re-armed for each step (socket-less)
//	handler   the call's owner runs it with the Call's methods, which
//	          reach FreeSWITCH through send and sendmsg
//	leave     handBack, transfer or hangup hands it on
//	release   after the handler: the socket is closed (exit), the
//	          filter deleted
type leg interface {
	// send runs one command on the connection that carries the call.
	// FreeSWITCH's refusals are *ReplyError, or the sentinel they mean
	// for this way in (ErrNotFull on a socket without full, ErrHangup
	// for a channel gone socket-less).
	send(ctx context.Context, c *Call, what, cmd string) (string, error)
	// sendmsg sends a sendmsg command that msg builds for the channel
	// name the connection needs: "" on the call's own socket, where
	// sendmsg names no channel, the UUID on a shared connection.
	sendmsg(ctx context.Context, c *Call, what string, msg func(channel string) string) error
	// claim makes the call eslapp's and subscribes its events; see
	// Call.claim. A contended call's claim may be lost (ErrClaimLost).
	claim(ctx context.Context, c *Call) error
	// isContended reports whether other eslapps may take the call: the
	// runner then claims it only when it can run it, and after a delay
	// that lets a less loaded or healthier peer win.
	isContended() bool
	// peersClaiming reports whether another eslapp has lately won a claim
	// on the call's way in: only then does waiting a turn by load share
	// anything (alone, it only keeps the caller in hold music longer).
	peersClaiming() bool
	// lagging reports whether the call's FreeSWITCH answers eslapp's
	// commands late on this way in (a contended call is then not claimed).
	lagging() bool
	// arm (re-)arms the call's safety net for a step that may take bound;
	// nothing on a socket, whose end is its own net.
	arm(ctx context.Context, c *Call, bound time.Duration) error
	// full reports whether FreeSWITCH takes api and sendevent for the
	// call (a socket without "full" refuses them).
	full() bool
	// handBack, transfer and hangup hand the call on (see Call.HandBack,
	// Transfer, Hangup); arg is a checked TransferArg.
	handBack(ctx context.Context, c *Call, branch string) error
	transfer(ctx context.Context, c *Call, arg AppArg) error
	hangup(ctx context.Context, c *Call, cause string) error
	// release ends eslapp's part once the handler has returned.
	release(c *Call)
}
