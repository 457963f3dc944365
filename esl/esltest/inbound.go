package esltest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The inbound Event Socket (mod_event_socket's listener, port 8021) and
// socket-less calls: a dialplan that fires a CUSTOM event and parks the
// call, with a scheduled transfer as its safety net, for an application
// connected inbound to take over.

var locEventApp = callingLoc{"mod_dptools.c", "event_function", "0"}

// ListenInbound starts the inbound Event Socket on a free loopback port:
// "auth/request", then "auth PASSWORD", then any command of parse_command
// (event, nixevent, noevents, filter, api, sendmsg UUID, sendevent, exit).
// It returns the address; StopInbound or DropInbound end it.
func (fs *FreeSWITCH) ListenInbound(password string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	return fs.serveInbound(ln, password), nil
}

// ListenInboundAt is ListenInbound on a given address (a FreeSWITCH that
// comes back on the port it had, after a restart).
func (fs *FreeSWITCH) ListenInboundAt(addr, password string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fs.serveInbound(ln, password)
	return nil
}

func (fs *FreeSWITCH) serveInbound(ln net.Listener, password string) string {
	fs.mu.Lock()
	fs.inboundLn = append(fs.inboundLn, ln)
	fs.mu.Unlock()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			ic := &inboundConn{fs: fs, conn: nc, password: password}
			ic.pc = &Call{fs: fs, conn: nc, noRecord: true, ctrl: make(chan func()), done: make(chan struct{}), notify: make(chan struct{})}
			fs.mu.Lock()
			fs.inbound[ic] = struct{}{}
			fs.mu.Unlock()
			go ic.serve()
		}
	}()
	return ln.Addr().String()
}

// StopInbound closes the inbound listeners and connections the way a
// stopping FreeSWITCH does: a disconnect notice, then the close.
func (fs *FreeSWITCH) StopInbound() { fs.endInbound(true) }

// DropInbound closes them without a word: a connection lost on the way.
func (fs *FreeSWITCH) DropInbound() { fs.endInbound(false) }

func (fs *FreeSWITCH) endInbound(notice bool) {
	fs.mu.Lock()
	lns := fs.inboundLn
	fs.inboundLn = nil
	conns := make([]*inboundConn, 0, len(fs.inbound))
	for ic := range fs.inbound {
		conns = append(conns, ic)
	}
	fs.mu.Unlock()
	for _, ln := range lns {
		_ = ln.Close()
	}
	for _, ic := range conns {
		ic.mu.Lock()
		if notice {
			ic.write([]byte("Content-Type: text/disconnect-notice\nContent-Length: " + strconv.Itoa(len(shutdownNotice)) + "\n\n" + shutdownNotice))
		}
		ic.mu.Unlock()
		_ = ic.conn.Close()
	}
}

const shutdownNotice = "The system is being shut down.\n"

// InboundConnections is the number of inbound connections open.
func (fs *FreeSWITCH) InboundConnections() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.inbound)
}

// InboundSubscribed reports whether an authenticated inbound connection
// subscribes to CUSTOM events of subclass: from then on, a socket-less
// call (Socketless) announcing itself with that subclass is heard.
func (fs *FreeSWITCH) InboundSubscribed(subclass string) bool {
	return fs.inboundWants(evCustom, subclass)
}

