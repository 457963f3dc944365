package callflow

import (
	"context"
	"time"

	"github.com/eslapp/eslapp/esl"
)

// Channel is what the engine needs from a call: its own outbound socket
// (*esl.Session, through FromSession) or, socket-less, the shared inbound
// connection (*esl.InboundCall, through FromInbound); tests use a fake.
type Channel interface {
	UUID() string
	// Full reports whether the socket runs "async full", which uuid_break
	// and sendevent need.
	Full() bool
	// Var is a channel variable as it was when eslapp connected.
	Var(name string) (string, bool)
	// Header is a header of the connect data, e.g. Caller-Caller-ID-Number.
	Header(name string) string
	Subscribe(ctx context.Context) error
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
}

// Running is an application started on the channel.
type Running interface {
	Started() <-chan struct{}
	Done() <-chan struct{}
	Result() (esl.AppResult, error)
}

// FromSession adapts an ESL session to Channel.
func FromSession(s *esl.Session) Channel { return sessionChannel{s} }

type sessionChannel struct{ *esl.Session }

var _ Channel = sessionChannel{}

func (c sessionChannel) Var(name string) (string, bool) { return c.Data().Var(name) }
func (c sessionChannel) Header(name string) string      { return c.Data().Header(name) }
func (c sessionChannel) Subscribe(ctx context.Context) error {
	return c.Session.Subscribe(ctx)
}

func (c sessionChannel) HandBack(ctx context.Context, _ string) error { return c.Resume(ctx) }

func (c sessionChannel) Start(ctx context.Context, app string, arg esl.AppArg, opts esl.ExecOptions) (Running, error) {
	a, err := c.Session.Start(ctx, app, arg, opts)
	if err != nil {
		return nil, err
	}
	return a, nil
}

func (c sessionChannel) SetVars(ctx context.Context, vars []esl.Var, within time.Duration) (Running, error) {
	a, err := c.Session.StartSetVars(ctx, vars, within)
	if err != nil || a == nil {
		return nil, err // never a typed nil in the interface
	}
	return a, nil
}

// FromInbound adapts a socket-less call to Channel.
func FromInbound(c *esl.InboundCall) Channel { return inboundChannel{c} }

type inboundChannel struct{ *esl.InboundCall }

var _ Channel = inboundChannel{}

func (c inboundChannel) Full() bool                      { return true }
func (c inboundChannel) Var(name string) (string, bool)  { return c.Data().Var(name) }
func (c inboundChannel) Header(name string) string       { return c.Data().Header(name) }
func (c inboundChannel) Subscribe(context.Context) error { return nil } // the connection's filter, before the handler ran

func (c inboundChannel) Start(ctx context.Context, app string, arg esl.AppArg, opts esl.ExecOptions) (Running, error) {
	a, err := c.InboundCall.Start(ctx, app, arg, opts)
	if err != nil {
		return nil, err
	}
	return a, nil
}

func (c inboundChannel) SetVars(ctx context.Context, vars []esl.Var, within time.Duration) (Running, error) {
	a, err := c.InboundCall.StartSetVars(ctx, vars, within)
	if err != nil || a == nil {
		return nil, err
	}
	return a, nil
}
