package esl

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// inboundLeg is a socket-less call's leg: the dialplan announced the call
// with a CUSTOM event and holds it (hold music, then park), and eslapp runs
// it over the shared inbound connection of the FreeSWITCH that announced
// it. Its applications, breaks and outputs are commands naming its UUID
// (sendmsg UUID, api uuid_break UUID), its events reach it through the
// connection's per-call filter, and it leaves eslapp by a transfer
// (HandBack, Transfer) or a hangup, never by the end of a socket.
//
// Every eslapp connected to the FreeSWITCH hears the announcement. The
// shipped dialplan arms a pick-up net first — a sched_api in the group
// eslapp-pick-UUID that transfers the call to OnError 2 to 3.5 s later,
// its reply kept in PickVar — and the call is then contended: an eslapp
// takes it by deleting that group, which FreeSWITCH's scheduler grants to
// exactly one deleter (+OK Deleted: 1). In the same write it arms its own
// net in the group eslapp-net-UUID, so that a claimed call is never
// without one: FreeSWITCH runs a connection's commands in order, so if the
// claim is won the net is armed even if eslapp dies right after. A loser
// deletes the net it armed; one it could not delete (it died) is deleted
// with the group when the winner leaves.
//
// The net is re-armed for each step (Call.Arm), before a command whenever
// it is about to fire (a stall), and by a timer while a wait runs long;
// each re-arm adds the new net and deletes the old one by its task id in
// one write (so there is always a net), and a deletion that finds nothing
// means the net fired: FreeSWITCH moved the call to OnError, and eslapp
// sends it nothing more (ErrNetFired).
//
// A dialplan without the pick-up net (an older one, with a sched_transfer
// safety net in the call's own group) is served as before: no claim, so
// one eslapp only, and that net cancelled with sched_del UUID on leaving.
type inboundLeg struct {
	in        *Inbound
	heard     time.Time // when the announcement was read
	contended bool      // the dialplan armed a pick-up net
	filtered  bool      // the per-call filter was added (the call's goroutine alone)

	net netState
}

var _ leg = (*inboundLeg)(nil)

// PickVar is the channel variable in which the dialplan keeps the reply of
// the sched_api that armed the call's pick-up net ("+OK Added: N").
const PickVar = "eslapp_pick"

// PickGroup is the scheduler group of a call's pick-up net, NetGroup of
// the nets eslapp arms for it.
func PickGroup(uuid string) string { return "eslapp-pick-" + uuid }

// NetGroup is the scheduler group of the nets eslapp arms for a call.
func NetGroup(uuid string) string { return "eslapp-net-" + uuid }

const (
	// netMargin is added to a bound: FreeSWITCH's scheduler counts whole
	// seconds and runs its tasks every 500 ms, so "+N" fires N−1 to
	// N+0.5 s after it is set.
	netMargin = 2 * time.Second
	// renewBound is how long a net re-armed by the timer or before a
	// command lasts: enough to finish what is under way.
	renewBound = 5 * time.Second
	// fenceAhead: before a command, a net that may fire within this is
	// re-armed first, so that nothing is sent to a call whose net fired
	// while eslapp stood still (a stall, a stopped process).
	fenceAhead = time.Second
	// DefaultFirstBound bounds a claimed call's first step when its
	// handler gives no better figure (RunnerConfig.Bind, Binding.Bound).
	DefaultFirstBound = 10 * time.Second
)

// netState is the net eslapp armed for a contended call.
type netState struct {
	mu    sync.Mutex
	id    string    // task id of the net armed last; "" when none is armed
	due   time.Time // the earliest FreeSWITCH may fire it
	renew *time.Timer
	fired bool // a net was found fired: the call is not eslapp's any more
}

func newInboundLeg(in *Inbound, data *ChannelData) *inboundLeg {
	v, _ := data.Var(PickVar)
	return &inboundLeg{in: in, heard: time.Now(), contended: strings.HasPrefix(v, "+OK")}
}

// send runs a command for the call, after the fence. FreeSWITCH's answers
// for a channel that is gone become ErrHangup.
func (l *inboundLeg) send(ctx context.Context, c *Call, what, cmd string) (string, error) {
	if err := l.fence(ctx, c); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	text, err := l.in.send(ctx, what, cmd)
	if re, gone := isGoneReply(err); gone {
		return "", fmt.Errorf("%s: %w (%s)", what, ErrHangup, re.Text)
	}
	return text, err
}