// inboundWants reports whether an inbound connection subscribes to an event
// name (the cheap test before an event is built).
func (fs *FreeSWITCH) inboundWants(id int, subclass string) bool {
	fs.mu.Lock()
	conns := make([]*inboundConn, 0, len(fs.inbound))
	for ic := range fs.inbound {
		conns = append(conns, ic)
	}
	fs.mu.Unlock()
	for _, ic := range conns {
		ic.mu.Lock()
		ok := ic.authed && ic.pc.sub.wantsName(id, subclass)
		ic.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

// publish delivers an event to the inbound connections whose subscription
// and filters take it (event_handler).
func (fs *FreeSWITCH) publish(id int, subclass string, h []Header) {
	fs.mu.Lock()
	conns := make([]*inboundConn, 0, len(fs.inbound))
	for ic := range fs.inbound {
		conns = append(conns, ic)
	}
	fs.mu.Unlock()
	for _, ic := range conns {
		ic.mu.Lock()
		if ic.authed && ic.pc.sub.wantsName(id, subclass) && ic.pc.sub.delivers(h, "") {
			ic.pc.sendEvent(h, nil)
		}
		ic.mu.Unlock()
	}
}

// inboundConn is one inbound connection. Its subscription and its reply
// helpers are those of a Call without a channel (pc); mu orders its
// writes, which come from its own loop and from every call's events, and
// guards the subscription. Lock order: fs.mu is never held while ic.mu is
// taken, and ic.mu is let go while a command waits for a call.
type inboundConn struct {
	fs       *FreeSWITCH
	conn     net.Conn
	password string
	pc       *Call

	mu     sync.Mutex
	authed bool
}

func (ic *inboundConn) write(b []byte) {
	if _, err := ic.conn.Write(b); err != nil {
		_ = ic.conn.Close()
	}
}

func (ic *inboundConn) serve() {
	defer func() {
		_ = ic.conn.Close()
		ic.fs.mu.Lock()
		delete(ic.fs.inbound, ic)
		ic.fs.mu.Unlock()
	}()
	ic.mu.Lock()
	ic.write([]byte("Content-Type: auth/request\n\n"))
	ic.mu.Unlock()
	r := bufio.NewReaderSize(ic.conn, 4096)
	for {
		cmd, err := ReadCommand(r)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
				ic.fs.logf("esltest inbound: read: %v", err)
			}
			return
		}
		if !ic.process(cmd) {
			return
		}
	}
}

// process runs one command; false ends the connection.
func (ic *inboundConn) process(cmd *Command) bool {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	pc := ic.pc
	if cmd.Name == "exit" {
		pc.sendReply("+OK bye")
		ic.write([]byte("Content-Type: text/disconnect-notice\nContent-Length: " + strconv.Itoa(len(goodbye)) + "\n\n" + goodbye))
		return false
	}
	if !ic.authed {
		if pass, ok := strings.CutPrefix(cmd.Line, "auth "); ok {
			if pass == ic.password {
				ic.authed = true
				pc.sendReply("+OK accepted")
				return true
			}
			pc.sendReply("-ERR invalid")
			return false
		}
		pc.sendReply("-ERR command not found")
		return true
	}
	line := cmd.Line
	switch cmd.Name {
	case "event":
		pc.sendReply(pc.event(line))
	case "nixevent":
		pc.sendReply(pc.nixevent(line))
	case "noevents":
		pc.sub = subscription{}
		pc.sendReply("+OK no longer listening for events")
	case "filter":
		pc.sendReply(pc.filter(line[len("filter "):]))
	case "sendevent":
		pc.sendReply(pc.sendevent(cmd))
	case "sendmsg":
		uuid := strings.TrimLeft(cmd.Line[len("sendmsg"):], " ")
		if uuid == "" {
			uuid = cmd.header("session-id")
		}
		ic.mu.Unlock()
		t := ic.fs.locate(uuid)
		if t == nil || !t.controlled.Load() {
			ic.mu.Lock()
			pc.sendReply("-ERR invalid session id [" + uuid + "]")
			return true
		}
		// switch_core_session_queue_private_event, then the reply.
		t.do(func() {
			t.recordCommand(cmd)
			t.queue = append(t.queue, cmd)
			t.pump()
		})
		ic.mu.Lock()
		pc.sendReply("+OK")
	case "api":
		ic.mu.Unlock()
		// An api command that names a call (uuid_break UUID, sched_del
		// UUID, ...) is kept with that call's commands, so that a test
		// sees everything eslapp sent about it.
		if f := strings.Fields(line); len(f) >= 3 {
			if t := ic.fs.locate(f[2]); t != nil {
				t.do(func() { t.recordCommand(cmd) })
			}
		}
		body, effect := pc.runAPI(line[len("api "):])
		ic.mu.Lock()
		pc.sendAPIResponse(body)
		if effect != nil {
			ic.mu.Unlock()
			effect()
			ic.mu.Lock()
		}
	default:
		pc.sendReply("-ERR command not found")
	}
	return true
}

