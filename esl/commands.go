package esl

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// commands is the command side of one Event Socket connection, outbound
// (a call's socket) or inbound (the shared connection): commands are
// written one at a time, and FreeSWITCH answers them in the order it reads
// them, so each reply goes to the oldest command still waiting. The
// connection's read loop hands replies over (deliver) and fails the rest
// when it ends (shut).
type commands struct {
	nc      net.Conn
	timeout time.Duration
	wire    *wireCounters
	log     func() *slog.Logger
	// fail closes the connection and what lives on it: a write that failed
	// or a reply that never came leaves the stream unusable.
	fail func()

	wmu     sync.Mutex // orders writes, and with them the queue
	mu      sync.Mutex
	waiting []*waiter // written, oldest first, replies not yet read
	closed  bool      // the read loop has ended: no command can get a reply

	// late is the latest time a reply came more than lateAfter after its
	// command was written (unix ns; 0: never): see lagging.
	late atomic.Int64
}

// waiter is a command waiting for its reply.
type waiter struct {
	reply chan reply
	sent  time.Time
}

// lateAfter is how long a reply may take before FreeSWITCH counts as
// lagging behind a connection's commands (lagging; half the command
// timeout when that is shorter). An idle FreeSWITCH answers within a
// millisecond, a busy one within tens, one at its limit within a second
// or two (its listener thread, one per connection, reads every command a
// byte at a time) — and its calls still succeed. Past 2 s a claim sent
// now would lose to the pick-up net anyway (+3: 2 s after it was armed
// at the earliest) and only add to the backlog, which at the command
// timeout (5 s) costs the connection and every call on it. (500 ms,
// tried first, left calls FreeSWITCH would have carried: 379 of 1,500 at
// 75 calls/s, where the same build without it was clean.)
const lateAfter = 2 * time.Second

// lagMemory is how long one late reply keeps the connection lagging.
const lagMemory = 2 * time.Second

// lateLimit is lateAfter, or half the command timeout when shorter: a
// connection is lagging well before its commands time out.
func (c *commands) lateLimit() time.Duration { return min(lateAfter, c.timeout/2) }

// lagging reports whether FreeSWITCH answers this connection late: the
// oldest command still waiting was written more than lateLimit ago, or a
// reply came that late within lagMemory.
func (c *commands) lagging(now time.Time) bool {
	if ns := c.late.Load(); ns != 0 && now.Sub(time.Unix(0, ns)) < lagMemory {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiting) > 0 && now.Sub(c.waiting[0].sent) > c.lateLimit()
}

// reply is a command/reply's Reply-Text or an api/response's body, or why
// none will come.
type reply struct {
	text string
	err  error
}

// send writes one command and waits for its reply, within the command
// timeout: Reply-Text of a command/reply, the body of an api/response. A
// reply starting with -ERR is returned as a *ReplyError.
//
// A command whose ctx ends first stops waiting, but stays in the queue:
// its reply, when it comes, is read and dropped, and later replies still
// meet their commands. A command that gets no reply in time means
// FreeSWITCH is stuck or gone: the connection is closed.
func (c *commands) send(ctx context.Context, what, cmd string) (string, error) {
	res := c.sendAll(ctx, []command{{what, cmd}})
	return res[0].text, res[0].err
}

// command is one command of a batch: what names it in errors and logs.
type command struct{ what, line string }

// result is a command's reply text, or why it has none.
type result struct {
	text string
	err  error
}

// sendAll writes several commands in one write and waits for their
// replies, each within the command timeout. FreeSWITCH runs a
// connection's commands one after the other in the order it reads them,
// so once the write is out they all run, whatever happens to eslapp
// next: a batch is how eslapp makes two commands happen together (a
// claim and the net that protects the claimed call). The results are in
// the commands' order.
func (c *commands) sendAll(ctx context.Context, cmds []command) []result {
	res := make([]result, len(cmds))
	waiters := make([]*waiter, len(cmds))
	size := 0
	sent := time.Now()
	for i, cmd := range cmds {
		waiters[i] = &waiter{reply: make(chan reply, 1), sent: sent}
		size += len(cmd.line) + 2
	}
	msg := make([]byte, 0, size)
	for _, cmd := range cmds {
		msg = append(append(msg, cmd.line...), "\n\n"...)
	}
	fail := func(err func(what string) error) []result {
		for i, cmd := range cmds {
			res[i].err = err(cmd.what)
		}
		return res
	}

	c.wmu.Lock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.wmu.Unlock()
		return fail(func(what string) error { return fmt.Errorf("%s: %w", what, ErrDisconnected) })
	}
	c.waiting = append(c.waiting, waiters...)
	c.mu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
	_, werr := c.nc.Write(msg)
	c.wmu.Unlock()
	c.wire.commands.Add(uint64(len(cmds)))
	c.wire.commandBytes.Add(uint64(len(msg)))
	if werr != nil {
		c.log().Debug("command not written", "command", cmds[0].what, "err", werr)
		c.fail()
		return fail(func(what string) error { return fmt.Errorf("%s: %w: %v", what, ErrDisconnected, werr) })
	}

	t := time.NewTimer(c.timeout)
	defer t.Stop()
	for i, w := range waiters {
		what := cmds[i].what
		var r reply
		select {
		case r = <-w.reply:
		case <-t.C:
			c.log().Warn("command got no reply, closing the connection", "command", what, "timeout", c.timeout)
			c.fail()
			for j := i; j < len(cmds); j++ {
				res[j].err = fmt.Errorf("%s: %w after %s", cmds[j].what, ErrCommandTimeout, c.timeout)
			}
			return res
		case <-ctx.Done():
			for j := i; j < len(cmds); j++ {
				res[j].err = fmt.Errorf("%s: %w", cmds[j].what, context.Cause(ctx))
			}
			return res
		}
		switch {
		case r.err != nil:
			res[i].err = fmt.Errorf("%s: %w", what, r.err)
		case strings.HasPrefix(r.text, "-ERR"):
			res[i].err = &ReplyError{Command: what, Text: strings.TrimSpace(strings.TrimPrefix(r.text, "-ERR"))}
		default:
			res[i].text = r.text
		}
	}
	return res
}

// deliver hands a reply to the oldest waiting command.
func (c *commands) deliver(r reply) error {
	c.wire.replies.Add(1)
	c.mu.Lock()
	if len(c.waiting) == 0 {
		c.mu.Unlock()
		return fmt.Errorf("%w: a reply no command asked for", errProtocol)
	}
	w := c.waiting[0]
	c.waiting[0] = nil
	c.waiting = c.waiting[1:]
	c.mu.Unlock()
	if now := time.Now(); now.Sub(w.sent) > c.lateLimit() {
		c.late.Store(now.UnixNano())
	}
	w.reply <- r // buffered: never blocks
	return nil
}

// shut runs when the read loop ends: no reply will come, so the commands
// waiting fail and later ones are refused.
func (c *commands) shut() {
	c.mu.Lock()
	c.closed = true
	waiting := c.waiting
	c.waiting = nil
	c.mu.Unlock()
	for _, w := range waiting {
		w.reply <- reply{err: ErrDisconnected}
	}
}
