package esltest

import (
	"bufio"
	"cmp"
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
		if lag := time.Duration(ic.fs.inboundLag.Load()); lag > 0 && ic.authed {
			time.Sleep(lag)
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
	if !ic.fs.opts.NoRecordFrames {
		ic.fs.mu.Lock()
		ic.fs.inboundCmds = append(ic.fs.inboundCmds, line)
		ic.fs.mu.Unlock()
	}
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
		// eslapp-net-UUID, ...) is kept with that call's commands, so that
		// a test sees everything eslapp sent about it.
		if t := ic.fs.namedCall(line); t != nil {
			t.do(func() { t.recordCommand(cmd) })
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
// a socket: vars set (CallOptions.Vars), a net scheduled, the CUSTOM event
// fired, then the call waits: in Music when given, then in park.
//
// The shipped dialplan (conf/freeswitch) schedules a pick-up net and
// waits in hold music:
//
//	set eslapp_pick=${sched_api(+3 eslapp-pick-${uuid} uuid_transfer ${uuid} OnError XML crm_branches)}
//	event Event-Name=CUSTOM,Event-Subclass=eslapp::call
//	playback local_stream://eslapp_hold
//	park
//
// (Pick, PickDest, Music); an older one a sched_transfer safety net in the
// call's own group, then park (Net, NetDest).
type SocketlessOptions struct {
	CallOptions
	// Subclass of the CUSTOM event; default "eslapp::call".
	Subclass string
	// Net is the safety net's delay (sched_transfer +Net, group the
	// call's UUID), NetDest where it sends the call ("OnError XML
	// crm_branches"). No net when Net is 0.
	Net     time.Duration
	NetDest string
	// Pick is the pick-up net's delay: the dialplan's sched_api in group
	// eslapp-pick-UUID, whose reply it keeps in eslapp_pick; PickDest is
	// where it sends the call (default NetDest, else "OnError XML
	// crm_branches"). No pick-up net when Pick is 0.
	Pick     time.Duration
	PickDest string
	// Music is what the dialplan plays after the event while the call
	// waits ("local_stream://eslapp_hold"): it never ends by itself, an
	// application eslapp sends runs nested inside it, and a uuid_break
	// ends it too (the dialplan then parks the call). "" parks at once.
	Music string
}

// namedCall is the first call an api command line names: a word that is
// a call's UUID or ends in one (a scheduler group such as
// eslapp-net-UUID).
func (fs *FreeSWITCH) namedCall(line string) *Call {
	for _, w := range strings.Fields(line)[1:] {
		if len(w) > 36 {
			w = w[len(w)-36:]
		}
		if t := fs.locate(w); t != nil {
			return t
		}
	}
	return nil
}

// PickGroup is the scheduler group of a call's pick-up net.
func PickGroup(uuid string) string { return "eslapp-pick-" + uuid }

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
			fs.sched.add(o.Net, c.uuid, "uuid_transfer "+c.uuid+" "+o.NetDest)
		}
		if o.Pick > 0 {
			dest := cmp.Or(o.PickDest, o.NetDest, "OnError XML crm_branches")
			id := fs.sched.add(o.Pick, PickGroup(c.uuid), "uuid_transfer "+c.uuid+" "+dest)
			// ${sched_api(...)}: the api's output, newline and all.
			c.setVar("eslapp_pick", "+OK Added: "+strconv.FormatUint(uint64(id), 10)+"\n")
		}
		c.fireCustom(o.Subclass)
		if o.Music != "" {
			c.holdMusic(o.Music)
		}
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

// holdMusic is the dialplan's playback of a stream while the call waits:
// it runs until broken or until the call moves on.
func (c *Call) holdMusic(arg string) {
	a := &appRun{name: "playback", rawArg: arg, uuid: NewUUID(), loops: 1, played: -1, endless: true}
	c.stack = append(c.stack, a)
	c.startApp(a)
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
