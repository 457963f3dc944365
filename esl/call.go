package esl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Call is one call eslapp runs, whichever way it reached eslapp: its own
// outbound socket (the dialplan's "socket ... async full", see Session) or
// the shared inbound connection of the FreeSWITCH that announced it
// (socket-less, see Inbound). Everything a call's owner does — start an
// application and learn how it ended, run api commands, stop the prompt,
// fire events, set variables, hand the call on — is written once, here;
// what differs between the two ways in is the leg: how a command reaches
// FreeSWITCH and names the channel, how the call's events are subscribed
// (its claim), and how it leaves eslapp.
//
// Events reach a Call on its connection's read loop (dispatch), in the
// order FreeSWITCH wrote them; the call's owner selects on Context().Done()
// and on the Started and Done channels of the applications it started. A
// Call is safe for use by several goroutines.
type Call struct {
	leg  leg
	uuid string
	data *ChannelData
	log  *slog.Logger
	// expandOff: app_disable_expand_variables is true on the channel, so
	// FreeSWITCH does not expand application arguments (see AppArg.Wire).
	expandOff bool
	appIDs    func() string
	// inbound is the connection to the call's FreeSWITCH, for what must
	// reach it after the call has left (late results); nil when none.
	inbound *Inbound
	// firstBound bounds the first step, for the net a contended claim
	// arms (Binding.Bound); set by the runner before the claim.
	firstBound time.Duration
	// holder is the application that holds the call for eslapp while it
	// runs ("park" socket-less; "" on a socket, whose end is the
	// connection's): when it completes without eslapp having handed the
	// call on, something else (the dialplan's safety net) moved the call.
	holder string

	ctx    context.Context
	cancel context.CancelCauseFunc
	// eventQueue keeps the call's events for tests; nil unless asked for.
	eventQueue atomic.Pointer[Events]

	mu         sync.Mutex
	apps       map[string]*App // started, not yet complete, by Application-UUID
	current    *App            // the application FreeSWITCH is running
	hungUp     bool
	broke      bool // a uuid_break was sent
	subscribed bool // claimed: the call's events reach it
	left       bool // handed on by eslapp (hand-back, transfer, hangup)
}

// callConfig is what a way in gives a new call.
type callConfig struct {
	leg    leg
	data   *ChannelData
	log    *slog.Logger // without the call's UUID: newCall adds it
	parent context.Context
	appIDs func() string // nil: shortAppIDs
	holder string
}

func newCall(cfg callConfig) *Call {
	if cfg.appIDs == nil {
		cfg.appIDs = shortAppIDs()
	}
	c := &Call{
		leg:    cfg.leg,
		uuid:   cfg.data.UUID(),
		data:   cfg.data,
		appIDs: cfg.appIDs,
		holder: cfg.holder,
		apps:   make(map[string]*App),
	}
	c.log = cfg.log.With("call", c.uuid)
	v, _ := cfg.data.Var("app_disable_expand_variables")
	c.expandOff = IsTrue(v)
	c.ctx, c.cancel = context.WithCancelCause(cfg.parent)
	return c
}

// UUID is the channel's Unique-ID.
func (c *Call) UUID() string { return c.uuid }

// Data is the channel data FreeSWITCH sent with the call: the connect
// reply on a socket, the start event socket-less.
func (c *Call) Data() *ChannelData { return c.data }

// Logger logs with the call's UUID.
func (c *Call) Logger() *slog.Logger { return c.log }

// Context ends when the call is over for eslapp: the caller hung up, the
// call left eslapp's hands (the safety net moved it), the connection was
// lost, or eslapp is shutting down. context.Cause tells which (ErrHangup,
// ErrDisconnected, ErrShutdown).
func (c *Call) Context() context.Context { return c.ctx }

// Inbound is eslapp's inbound connection to the FreeSWITCH the call is on:
// the one that announced a socket-less call; for a socket's call, the one
// to the socket's peer address (or the only one), nil when there is none.
// What must reach FreeSWITCH after the call has left eslapp (a late
// result) goes over it.
func (c *Call) Inbound() *Inbound { return c.inbound }

// Full reports whether FreeSWITCH takes every command eslapp sends for
// the call: a socket needs "async full" for api and sendevent; the shared
// inbound connection always takes them.
func (c *Call) Full() bool { return c.leg.full() }