// parkWait bounds the wait for the channel to take messages: the start
// event fires just before the dialplan's hold, and FreeSWITCH refuses
// sendmsg for a channel nothing controls yet ("invalid session id").
const parkWait = 500 * time.Millisecond

// sendmsg names the call's UUID, and tries again while the channel does
// not take messages yet.
func (l *inboundLeg) sendmsg(ctx context.Context, c *Call, what string, msg func(string) string) error {
	if err := l.fence(ctx, c); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
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

// isContended: other eslapps may take the call (the runner claims it only
// when it can run it).
func (l *inboundLeg) isContended() bool { return l.contended }

// peersClaiming: another eslapp took a call of this FreeSWITCH lately.
func (l *inboundLeg) peersClaiming() bool { return l.in.peersClaiming(time.Now()) }

// lagging: the shared connection's replies come late.
func (l *inboundLeg) lagging() bool { return l.in.lagging(time.Now()) }

// claim takes the call. Contended: the pick-up net deleted and eslapp's
// own net armed, in one write (see inboundLeg); the loser deletes its net
// and gets ErrClaimLost. Then the per-call filter: the call's events pass
// the connection's filters from here on.
func (l *inboundLeg) claim(ctx context.Context, c *Call) error {
	if l.contended {
		res := l.in.sendAll(ctx,
			command{"api sched_del", "api sched_del " + PickGroup(c.uuid)},
			l.netCommand(c, c.firstBound))
		id, armErr := addedID(res[1])
		won, delErr := deletedAny(res[0])
		if delErr != nil || !won {
			if id != "" {
				// Not ours: the net armed with the claim goes.
				if _, err := l.in.send(context.WithoutCancel(ctx), "api sched_del", "api sched_del "+id); err != nil {
					c.log.Warn("the net armed with a lost claim was not deleted; the winner deletes it with the group", "err", err)
				}
			}
			if delErr != nil {
				return fmt.Errorf("claim: %w", delErr)
			}
			if now := time.Now(); now.Sub(l.heard) < PeerEvidence {
				if !l.in.peersClaiming(now) {
					c.log.Info("another eslapp claims this FreeSWITCH's calls: claims wait their turn by load from now on")
				}
				l.in.peerClaimedAt.Store(now.UnixNano())
			}
			return ErrClaimLost
		}
		if armErr != nil {
			// Won, but no net: re-arm at once (the claim is ours; a net
			// must exist).
			c.log.Warn("claimed, but the net was not armed; arming again", "err", armErr)
			l.net.mu.Lock()
			err := l.rearmLocked(ctx, c, c.firstBound, false)
			l.net.mu.Unlock()
			if err != nil {
				return fmt.Errorf("claim: arming the net: %w", err)
			}
		} else {
			l.net.mu.Lock()
			l.armedLocked(c, id, c.firstBound)
			l.net.mu.Unlock()
		}
		l.in.counts.won.Add(1)
	}
	if _, err := l.in.send(ctx, "filter", "filter Unique-ID "+c.uuid); err != nil {
		return err
	}
	l.filtered = true
	return nil
}

// netCommand arms a net for bound: a sched_api in the call's net group
// that transfers it to OnError in the context its dialplan named.
func (l *inboundLeg) netCommand(c *Call, bound time.Duration) command {
	secs := int64(math.Ceil(max(bound, 0).Seconds())) + int64(netMargin/time.Second)
	return command{"api sched_api", "api sched_api +" + strconv.FormatInt(secs, 10) + " " + NetGroup(c.uuid) +
		" uuid_transfer " + c.uuid + " OnError XML " + branchContext(c)}
}

// armedLocked records a net armed now with bound, and sets the timer that
// renews it while the call runs longer than that. l.net.mu held.
func (l *inboundLeg) armedLocked(c *Call, id string, bound time.Duration) {
	secs := math.Ceil(max(bound, 0).Seconds()) + netMargin.Seconds()
	l.net.id = id
	l.net.due = time.Now().Add(time.Duration(secs-1) * time.Second)
	if l.net.renew != nil {
		l.net.renew.Stop()
	}
	l.net.renew = time.AfterFunc(time.Until(l.net.due)-fenceAhead, func() { l.renew(c) })
}

// renew re-arms a net that is about to fire while the call still runs.
func (l *inboundLeg) renew(c *Call) {
	if c.Left() || c.HungUp() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.in.cfg.CommandTimeout)
	defer cancel()
	l.net.mu.Lock()
	defer l.net.mu.Unlock()
	if l.net.id == "" || time.Until(l.net.due) > fenceAhead {
		return // left, or re-armed meanwhile
	}
	c.log.Debug("the call runs longer than its net's bound; renewing the net")
	if err := l.rearmLocked(ctx, c, renewBound, true); err != nil && c.ctx.Err() == nil {
		c.log.Warn("renewing the net", "err", err)
	}
}

