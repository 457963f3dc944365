package esl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// InboundCall is one call eslapp runs over the shared inbound connection
// (socket-less mode): the dialplan parked it after firing the start
// event. Its applications, breaks and outputs are commands naming its UUID
// (sendmsg UUID, api uuid_break UUID), its events reach it through the
// connection's per-call filter, and it leaves eslapp by a transfer
// (HandBack, Transfer) or a hangup, never by the end of a socket.
//
// The dialplan's safety net (sched_transfer) stays armed while eslapp has
// the call: if eslapp or its connection dies, the net routes the call. It
// is cancelled (sched_del) just before eslapp transfers the call.
type InboundCall struct {
	in   *Inbound
	uuid string
	data *ChannelData
	log  *slog.Logger
	ids  func() string

	ctx    context.Context
	cancel context.CancelCauseFunc

	filtered bool // the per-call filter was added (the call's goroutine alone)

	mu      sync.Mutex
	apps    map[string]*App
	hungUp  bool
	left    bool // transferred by eslapp: events no longer concern it
	expandX bool // app_disable_expand_variables is true
}

func newInboundCall(in *Inbound, data *ChannelData) *InboundCall {
	c := &InboundCall{
		in:   in,
		uuid: data.UUID(),
		data: data,
		log:  in.cfg.Logger.With("call", data.UUID()),
		ids:  shortAppIDs(),
		apps: make(map[string]*App),
	}
	v, _ := data.Var("app_disable_expand_variables")
	c.expandX = IsTrue(v)
	c.ctx, c.cancel = context.WithCancelCause(in.callCtx)
	return c
}

// UUID is the channel's Unique-ID.
func (c *InboundCall) UUID() string { return c.uuid }

// Data is the channel data the start event carried.
func (c *InboundCall) Data() *ChannelData { return c.data }

// Logger logs with the call's UUID.
func (c *InboundCall) Logger() *slog.Logger { return c.log }

// Context ends when the call is over for eslapp: hangup, the call left
// the park (the safety net fired), or shutdown.
func (c *InboundCall) Context() context.Context { return c.ctx }

// HungUp reports whether the caller's channel is gone.
func (c *InboundCall) HungUp() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hungUp
}

// end ends the call for eslapp and fails what it still waits for.
func (c *InboundCall) end(cause error) {
	c.cancel(cause)
	c.mu.Lock()
	apps := c.apps
	c.apps = make(map[string]*App)
	c.mu.Unlock()
	now := time.Now()
	for _, a := range apps {
		a.complete("", now, ErrHangup)
	}
}

// dispatch applies one of the call's events, on the connection's read
// loop: it never blocks.
func (c *InboundCall) dispatch(ev Event) {
	switch ev.Name {
	case "CHANNEL_EXECUTE_COMPLETE":
		c.mu.Lock()
		a := c.apps[ev.AppUUID]
		delete(c.apps, ev.AppUUID)
		left := c.left
		c.mu.Unlock()
		if a != nil {
			a.complete(ev.AppResponse, ev.Received, nil)
			return
		}
		if ev.App == "park" && !left {
			// The dialplan's park ended without eslapp transferring the
			// call: the safety net (or another controller) moved it.
			c.log.Warn("the call left the park while eslapp ran it (the dialplan's safety net fired?); eslapp lets it go")
			c.end(fmt.Errorf("%w: the call left the park", ErrHangup))
		}
	case "CHANNEL_HANGUP":
		c.mu.Lock()
		c.hungUp = true
		c.mu.Unlock()
		c.end(fmt.Errorf("%w (%s)", ErrHangup, ev.HangupCause))
	}
}

// send runs a command for this call. FreeSWITCH's answers for a channel
// that is gone become ErrHangup.
func (c *InboundCall) send(ctx context.Context, what, cmd string) (string, error) {
	text, err := c.in.send(ctx, what, cmd)
	var re *ReplyError
	if errors.As(err, &re) && (re.Text == "No such channel!" || strings.HasPrefix(re.Text, "invalid session id")) {
		return "", fmt.Errorf("%s: %w (%s)", what, ErrHangup, re.Text)
	}
	return text, err
}

// parkWait bounds the wait for the channel to reach the park: the start
// event fires just before the dialplan's park, and FreeSWITCH refuses
// sendmsg for a channel nothing controls yet.
const parkWait = 500 * time.Millisecond

// Start queues an application on the channel (sendmsg UUID, the argument
// as body), like Session.Start.
func (c *InboundCall) Start(ctx context.Context, app string, arg AppArg, opts ExecOptions) (*App, error) {
	if !isAppName(app) {
		return nil, &UnsafeValueError{Sink: "application name", Reason: fmt.Sprintf("%q is not an application name", app)}
	}
	wire := arg.Wire(!c.expandX)
	if strings.IndexByte(wire, 0) >= 0 {
		return nil, &UnsafeValueError{Sink: "application argument", Reason: "holds a NUL byte"}
	}
	a := newApp(app, c.ids())
	c.mu.Lock()
	if c.hungUp {
		c.mu.Unlock()
		return nil, fmt.Errorf("sendmsg %s: %w", app, ErrHangup)
	}
	c.apps[a.UUID] = a
	if opts.Within > 0 {
		d := opts.Within
		a.expiry = time.AfterFunc(d, func() { c.expire(a, d) })
	}
	c.mu.Unlock()
	msg := executeMessage(c.uuid, app, wire, a.UUID, opts)
	deadline := time.Now().Add(parkWait)
	for {
		_, err := c.in.send(ctx, "sendmsg "+app, msg)
		var re *ReplyError
		if errors.As(err, &re) && strings.HasPrefix(re.Text, "invalid session id") && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err != nil {
			if errors.As(err, &re) && strings.HasPrefix(re.Text, "invalid session id") {
				err = fmt.Errorf("sendmsg %s: %w (%s)", app, ErrHangup, re.Text)
			}
			c.mu.Lock()
			delete(c.apps, a.UUID)
			c.mu.Unlock()
			a.complete("", time.Now(), err)
			return nil, err
		}
		return a, nil
	}
}

