package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/eslapp/eslapp/esl/esltest"
)

// callPlan is what one call does from the caller's and FreeSWITCH's side.
type callPlan struct {
	hangupAfter time.Duration // 0: the caller stays
	cutAfter    time.Duration // 0: the socket stays
	hold        <-chan struct{}
}

// callResult is one call's verdict and timings.
type callResult struct {
	uuid        string
	kind        string // a branch name, "hangup", "cut", or "LOST: ..."
	lost        string // why the call counts as lost ("" when it ended well)
	firstPrompt time.Duration
	breakAfter  time.Duration // CRM answer to uuid_break on the wire; -1 if none
	duration    time.Duration
}

// hangupGrace bounds how long after FreeSWITCH reported a hangup a command
// from eslapp may still arrive: eslapp may have sent it before the event
// reached it, and a loaded two-core machine delays both.
const hangupGrace = time.Second

// kindRefused is a call eslapp closed at connect, without a command: its
// max_connecting bound was full. FreeSWITCH's socket application returns
// and the dialplan goes on with the wfe_branch it set before (README).
const kindRefused = "refused at connect"

var branches = map[string]bool{
	"OnSuccess": true, "OnTimeout": true, "OnInvalidInput": true, "OnInvalidWorkflow": true,
	"OnAgentIntegrationDisabled": true, "OnError": true,
}

// runCall places one call and checks how it ended: on exactly one branch
// (wfe_branch set once, the outputs consistent with it, then back to the
// dialplan), or cleanly after the caller hung up or the socket dropped
// (nothing but exit sent after that).
func runCall(ctx context.Context, fs *esltest.FreeSWITCH, addr string, crm *faultCRM, plan callPlan, media time.Duration, limit time.Duration, mayRefuse bool) callResult {
	start := time.Now()
	res := callResult{breakAfter: -1}
	opts := esltest.CallOptions{
		CallerIDNumber: fmt.Sprintf("123555%04d", rand.IntN(10000)),
		Vars: map[string]string{
			"wfe_config_id":   "load",
			"wfe_workflow_id": "lookup",
			"wfe_payload":     `{"phone":"{ANI}"}`,
			"wfe_sequence":    `"hold.wav"`,
		},
		Media: func(string) (time.Duration, bool) { return media, true },
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := fs.Dial(dctx, addr, opts)
	cancel()
	if err != nil {
		res.kind, res.lost = "LOST", "dial: "+err.Error()
		return res
	}
	res.uuid = c.UUID()
	if plan.hold != nil {
		<-plan.hold
	}
	var hungUp, cut bool
	var timer <-chan time.Time
	var act func()
	switch {
	case plan.hangupAfter > 0:
		timer = time.After(plan.hangupAfter)
		act = func() { hungUp = true; c.Hangup("NORMAL_CLEARING") }
	case plan.cutAfter > 0:
		timer = time.After(plan.cutAfter)
		act = func() { cut = true; c.CutTCP() }
	}
	deadline := time.After(limit)
	for done := false; !done; {
		select {
		case <-c.Done():
			done = true
		case <-timer:
			timer = nil
			act()
		case <-deadline:
			res.kind, res.lost = "LOST", fmt.Sprintf("still up after %v; commands: %s", limit, commandLine(c))
			c.CutTCP()
			return res
		}
	}
	res.duration = time.Since(start)
	out := c.Outcome()
	cmds := c.Commands()
	if len(cmds) == 0 && out.Kind == esltest.AppClosed {
		res.kind = kindRefused
		if !mayRefuse {
			res.lost = "closed at connect without a storm to explain it"
		}
		return res
	}
	var connectAt, breakAt time.Time
	branchSets := 0
	for _, cmd := range cmds {
		switch {
		case cmd.Name == "connect":
			connectAt = cmd.At
		case cmd.App == "playback" && res.firstPrompt == 0:
			res.firstPrompt = cmd.At.Sub(connectAt)
		case cmd.Name == "api" && strings.HasPrefix(cmd.Arg(), "uuid_break") && breakAt.IsZero():
			breakAt = cmd.At
		}
		if (cmd.App == "multiset" || cmd.App == "set") && strings.Contains(cmd.AppArg, "wfe_branch=") {
			branchSets++
		}
	}
	if answered, ok := crm.answeredAt(res.uuid); ok && !breakAt.IsZero() && breakAt.After(answered) {
		res.breakAfter = breakAt.Sub(answered)
	}
	if hungUp && out.HungUpAt.IsZero() {
		hungUp = false // the call had ended before the caller's hangup came
	}
	switch {
	case hungUp || cut:
		res.kind = map[bool]string{true: "hangup", false: "cut"}[hungUp]
		// After the caller hung up, eslapp may send exit, nothing else —
		// once it has heard of the hangup: commands already on their way
		// when FreeSWITCH reported it are allowed for hangupGrace.
		if hungUp {
			for _, cmd := range cmds {
				if cmd.At.After(out.HungUpAt.Add(hangupGrace)) && cmd.Name != "exit" {
					res.lost = fmt.Sprintf("sent %s %s %v after the hangup (hangup %v after connect)", cmd.Name, cmd.App,
						cmd.At.Sub(out.HungUpAt).Round(time.Millisecond), out.HungUpAt.Sub(cmds[0].At).Round(time.Millisecond))
				}
			}
		}
	default:
		branch, _ := c.Var("wfe_branch")
		res.kind = branch
		errVar, hasErr := c.Var("workflowErrorOutput")
		switch {
		case !branches[branch]:
			res.lost = fmt.Sprintf("no branch (wfe_branch=%q, outcome %v)", branch, out.Kind)
		case branchSets != 1:
			res.lost = fmt.Sprintf("wfe_branch set %d times", branchSets)
		case out.Kind != esltest.Resumed:
			res.lost = fmt.Sprintf("ended %v, not handed back to the dialplan", out.Kind)
		case branch == "OnSuccess" && hasErr:
			res.lost = "OnSuccess with an error variable " + errVar
		case branch != "OnSuccess" && !strings.Contains(errVar, `"branch":"`+branch+`"`):
			res.lost = fmt.Sprintf("%s with error variable %q", branch, errVar)
		}
	}
	if res.lost != "" {
		res.lost += "; commands: " + commandLine(c)
	}
	return res
}

func commandLine(c *esltest.Call) string {
	var names []string
	for _, cmd := range c.Commands() {
		n := cmd.Name
		if cmd.App != "" {
			n += " " + cmd.App
		}
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}