// HungUp reports whether the caller's channel is gone.
func (c *Call) HungUp() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hungUp
}

// Left reports whether eslapp has handed the call on: handed it back to
// the dialplan, transferred it or hung it up. Nothing more may be sent.
func (c *Call) Left() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.left
}

// markLeft records that the call is being handed on. It is set before the
// command goes out: a shutdown landing before its reply must not hand the
// call on a second time.
func (c *Call) markLeft() {
	c.mu.Lock()
	c.left = true
	c.mu.Unlock()
}

// events is the call's event stream, in the order FreeSWITCH wrote it,
// from its first call on. The call's owner does not need it (its
// applications report their start and end, its context the hangup); tests
// read it to see what the call saw.
func (c *Call) events() *Events {
	if q := c.eventQueue.Load(); q != nil {
		return q
	}
	c.eventQueue.CompareAndSwap(nil, newEvents())
	return c.eventQueue.Load()
}

// claim makes the call eslapp's: its events reach it from here on.
func (c *Call) claim(ctx context.Context) error {
	if err := c.leg.claim(ctx, c); err != nil {
		return err
	}
	c.mu.Lock()
	c.subscribed = true
	c.mu.Unlock()
	return nil
}

// send runs one command for the call on the connection that carries it.
func (c *Call) send(ctx context.Context, what, cmd string) (string, error) {
	return c.leg.send(ctx, c, what, cmd)
}

// Arm (re-)arms the call's safety net for a step that may take bound: a
// socket-less call whose eslapp dies mid-step reaches OnError within about
// bound plus 2 s. A socket needs none. ErrNetFired means the net had
// fired: the call is not eslapp's any more.
func (c *Call) Arm(ctx context.Context, bound time.Duration) error {
	return c.leg.arm(ctx, c, bound)
}

// Start queues an application on the channel (sendmsg, the argument as the
// body) and returns as soon as FreeSWITCH has accepted it (its "+OK"
// arrives before any of the app's events). The returned App reports its
// start and its end. The waiter is registered before the command is
// written, so no event can be missed.
func (c *Call) Start(ctx context.Context, app string, arg AppArg, opts ExecOptions) (*App, error) {
	if !isAppName(app) {
		return nil, &UnsafeValueError{Sink: "application name", Reason: fmt.Sprintf("%q is not an application name", app)}
	}
	wire := arg.Wire(!c.expandOff)
	if strings.IndexByte(wire, 0) >= 0 {
		return nil, &UnsafeValueError{Sink: "application argument", Reason: "holds a NUL byte"}
	}
	a := newApp(app, c.appIDs())
	c.mu.Lock()
	if c.hungUp {
		c.mu.Unlock()
		return nil, fmt.Errorf("sendmsg %s: %w", app, ErrHangup)
	}
	if !c.subscribed {
		c.mu.Unlock()
		return nil, fmt.Errorf("sendmsg %s: %w", app, ErrNoEvents)
	}
	c.apps[a.UUID] = a
	if opts.Within > 0 {
		d := opts.Within
		a.expiry = time.AfterFunc(d, func() { c.expire(a, d) })
	}
	c.mu.Unlock()

	if err := c.leg.sendmsg(ctx, c, "sendmsg "+app, func(channel string) string {
		return executeMessage(channel, app, wire, a.UUID, opts)
	}); err != nil {
		c.mu.Lock()
		delete(c.apps, a.UUID)
		c.mu.Unlock()
		a.complete("", time.Now(), err)
		return nil, err
	}
	return a, nil
}

// expire ends an application whose bound passed without its completion.
func (c *Call) expire(a *App, d time.Duration) {
	c.mu.Lock()
	if c.apps[a.UUID] != a {
		c.mu.Unlock()
		return // completed meanwhile
	}
	delete(c.apps, a.UUID)
	if c.current == a {
		c.current = nil
	}
	c.mu.Unlock()
	c.log.Warn("FreeSWITCH never reported the end of an application", "app", a.Name, "waited", d)
	a.complete("", time.Now(), fmt.Errorf("%w: no CHANNEL_EXECUTE_COMPLETE within %s", ErrAppTimeout, d.Round(time.Millisecond)))
}

