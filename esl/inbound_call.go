package esl

import (
	"context"
	"fmt"
	"time"
)

// inboundLeg is a socket-less call's leg: the dialplan parked the call
// after firing the start event, and eslapp runs it over the shared
// inbound connection of the FreeSWITCH that announced it. Its applications,
// breaks and outputs are commands naming its UUID (sendmsg UUID, api
// uuid_break UUID), its events reach it through the connection's
// per-call filter, and it leaves eslapp by a transfer (HandBack, Transfer)
// or a hangup, never by the end of a socket.
//
// The dialplan's safety net (sched_transfer) stays armed while eslapp has
// the call: if eslapp or its connection dies, the net routes the call. It
// is cancelled (sched_del) just before eslapp transfers the call.
type inboundLeg struct {
	in       *Inbound
	filtered bool // the per-call filter was added (the call's goroutine alone)
}

var _ leg = (*inboundLeg)(nil)

// send runs a command for the call. FreeSWITCH's answers for a channel
// that is gone become ErrHangup.
func (l *inboundLeg) send(ctx context.Context, what, cmd string) (string, error) {
	text, err := l.in.send(ctx, what, cmd)
	if re, gone := isGoneReply(err); gone {
		return "", fmt.Errorf("%s: %w (%s)", what, ErrHangup, re.Text)
	}
	return text, err
}

// parkWait bounds the wait for the channel to reach the park: the start
// event fires just before the dialplan's park, and FreeSWITCH refuses
// sendmsg for a channel nothing controls yet ("invalid session id").
const parkWait = 500 * time.Millisecond

// sendmsg names the call's UUID, and tries again while the channel is not
// parked yet.
func (l *inboundLeg) sendmsg(ctx context.Context, c *Call, what string, msg func(string) string) error {
	cmd := msg(c.uuid)
	deadline := time.Now().Add(parkWait)
	for {
		_, err := l.in.send(ctx, what, cmd)
		re, gone := isGoneReply(err)
		if gone && re.Text != "No such channel!" && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if gone {
			return fmt.Errorf("%s: %w (%s)", what, ErrHangup, re.Text)
		}
		return err
	}
}

// claim adds the call's filter: its events pass the connection's filters
// from here on.
func (l *inboundLeg) claim(ctx context.Context, c *Call) error {
	if _, err := l.in.send(ctx, "filter", "filter Unique-ID "+c.uuid); err != nil {
		return err
	}
	l.filtered = true
	return nil
}

// full: the inbound connection takes every command.
func (l *inboundLeg) full() bool { return true }

// ContextVar names the channel variable with the dialplan context a
// socket-less call is handed back to: the one where the extensions named
// like the branches (${wfe_branch}) are.
const ContextVar = "wfe_context"

// handBack transfers the call to the extension named branch in the context
// the dialplan named in wfe_context ("default" when it named none).
func (l *inboundLeg) handBack(ctx context.Context, c *Call, branch string) error {
	context := "default"
	if v, ok := c.data.Var(ContextVar); ok && v != "" {
		context = v
	}
	return c.Transfer(ctx, branch, "XML", context)
}

// transfer cancels the dialplan's safety net and sends the call on (api
// uuid_transfer), which ends eslapp's part in it.
func (l *inboundLeg) transfer(ctx context.Context, c *Call, arg AppArg) error {
	// sched_del before the transfer: the other way round the net could
	// fire between the two and move the call a second time.
	if _, err := c.API(ctx, "sched_del", APIArg(c.uuid)); err != nil {
		return err
	}
	c.markLeft()
	_, err := c.API(ctx, "uuid_transfer", APIArgs{s: c.uuid + " " + arg.s})
	return err
}

// hangup: api uuid_kill.
func (l *inboundLeg) hangup(ctx context.Context, c *Call, cause string) error {
	_, err := c.API(ctx, "uuid_kill", APIArgsOf(c.uuid, cause))
	return err
}

// release deletes the call's filter and ends the call for eslapp.
func (l *inboundLeg) release(c *Call) {
	if l.filtered {
		// Best effort: a filter left behind costs FreeSWITCH a comparison
		// per event until the connection ends, nothing more.
		ctx, cancel := context.WithTimeout(context.Background(), l.in.cfg.CommandTimeout)
		_, err := l.in.send(ctx, "filter delete", "filter delete Unique-ID "+c.uuid)
		cancel()
		if err != nil {
			c.log.Debug("filter not deleted", "err", err)
		}
	}
	c.end(fmt.Errorf("%w: the call left eslapp", ErrHangup), ErrHangup)
}