// arm re-arms the net for a step of bound, unless the one armed covers it.
func (l *inboundLeg) arm(ctx context.Context, c *Call, bound time.Duration) error {
	if !l.contended {
		return nil
	}
	l.net.mu.Lock()
	defer l.net.mu.Unlock()
	if l.net.fired {
		return ErrNetFired
	}
	if l.net.id == "" {
		return nil // not claimed, or left
	}
	if time.Until(l.net.due) >= bound {
		return nil // it fires after the step, or is renewed while it runs late
	}
	return l.rearmLocked(ctx, c, bound, true)
}

// fence re-arms the net before a command when it may fire within
// fenceAhead: then, if it has fired meanwhile, nothing is sent.
func (l *inboundLeg) fence(ctx context.Context, c *Call) error {
	if !l.contended {
		return nil
	}
	l.net.mu.Lock()
	defer l.net.mu.Unlock()
	if l.net.fired {
		return ErrNetFired
	}
	if l.net.id == "" || time.Until(l.net.due) > fenceAhead {
		return nil
	}
	return l.rearmLocked(ctx, c, renewBound, true)
}

// rearmLocked arms a new net and then deletes the old one by its task
// id, in one write: the call is never without a net, even if eslapp dies
// between the two. With check, a deletion that found nothing means the
// old net fired: the new one is deleted again, and the call is over for
// eslapp (ErrNetFired). With no old id known (the claim's net was not
// armed), the group is deleted first instead. l.net.mu held.
func (l *inboundLeg) rearmLocked(ctx context.Context, c *Call, bound time.Duration, check bool) error {
	var id string
	var armErr, delErr error
	var had bool
	if old := l.net.id; old != "" {
		res := l.in.sendAll(ctx, l.netCommand(c, bound), command{"api sched_del", "api sched_del " + old})
		id, armErr = addedID(res[0])
		had, delErr = deletedAny(res[1])
	} else {
		res := l.in.sendAll(ctx, command{"api sched_del", "api sched_del " + NetGroup(c.uuid)}, l.netCommand(c, bound))
		id, armErr = addedID(res[1])
		had, delErr = deletedAny(res[0])
	}
	if delErr == nil && check && !had {
		if id != "" {
			_, _ = l.in.send(context.WithoutCancel(ctx), "api sched_del", "api sched_del "+id)
		}
		l.firedLocked(c)
		return ErrNetFired
	}
	if armErr != nil {
		return armErr
	}
	if delErr != nil {
		// The old net may still be there: the new one is armed, and the
		// group goes whole when the call leaves.
		c.log.Warn("re-arming the net: the old one was not deleted", "err", delErr)
	}
	l.armedLocked(c, id, bound)
	return nil
}

// firedLocked: the net moved the call; eslapp lets it go. l.net.mu held.
func (l *inboundLeg) firedLocked(c *Call) {
	l.net.id, l.net.fired = "", true
	if l.net.renew != nil {
		l.net.renew.Stop()
	}
	l.in.counts.netsFired.Add(1)
	c.log.Warn("the call's safety net fired while eslapp had it (eslapp stood still longer than the step's bound?); eslapp sends it nothing more")
	c.markLeft()
	c.end(fmt.Errorf("%w (%w)", ErrHangup, ErrNetFired), ErrHangup)
}

// full: the inbound connection takes every command.
func (l *inboundLeg) full() bool { return true }

// ContextVar names the channel variable with the dialplan context a
// socket-less call is handed back to: the one where the extensions named
// like the branches (${wfe_branch}) are.
const ContextVar = "wfe_context"

// branchContext is the context the call's branches are in: wfe_context,
// or "default" when the dialplan named none. A net needs one that works:
// it takes "default" for a name that is not a context name (which the
// hand-back refuses).
func branchContext(c *Call) string {
	if v, ok := c.data.Var(ContextVar); ok && v != "" && isTransferWord(v) {
		return v
	}
	return "default"
}

