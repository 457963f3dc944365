package esl

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
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
}

// waiter is a command waiting for its reply.
type waiter struct{ reply chan reply }

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
	w := &waiter{reply: make(chan reply, 1)}
	msg := make([]byte, 0, len(cmd)+2)
	msg = append(append(msg, cmd...), "\n\n"...)

	c.wmu.Lock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.wmu.Unlock()
		return "", fmt.Errorf("%s: %w", what, ErrDisconnected)
	}
	c.waiting = append(c.waiting, w)
	c.mu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
	_, err := c.nc.Write(msg)
	c.wmu.Unlock()
	c.wire.commands.Add(1)
	c.wire.commandBytes.Add(uint64(len(msg)))
	if err != nil {
		c.log().Debug("command not written", "command", what, "err", err)
		c.fail()
		return "", fmt.Errorf("%s: %w: %v", what, ErrDisconnected, err)
	}

	t := time.NewTimer(c.timeout)
	defer t.Stop()
	var r reply
	select {
	case r = <-w.reply:
	case <-t.C:
		c.log().Warn("command got no reply, closing the connection", "command", what, "timeout", c.timeout)
		c.fail()
		return "", fmt.Errorf("%s: %w after %s", what, ErrCommandTimeout, c.timeout)
	case <-ctx.Done():
		return "", fmt.Errorf("%s: %w", what, context.Cause(ctx))
	}
	if r.err != nil {
		return "", fmt.Errorf("%s: %w", what, r.err)
	}
	if text, ok := strings.CutPrefix(r.text, "-ERR"); ok {
		return "", &ReplyError{Command: what, Text: strings.TrimSpace(text)}
	}
	return r.text, nil
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