// expire ends an application whose bound passed without its completion.
func (c *InboundCall) expire(a *App, d time.Duration) {
	c.mu.Lock()
	if c.apps[a.UUID] != a {
		c.mu.Unlock()
		return
	}
	delete(c.apps, a.UUID)
	c.mu.Unlock()
	c.log.Warn("FreeSWITCH never reported the end of an application", "app", a.Name, "waited", d)
	a.complete("", time.Now(), fmt.Errorf("%w: no CHANNEL_EXECUTE_COMPLETE within %s", ErrAppTimeout, d.Round(time.Millisecond)))
}

// StartSetVars queues what sets vars (one multiset, see MultisetArg) and
// returns the last application queued, nil when vars is empty.
func (c *InboundCall) StartSetVars(ctx context.Context, vars []Var, within time.Duration) (*App, error) {
	arg, rest, err := MultisetArg(vars)
	if err != nil {
		return nil, err
	}
	var last *App
	if arg.s != "" {
		if last, err = c.Start(ctx, "multiset", arg, ExecOptions{Within: within}); err != nil {
			return nil, err
		}
	}
	for _, v := range rest {
		a, err := SetArg(v.Name, v.Value)
		if err != nil {
			return nil, err
		}
		if last, err = c.Start(ctx, "set", a, ExecOptions{Within: within}); err != nil {
			return nil, err
		}
	}
	return last, nil
}

// API runs an api command and returns its output.
func (c *InboundCall) API(ctx context.Context, name string, args APIArgs) (string, error) {
	if !isAPIName(name) {
		return "", &UnsafeValueError{Sink: "api command name", Reason: fmt.Sprintf("%q is not a command name", name)}
	}
	line := "api " + name
	if args.s != "" {
		line += " " + args.s
	}
	return c.send(ctx, "api "+name, line)
}

// Break stops what the call plays (api uuid_break UUID [all]).
func (c *InboundCall) Break(ctx context.Context, all bool) error {
	args := APIArg(c.uuid)
	if all {
		args = APIArgsOf(c.uuid, "all")
	}
	_, err := c.API(ctx, "uuid_break", args)
	return err
}

// ContextVar names the channel variable with the dialplan context a
// socket-less call is handed back to: the one where the extensions named
// like the branches (${wfe_branch}) are.
const ContextVar = "wfe_context"

// HandBack hands the call back to the dialplan: a transfer to the
// extension named branch in the context the dialplan named in
// wfe_context ("default" when it named none), after cancelling the safety
// net.
func (c *InboundCall) HandBack(ctx context.Context, branch string) error {
	context := "default"
	if v, ok := c.data.Var(ContextVar); ok && v != "" {
		context = v
	}
	return c.Transfer(ctx, branch, "XML", context)
}

// Transfer cancels the dialplan's safety net and sends the call to
// another extension (api uuid_transfer), which ends eslapp's part in it.
func (c *InboundCall) Transfer(ctx context.Context, extension, dialplan, context string) error {
	if dialplan == "" {
		dialplan = "XML"
	}
	arg, err := TransferArg(extension, dialplan, context)
	if err != nil {
		return err
	}
	// sched_del before the transfer: the other way round the net could
	// fire between the two and move the call a second time.
	if _, err := c.API(ctx, "sched_del", APIArg(c.uuid)); err != nil {
		return err
	}
	c.mu.Lock()
	c.left = true
	c.mu.Unlock()
	_, err = c.API(ctx, "uuid_transfer", APIArgs{s: c.uuid + " " + arg.s})
	return err
}

// Hangup ends the call with a hangup cause (api uuid_kill).
func (c *InboundCall) Hangup(ctx context.Context, cause string) error {
	if cause == "" {
		cause = "NORMAL_CLEARING"
	}
	if !isHangupCause(cause) {
		return &UnsafeValueError{Sink: "hangup cause", Reason: fmt.Sprintf("%q is not a hangup cause", cause)}
	}
	_, err := c.API(ctx, "uuid_kill", APIArgsOf(c.uuid, cause))
	return err
}

// SendEvent fires a CUSTOM event (sendevent) over the shared connection;
// see Session.SendEvent.
func (c *InboundCall) SendEvent(ctx context.Context, subclass string, headers []EventHeader, body []byte) (string, error) {
	msg, err := sendEventMessage(subclass, headers, body)
	if err != nil {
		return "", err
	}
	text, err := c.send(ctx, "sendevent", msg)
	if err != nil {
		return "", err
	}
	id, _ := strings.CutPrefix(text, "+OK")
	return strings.TrimSpace(id), nil
}
