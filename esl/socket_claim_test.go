package esl_test

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/esl/esltest"
)

// heldWithPickNet dials a held-socket call whose dialplan armed the
// pick-up net before "socket", as conf/freeswitch's 7000 does:
//
//	set eslapp_pick=${sched_api(+3 eslapp-pick-${uuid} uuid_transfer ${uuid} OnError XML crm_branches)}
//	socket ADDR async full
//
// fire runs the net before eslapp sees the call (an eslapp that stood
// still past it).
func heldWithPickNet(t *testing.T, addr string, o esltest.CallOptions, fire bool) *esltest.Call {
	t.Helper()
	fs := newFS(t)
	if o.UUID == "" {
		o.UUID = esltest.NewUUID()
	}
	group := esl.PickGroup(o.UUID)
	id := fs.Schedule(time.Hour, group, "uuid_transfer "+o.UUID+" OnError XML crm_branches")
	o.Vars = map[string]string{esl.PickVar: "+OK Added: " + strconv.FormatUint(uint64(id), 10)}
	if fire {
		if n := fs.RunScheduled(group); n != 1 {
			t.Fatalf("ran %d tasks of %s, want 1", n, group)
		}
	}
	return dial(t, fs, addr, o)
}

// keepNoVars is a handler's filter that keeps no channel variable: the
// pick-up net's reply is esl's own, and stays.
func keepNoVars(func(string) (string, bool)) func(string) bool {
	return func(string) bool { return false }
}

// A held-socket call with a pick-up net: eslapp's first command after
// connect deletes the net, then the call runs as ever; the net is gone, so
// it never moves the call.
func TestHeldSocketClaimsThePickNet(t *testing.T) {
	var ran atomic.Bool
	_, addr := startServer(t, esl.RunnerConfig{Handler: func(context.Context, *esl.Call) { ran.Store(true) }, VarFilter: keepNoVars}, esl.ServerConfig{})
	c := heldWithPickNet(t, addr, esltest.CallOptions{}, false)
	out := waitCall(t, c)
	if !ran.Load() {
		t.Fatalf("handler did not run; commands %v", commandNames(c))
	}
	names := commandNames(c)
	if len(names) < 3 || names[0] != "connect" || names[1] != "api sched_del" || names[2] != "myevents" {
		t.Fatalf("commands %v, want connect, api sched_del, myevents first", names)
	}
	if arg := c.Commands()[1].Arg(); arg != "sched_del "+esl.PickGroup(c.UUID()) {
		t.Errorf("claim %q, want sched_del of the call's pick-up group", arg)
	}
	if n := newFS(t).ScheduledTasks(esl.PickGroup(c.UUID())); n != 0 || out.NetFired {
		t.Errorf("pick-up net: %d tasks left, fired %v; want deleted", n, out.NetFired)
	}
}

// An eslapp that takes a held-socket call up after its pick-up net fired
// (it stood still: the kernel accepted the connection for it) finds the
// net gone, and sends the call nothing but exit: FreeSWITCH routes it to
// OnError, and it must not hear eslapp's prompt or have the CRM asked.
func TestHeldSocketLeavesACallItsNetMoved(t *testing.T) {
	var ran atomic.Bool
	r, addr := startServer(t, esl.RunnerConfig{Handler: func(context.Context, *esl.Call) { ran.Store(true) }, VarFilter: keepNoVars}, esl.ServerConfig{})
	c := heldWithPickNet(t, addr, esltest.CallOptions{}, true)
	out := waitCall(t, c)
	if ran.Load() {
		t.Fatal("the handler ran a call whose pick-up net had fired")
	}
	if got := strings.Join(commandNames(c), ","); got != "connect,api sched_del,exit" {
		t.Fatalf("commands %s, want connect, api sched_del, exit", got)
	}
	if out.Kind != esltest.Exited || out.ResumeReceived {
		t.Errorf("outcome %v (resume %v), want Exited without resume", out.Kind, out.ResumeReceived)
	}
	waitFor(t, func() bool { return r.Stats().Active == 0 })
}

// A socket without "full" cannot send api: eslapp cannot delete the net,
// says so, and serves the call as before (the net will move it).
func TestHeldSocketNotFullWithPickNet(t *testing.T) {
	var ran atomic.Bool
	_, addr := startServer(t, esl.RunnerConfig{Handler: func(context.Context, *esl.Call) { ran.Store(true) }, VarFilter: keepNoVars}, esl.ServerConfig{})
	c := heldWithPickNet(t, addr, esltest.CallOptions{NotFull: true}, false)
	waitCall(t, c)
	if !ran.Load() {
		t.Fatalf("handler did not run; commands %v", commandNames(c))
	}
	for _, name := range commandNames(c) {
		if name == "api sched_del" {
			t.Fatalf("api sent on a socket without full: %v", commandNames(c))
		}
	}
	newFS(t).RunScheduled(esl.PickGroup(c.UUID())) // the net's task, not to outlive the test
}