// Execute runs an application and waits for it to end, at most
// DefaultWithin.
func (c *Call) Execute(ctx context.Context, app string, arg AppArg) (AppResult, error) {
	a, err := c.Start(ctx, app, arg, ExecOptions{Within: DefaultWithin, EventLock: playsMedia(app)})
	if err != nil {
		return AppResult{}, err
	}
	return a.Wait(ctx)
}

// API runs a FreeSWITCH API command ("api NAME ARGS") and returns its
// output. An output that starts with "-ERR" is returned as a *ReplyError.
func (c *Call) API(ctx context.Context, name string, args APIArgs) (string, error) {
	if !isAPIName(name) {
		return "", &UnsafeValueError{Sink: "api command name", Reason: fmt.Sprintf("%q is not a command name", name)}
	}
	line := "api " + name
	if args.s != "" {
		line += " " + args.s
	}
	return c.send(ctx, "api "+name, line)
}

// Break stops what the call is playing (api uuid_break UUID). With all,
// the applications queued behind it are dropped as well, without events.
func (c *Call) Break(ctx context.Context, all bool) error {
	args := APIArg(c.uuid)
	if all {
		args = APIArgsOf(c.uuid, "all")
	}
	_, err := c.API(ctx, "uuid_break", args)
	if err == nil {
		c.mu.Lock()
		c.broke = true
		c.mu.Unlock()
	}
	return err
}

// NeedsFiller reports whether nothing of the dialplan's plays to the
// caller between eslapp's prompts any more: a contended socket-less call
// waits in the dialplan's hold music, which eslapp's first uuid_break ends
// too (measured on 1.10.12: the call then sits in a silent park). A socket
// and an older dialplan's park were never filled by the dialplan.
func (c *Call) NeedsFiller() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broke && c.leg.isContended()
}

// EventHeader is one header of an event eslapp fires.
type EventHeader struct{ Name, Value string }

