package callflow

import (
	"context"
	"time"

	"github.com/eslapp/eslapp/esl"
)

// Channel is what the engine needs from a call: an *esl.Call (through
// FromCall), whichever way it reached eslapp; tests use a fake. The call is
// claimed (its events subscribed) before the engine gets it.
type Channel interface {
	UUID() string
	// Full reports whether FreeSWITCH takes api and sendevent for the
	// call, which uuid_break and the agent event need (a socket without
	// "async full" refuses them).
	Full() bool
	// Var is a channel variable as it was when eslapp got the call.
	Var(name string) (string, bool)
	// Header is a header of the call's channel data, e.g.
	// Caller-Caller-ID-Number.
	Header(name string) string
	// Start queues an application; the handle reports its start and end.
	Start(ctx context.Context, app string, arg esl.AppArg, opts esl.ExecOptions) (Running, error)
	// Break stops what plays; all also drops the applications queued
	// behind it.
	Break(ctx context.Context, all bool) error
	// SetVars queues the applications that set vars and returns the last
	// (nil when there is nothing to set).
	SetVars(ctx context.Context, vars []esl.Var, within time.Duration) (Running, error)
	// HandBack returns the call to the dialplan once its outputs are set:
	// on a socket, resume (the dialplan goes on after "socket" and routes
	// on ${wfe_branch}); socket-less, a transfer to the extension branch
	// in the context the dialplan named.
	HandBack(ctx context.Context, branch string) error
	Transfer(ctx context.Context, extension, dialplan, context string) error
	Hangup(ctx context.Context, cause string) error
	SendEvent(ctx context.Context, subclass string, headers []esl.EventHeader, body []byte) (string, error)
	// Arm re-arms the call's safety net for an action that may hold it
	// bound (socket-less; nothing on a socket). esl.ErrNetFired: the net
	// fired, and the call is over for eslapp.
	Arm(ctx context.Context, bound time.Duration) error
	// NeedsFiller reports whether a wait with no prompt must be filled
	// with hold music because nothing of the dialplan's plays: a
	// socket-less call whose dialplan hold music a break has ended.
	NeedsFiller() bool
	// Late is where the call's late results go (the inbound connection to
	// its FreeSWITCH); nil: Config.Late, if any.
	Late() LateSink
}

// Running is an application started on the channel.
type Running interface {
	Started() <-chan struct{}
	Done() <-chan struct{}
	Result() (esl.AppResult, error)
}

// FromCall adapts an esl.Call to Channel.
func FromCall(c *esl.Call) Channel { return callChannel{c} }

type callChannel struct{ *esl.Call }

var _ Channel = callChannel{}

func (c callChannel) Var(name string) (string, bool) { return c.Data().Var(name) }
func (c callChannel) Header(name string) string      { return c.Data().Header(name) }

func (c callChannel) Late() LateSink {
	if in := c.Inbound(); in != nil {
		return in
	}
	return nil // never a typed nil in the interface
}

func (c callChannel) Start(ctx context.Context, app string, arg esl.AppArg, opts esl.ExecOptions) (Running, error) {
	a, err := c.Call.Start(ctx, app, arg, opts)
	if err != nil {
		return nil, err // never a typed nil in the interface
	}
	return a, nil
}

func (c callChannel) SetVars(ctx context.Context, vars []esl.Var, within time.Duration) (Running, error) {
	a, err := c.Call.StartSetVars(ctx, vars, within)
	if err != nil || a == nil {
		return nil, err
	}
	return a, nil
}