// handBack transfers the call to the extension named branch in the context
// the dialplan named in wfe_context ("default" when it named none).
func (l *inboundLeg) handBack(ctx context.Context, c *Call, branch string) error {
	context := "default"
	if v, ok := c.data.Var(ContextVar); ok && v != "" {
		context = v
	}
	return c.Transfer(ctx, branch, "XML", context)
}

// transfer takes the call's net away, then sends the call on (api
// uuid_transfer), which ends eslapp's part in it.
func (l *inboundLeg) transfer(ctx context.Context, c *Call, arg AppArg) error {
	if err := l.leave(ctx, c); err != nil {
		return err
	}
	_, err := c.API(ctx, "uuid_transfer", APIArgs{s: c.uuid + " " + arg.s})
	return err
}

// hangup takes the net away, then api uuid_kill.
func (l *inboundLeg) hangup(ctx context.Context, c *Call, cause string) error {
	if err := l.leave(ctx, c); err != nil {
		return err
	}
	_, err := c.API(ctx, "uuid_kill", APIArgsOf(c.uuid, cause))
	return err
}

// leave takes away the net before eslapp moves the call: the other way
// round the net could fire between the two and move the call a second
// time. Contended, the call's net group goes, and a deletion that finds
// nothing means the net fired: the call is not eslapp's to move any more
// (ErrNetFired). An older dialplan's sched_transfer net is in the call's
// own group.
func (l *inboundLeg) leave(ctx context.Context, c *Call) error {
	if !l.contended {
		if _, err := c.API(ctx, "sched_del", APIArg(c.uuid)); err != nil {
			return err
		}
		c.markLeft()
		return nil
	}
	l.net.mu.Lock()
	defer l.net.mu.Unlock()
	if l.net.fired {
		return ErrNetFired
	}
	if l.net.renew != nil {
		l.net.renew.Stop()
	}
	text, err := l.in.send(ctx, "api sched_del", "api sched_del "+NetGroup(c.uuid))
	had, err := deletedAny(result{text, err})
	if err != nil {
		return err
	}
	if !had {
		l.firedLocked(c)
		return ErrNetFired
	}
	l.net.id = ""
	c.markLeft()
	return nil
}

// release deletes the call's filter and ends the call for eslapp. A net
// stays armed for a call eslapp did not hand on: it routes the call. Only
// a hung-up call's net goes (nothing is left for it to route).
func (l *inboundLeg) release(c *Call) {
	ctx, cancel := context.WithTimeout(context.Background(), l.in.cfg.CommandTimeout)
	defer cancel()
	l.net.mu.Lock()
	if l.net.renew != nil {
		l.net.renew.Stop()
	}
	armed := l.net.id != ""
	l.net.mu.Unlock()
	if armed && c.HungUp() {
		if _, err := l.in.send(ctx, "api sched_del", "api sched_del "+NetGroup(c.uuid)); err != nil {
			c.log.Debug("net not deleted after the hangup", "err", err)
		}
	}
	if l.filtered {
		// Best effort: a filter left behind costs FreeSWITCH a comparison
		// per event until the connection ends, nothing more.
		if _, err := l.in.send(ctx, "filter delete", "filter delete Unique-ID "+c.uuid); err != nil {
			c.log.Debug("filter not deleted", "err", err)
		}
	}
	c.end(fmt.Errorf("%w: the call left eslapp", ErrHangup), ErrHangup)
}

// deletedAny reads sched_del's "+OK Deleted: N": whether it deleted
// anything.
func deletedAny(r result) (bool, error) {
	if r.err != nil {
		return false, r.err
	}
	n, ok := strings.CutPrefix(strings.TrimSpace(r.text), "+OK Deleted: ")
	count, err := strconv.Atoi(n)
	if !ok || err != nil {
		return false, fmt.Errorf("%w: sched_del answered %.60q", errProtocol, r.text)
	}
	return count > 0, nil
}

// addedID reads sched_api's "+OK Added: ID".
func addedID(r result) (string, error) {
	if r.err != nil {
		return "", r.err
	}
	id, ok := strings.CutPrefix(strings.TrimSpace(r.text), "+OK Added: ")
	if !ok || !isDigitString(id) {
		return "", fmt.Errorf("%w: sched_api answered %.60q", errProtocol, r.text)
	}
	return id, nil
}

func isDigitString(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