// SendEvent fires a CUSTOM event with the given subclass (sendevent), for
// inbound Event Socket subscribers such as agent desktops. FreeSWITCH does
// not deliver it back to a call's own socket. It returns the Event-UUID
// FreeSWITCH gave the event.
//
// The call is named by the headers the caller passes, never by Unique-ID:
// FreeSWITCH queues an event that carries one to that channel instead of
// firing it (switch_event_fire of a sendevent with Unique-ID goes to the
// session's queue).
func (c *Call) SendEvent(ctx context.Context, subclass string, headers []EventHeader, body []byte) (string, error) {
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

// SetVar stores a channel variable with any value (quotes, newlines, JSON,
// ${...}), verbatim, and waits until FreeSWITCH has run the set. See SetArg.
func (c *Call) SetVar(ctx context.Context, name, value string) error {
	arg, err := SetArg(name, value)
	if err != nil {
		return err
	}
	_, err = c.Execute(ctx, "set", arg)
	return err
}

// SetVars stores several channel variables, verbatim, with as few
// applications as possible (one multiset, see MultisetArg), and waits until
// FreeSWITCH has run them all. An empty value unsets the variable.
func (c *Call) SetVars(ctx context.Context, vars []Var) error {
	last, err := c.StartSetVars(ctx, vars, DefaultWithin)
	if err != nil || last == nil {
		return err
	}
	_, err = last.Wait(ctx)
	return err
}

// StartSetVars queues what SetVars does and returns the last application
// queued (nil when vars is empty): applications run in order, so its end
// means all have run. Each must end within the given bound.
func (c *Call) StartSetVars(ctx context.Context, vars []Var, within time.Duration) (*App, error) {
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

// HandBack returns the call to the dialplan once its outputs are set: on
// a socket, resume (the dialplan goes on after "socket" and routes on
// ${wfe_branch}); socket-less, a transfer to the extension named branch in
// the context the dialplan named in wfe_context.
func (c *Call) HandBack(ctx context.Context, branch string) error {
	return c.leg.handBack(ctx, c, branch)
}

// Transfer sends the call to another extension ("EXT DIALPLAN CONTEXT";
// dialplan "" means XML), which ends eslapp's part in it: on a socket the
// transfer application (the socket stays attached until eslapp exits),
// socket-less api uuid_transfer.
func (c *Call) Transfer(ctx context.Context, extension, dialplan, context string) error {
	if dialplan == "" {
		dialplan = "XML"
	}
	arg, err := TransferArg(extension, dialplan, context)
	if err != nil {
		return err
	}
	return c.leg.transfer(ctx, c, arg)
}

// Hangup ends the call with a hangup cause such as NORMAL_CLEARING ("" is
// NORMAL_CLEARING).
func (c *Call) Hangup(ctx context.Context, cause string) error {
	if cause == "" {
		cause = "NORMAL_CLEARING"
	}
	if !isHangupCause(cause) {
		return &UnsafeValueError{Sink: "hangup cause", Reason: fmt.Sprintf("%q is not a hangup cause", cause)}
	}
	c.markLeft()
	return c.leg.hangup(ctx, c, cause)
}

// dispatch applies one of the call's events, on its connection's read
// loop: it never blocks.
func (c *Call) dispatch(ev Event) {
	var done *App
	hangup, moved := false, false
	c.mu.Lock()
	switch ev.Name {
	case "CHANNEL_EXECUTE":
		if a := c.apps[ev.AppUUID]; a != nil {
			c.current = a
			a.markStarted(ev.Received)
		}
	case "PLAYBACK_START":
		if c.current != nil {
			c.current.setPlayback(ev.Received, "")
		}
	case "PLAYBACK_STOP":
		if c.current != nil {
			c.current.setPlayback(ev.Received, ev.PlaybackStatus)
		}
	case "CHANNEL_EXECUTE_COMPLETE":
		if a := c.apps[ev.AppUUID]; a != nil {
			delete(c.apps, ev.AppUUID)
			if c.current == a {
				c.current = nil
			}
			done = a
		} else if c.holder != "" && ev.App == c.holder && !c.left {
			moved = true
		}
	case "CHANNEL_HANGUP":
		hangup = !c.hungUp
		c.hungUp = true
	}
	hungUp := c.hungUp
	c.mu.Unlock()
	if done != nil {
		var err error
		if hungUp {
			err = ErrHangup
		}
		done.complete(ev.AppResponse, ev.Received, err)
	}
	if moved {
		// The application holding the call ended without eslapp handing
		// the call on: the dialplan's safety net (or another controller)
		// moved it. eslapp lets it go.
		c.log.Warn("the call left the " + c.holder + " while eslapp ran it (the dialplan's safety net fired?); eslapp lets it go")
		c.end(fmt.Errorf("%w: the call left the %s", ErrHangup, c.holder), ErrHangup)
	}
	if hangup {
		c.cancel(fmt.Errorf("%w (%s)", ErrHangup, ev.HangupCause))
		c.failQueuedApps(ErrHangup)
	}
	if q := c.eventQueue.Load(); q != nil {
		q.push(ev)
	}
}

// hungUpBy ends the call because the caller hung up, known otherwise than
// by an event (a socket's disconnect notice).
func (c *Call) hungUpBy(cause error) {
	c.mu.Lock()
	c.hungUp = true
	c.mu.Unlock()
	c.end(cause, ErrHangup)
}

// end ends the call for eslapp (its context, with cause) and fails every
// application still waited for with appErr.
func (c *Call) end(cause, appErr error) {
	c.cancel(cause)
	c.mu.Lock()
	apps := c.apps
	c.apps = make(map[string]*App)
	c.current = nil
	c.mu.Unlock()
	now := time.Now()
	for _, a := range apps {
		a.complete("", now, appErr)
	}
}

// failQueuedApps ends the applications that had not started when the call
// hung up: FreeSWITCH drops them without an event. The running one still
// gets its CHANNEL_EXECUTE_COMPLETE.
func (c *Call) failQueuedApps(err error) {
	c.mu.Lock()
	var queued []*App
	for id, a := range c.apps {
		if a != c.current {
			queued = append(queued, a)
			delete(c.apps, id)
		}
	}
	c.mu.Unlock()
	now := time.Now()
	for _, a := range queued {
		a.complete("", now, err)
	}
}

// isGoneReply reports FreeSWITCH's answers about a channel that no longer
// exists: api's "No such channel!", sendmsg's "invalid session id".
func isGoneReply(err error) (*ReplyError, bool) {
	var re *ReplyError
	if errors.As(err, &re) && (re.Text == "No such channel!" || strings.HasPrefix(re.Text, "invalid session id")) {
		return re, true
	}
	return nil, false
}