// SocketlessOptions describe a call whose dialplan hands it over without
// a socket: vars set (CallOptions.Vars), the safety net armed, the CUSTOM
// event fired, then park.
type SocketlessOptions struct {
	CallOptions
	// Subclass of the CUSTOM event; default "eslapp::call".
	Subclass string
	// Net is the safety net's delay (sched_transfer +Net), NetDest where
	// it sends the call ("OnError XML crm_branches"). No net when Net is 0.
	Net     time.Duration
	NetDest string
}

// Socketless starts a call on the socket-less path. The call lives until it
// hangs up: a transfer (by the application or by the net) leads to the
// extension modelled by CallOptions.AfterTransfer, as for socket calls.
func (fs *FreeSWITCH) Socketless(ctx context.Context, o SocketlessOptions) (*Call, error) {
	if o.Subclass == "" {
		o.Subclass = "eslapp::call"
	}
	nc := &nullConn{closed: make(chan struct{})}
	c := newCall(fs, nc, "", o.CallOptions)
	c.socketData, c.parkApp = "", "park"
	c.gotFirst = true // no socket: nothing waits for "connect"
	c.setVar("current_application", "park")
	c.delVar("current_application_data")
	c.delVar("socket_host")
	fs.mu.Lock()
	if _, dup := fs.calls[c.uuid]; dup {
		fs.mu.Unlock()
		return nil, fmt.Errorf("esltest: a call with UUID %s already exists", c.uuid)
	}
	fs.calls[c.uuid] = c
	fs.mu.Unlock()
	go c.readLoop(bufio.NewReader(nc))
	go c.run()
	fired := make(chan struct{})
	c.do(func() {
		defer close(fired)
		if o.Net > 0 {
			c.netAt = time.Now().Add(o.Net)
			c.netDest = transferArgs(o.NetDest)
		}
		c.fireCustom(o.Subclass)
	})
	select {
	case <-fired:
	case <-ctx.Done():
		return c, ctx.Err()
	}
	return c, nil
}

// fireCustom is the dialplan's "event Event-Name=CUSTOM,Event-Subclass=S":
// the event carries the channel's data and variables.
func (c *Call) fireCustom(subclass string) {
	now := time.Now()
	h := c.fs.appendCoreHeaders(nil, "CUSTOM", now, locEventApp)
	h = append(h, Header{"Event-Subclass", subclass})
	h = c.ch.appendBasicData(h)
	h = c.ch.appendProfile(h, "Caller")
	h = c.ch.appendVars(h)
	c.fs.addFired(FiredEvent{At: now, From: c.uuid, Name: "CUSTOM", Subclass: subclass, Headers: h})
	c.fs.publish(evCustom, subclass, h)
}

// delNet is sched_del for this call's group: the net is cancelled.
func (c *Call) delNet() int {
	if c.netAt.IsZero() {
		return 0
	}
	c.netAt, c.netDest = time.Time{}, nil
	return 1
}

// fireNet is the scheduled transfer.
func (c *Call) fireNet() {
	dest := c.netDest
	c.netAt, c.netDest = time.Time{}, nil
	c.mu.Lock()
	c.outcome.NetFired = true
	c.mu.Unlock()
	c.transfer(dest)
}

// recordCommand keeps a command sent for this call over an inbound
// connection with the call's own commands.
func (c *Call) recordCommand(cmd *Command) {
	cp := *cmd
	cp.At = time.Now()
	c.mu.Lock()
	c.commands = append(c.commands, cp)
	close(c.notify)
	c.notify = make(chan struct{})
	c.mu.Unlock()
}

// nullConn is the socket a socket-less call does not have: writes vanish,
// reads wait for Close.
type nullConn struct {
	once   sync.Once
	closed chan struct{}
}

func (n *nullConn) Read([]byte) (int, error) { <-n.closed; return 0, net.ErrClosed }
func (n *nullConn) Write(b []byte) (int, error) {
	select {
	case <-n.closed:
		return 0, net.ErrClosed
	default:
		return len(b), nil
	}
}
func (n *nullConn) Close() error                     { n.once.Do(func() { close(n.closed) }); return nil }
func (n *nullConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (n *nullConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (n *nullConn) SetDeadline(time.Time) error      { return nil }
func (n *nullConn) SetReadDeadline(time.Time) error  { return nil }
func (n *nullConn) SetWriteDeadline(time.Time) error { return nil }
