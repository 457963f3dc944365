//go:build integration

package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// End-to-end: SIPp calls a real FreeSWITCH configured from conf/freeswitch;
// its dialplan hands each call to eslapp (built from this checkout, running
// on a test configuration) whose CRM is a test server with a planned delay
// and status per caller; each call's outcome is read back from FreeSWITCH
// itself over the inbound Event Socket (CHANNEL_HANGUP_COMPLETE with the
// channel variables, PLAYBACK_START/STOP, DTMF, and eslapp's CUSTOM
// event). Assertions are about outcomes and order, never about how long
// something took: durations are only logged.

type harness struct {
	top     *testing.T // TestEndToEnd: an eslapp restarted by a subtest outlives it
	env     e2eEnv
	sipp    string
	localIP string
	dir     string
	calls   *callLog
	crm     *testCRM
	eslapp  *Eslapp
	mode    handoff
	during  func(ani string) // when set, runs while the next call is up
}

// handoff is how the dialplan hands calls to eslapp: the held socket
// (7000, 7001, 7080) or the socket-less mode, whose extensions run the
// same plans (7010, 7011, 7081). Every subtest runs in both.
type handoff struct {
	name string
	ext  map[string]string // the held-socket extension → this mode's
}

var handoffs = []handoff{
	{name: "HeldSocket"},
	{name: "Socketless", ext: map[string]string{"7000": "7010", "7001": "7011", "7080": "7081"}},
}

func (m handoff) extension(ext string) string {
	if e, ok := m.ext[ext]; ok {
		return e
	}
	return ext
}

func TestEndToEnd(t *testing.T) {
	env := e2eEnvironment(t)
	sipp, why := sippPath()
	if sipp == "" {
		t.Fatal(why)
	}
	h := &harness{top: t, env: env, sipp: sipp, dir: env.out, calls: newCallLog()}
	var err error
	if h.localIP, err = LocalIPFor(env.sip); err != nil {
		t.Fatalf("ESLAPP_FS_SIP %s: %v", env.sip, err)
	}

	// FreeSWITCH: reachable, with the modules the prompts need, playing
	// eslapp's sounds from the same directory eslapp uses.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	esl, err := DialInbound(ctx, env.esl, env.password)
	cancel()
	if err != nil {
		t.Fatalf("inbound Event Socket %s (ESLAPP_FS_ESL, ESLAPP_FS_ESL_PASSWORD): %v", env.esl, err)
	}
	t.Cleanup(func() { esl.Close() })
	for _, mod := range []string{"mod_ssml", "mod_flite", "mod_say_en", "mod_sndfile", "mod_tone_stream", "mod_dptools", "mod_commands"} {
		if out, err := esl.API("module_exists " + mod); err != nil || out != "true" {
			t.Fatalf("FreeSWITCH has not loaded %s (%q, %v): load it in modules.conf.xml (conf/freeswitch has it)", mod, out, err)
		}
	}
	if out, err := esl.API("global_getvar eslapp_sounds"); err != nil || out != env.sounds {
		t.Fatalf("FreeSWITCH's eslapp_sounds is %q (%v) but eslapp's sounds dir is %q: set ESLAPP_SOUNDS_DIR to the path both see", out, err, env.sounds)
	}
	if _, err := esl.Command("event plain CHANNEL_HANGUP_COMPLETE PLAYBACK_START PLAYBACK_STOP DTMF CUSTOM eslapp::workflow_result eslapp::workflow_late_result"); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			ev, err := esl.Next()
			if err != nil {
				h.calls.fail(err)
				return
			}
			h.calls.add(ev)
		}
	}()

	h.crm = newTestCRM(t.Logf)
	t.Cleanup(h.crm.srv.Close)
	h.eslapp = startEslapp(t, env, h.crm.srv.URL, h.dir)

	for _, m := range handoffs {
		t.Run(m.name, func(t *testing.T) {
			h.mode = m
			t.Run("DialplanSuccess", h.dialplanSuccess)
			t.Run("DialplanCRMError", h.dialplanCRMError)
			t.Run("DialplanTimeout", h.dialplanTimeout)
			t.Run("CallerHangsUpDuringPrompt", h.callerHangsUp)
			t.Run("KeyDuringPrompt", h.keyDuringPrompt)
			t.Run("FlowModeAgentEvent", h.flowMode)
			t.Run("AniFromCallerProfile", h.aniFromCallerProfile)
			t.Run("HostileResultVerbatim", h.hostileResult)
			t.Run("ShutdownHandsCallsBack", h.shutdownHandsBack)
			if m.ext == nil {
				t.Run("MappingsInTheDialplan", h.mappingsInTheDialplan)
				t.Run("LateResult", h.lateResult)
			}
			if m.ext != nil {
				t.Run("NetRoutesWhenEslappDies", h.netWhenEslappDies)
				t.Run("NetRoutesWhenNoEslapp", h.netWhenNoEslapp)
			}
		})
	}

	if lines, err := h.eslapp.MetricLines("eslapp_steps_total"); err == nil {
		t.Logf("eslapp's metrics after the run:\n%s", strings.Join(lines, "\n"))
	}
	select {
	case <-h.eslapp.Done():
		t.Errorf("eslapp exited during the run: %v", h.eslapp.Err())
	default:
	}
}

// callResult is one call as FreeSWITCH and the test CRM saw it.
type callResult struct {
	ani    string
	hangup Event   // CHANNEL_HANGUP_COMPLETE
	events []Event // every event of the call, in order
	crm    *crmRequest
}

func (c callResult) v(name string) string { return c.hangup.Get("variable_" + name) }

// place calls ext with a scenario of itest/sipp, the CRM answering the
// call as planned, and returns what happened once FreeSWITCH has hung up.
func (h *harness) place(t *testing.T, ext, scenario string, plan crmPlan, sippArgs ...string) callResult {
	t.Helper()
	return h.placeAs(t, ext, scenario, "", plan, sippArgs...)
}

// placeAs is place for a call whose {ANI} the dialplan sets to phone
// (the caller ID number stays SIPp's): the CRM answers phone as planned.
func (h *harness) placeAs(t *testing.T, ext, scenario, phone string, plan crmPlan, sippArgs ...string) callResult {
	t.Helper()
	ani := fmt.Sprintf("55%08d", rand.IntN(100_000_000))
	if phone == "" {
		phone = ani
	}
	h.crm.plan(phone, plan)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ext = h.mode.extension(ext)
	args := append([]string{"-s", ext, "-key", "ani", ani, "-m", "1", "-l", "1"}, sippArgs...)
	wait := sippRun{scenario: scenario, remote: h.env.sip, localIP: h.localIP, args: args, timeout: 90 * time.Second}.
		start(ctx, t, h.sipp, h.dir)
	if h.during != nil {
		h.during(phone)
		h.during = nil
	}
	res := wait()
	if res.Err != nil {
		t.Errorf("caller %s: %v", ani, res)
	}
	c := callResult{ani: ani}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	var err error
	if c.hangup, c.events, err = h.calls.hangup(wctx, ani); err != nil {
		t.Fatalf("caller %s: %v", ani, err)
	}
	if plan.none {
		if c.crm = h.crm.seen(phone); c.crm != nil {
			t.Errorf("caller %s: the CRM got a request, but no eslapp was there to send it", ani)
		}
	} else if c.crm, err = h.crm.request(wctx, phone); err != nil {
		t.Errorf("caller %s: %v", ani, err)
	}
	t.Logf("caller %s: call %s, wfe_branch=%s, hangup %s (%s), wfe_elapsed_ms=%s",
		ani, c.hangup.Get("Unique-ID"), c.v("wfe_branch"), c.hangup.Get("Hangup-Cause"),
		c.v("sip_hangup_disposition"), c.v("wfe_elapsed_ms"))
	return c
}

func want(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// atLeast checks a lower bound that cannot fail on a slow machine (an
// outcome that needs the CRM's answer comes after it).
func atLeast(t *testing.T, what, got string, min time.Duration) {
	t.Helper()
	ms, err := strconv.ParseInt(got, 10, 64)
	if err != nil || time.Duration(ms)*time.Millisecond < min {
		t.Errorf("%s = %q, want at least %v", what, got, min)
	}
}

// playbacks returns the call's events of one kind whose file path holds
// part (any when "").
func (c callResult) playbacks(name, part string) []Event {
	var out []Event
	for _, ev := range c.events {
		if ev.Name() == name && strings.Contains(ev.Get("Playback-File-Path"), part) {
			out = append(out, ev)
		}
	}
	return out
}

// promptStop is the PLAYBACK_STOP of eslapp's first prompt: the call's
// first playback (the dialplan plays nothing before the socket).
func (c callResult) promptStop(t *testing.T) Event {
	t.Helper()
	stops := c.playbacks("PLAYBACK_STOP", "")
	if len(stops) == 0 {
		t.Fatalf("caller %s: FreeSWITCH played nothing (is mod_ssml loaded, are eslapp's sounds at the path FreeSWITCH sees?)", c.ani)
	}
	return stops[0]
}

func (h *harness) dialplanSuccess(t *testing.T) {
	body := `{"contact":{"id":"C-7","name":"Ada Lovelace"}}`
	c := h.place(t, "7000", "uac_wait_bye.xml", crmPlan{delay: 300 * time.Millisecond, status: 200, body: body})
	want(t, "wfe_branch", c.v("wfe_branch"), "OnSuccess")
	want(t, "workflowResultOutput", c.v("workflowResultOutput"), body)
	want(t, "workflowErrorOutput", c.v("workflowErrorOutput"), "")
	want(t, "harness_agent (crm_branches OnSuccess transferred to 1000)", c.v("harness_agent"), "1000")
	atLeast(t, "wfe_elapsed_ms", c.v("wfe_elapsed_ms"), 300*time.Millisecond)
	if c.crm != nil {
		want(t, "X-Request-Id of the CRM request", c.crm.requestID, c.hangup.Get("Unique-ID"))
	}
	// The prompt (TTS and hold.wav, seconds long) was stopped when the CRM
	// answered after 300 ms: broken, not played out.
	stop := c.promptStop(t)
	want(t, "Playback-Status of the prompt", stop.Get("Playback-Status"), "break")
	if !strings.Contains(stop.Get("Playback-File-Path"), "hold.wav") {
		t.Errorf("the first prompt was %q, not the sequence of extension 7000", stop.Get("Playback-File-Path"))
	}
	if c.crm != nil && !c.crm.answered.IsZero() && !stop.Time().IsZero() {
		t.Logf("prompt stopped %v after the CRM answered (FreeSWITCH's clock against the test's; meaningful on one host)",
			stop.Time().Sub(c.crm.answered).Round(100*time.Microsecond))
	}
}

func (h *harness) dialplanCRMError(t *testing.T) {
	c := h.place(t, "7000", "uac_wait_bye.xml", crmPlan{delay: 200 * time.Millisecond, status: 500, body: `{"error":"boom"}`})
	want(t, "wfe_branch", c.v("wfe_branch"), "OnError")
	var e struct {
		Branch string `json:"branch"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal([]byte(c.v("workflowErrorOutput")), &e); err != nil || e.Status != 500 || e.Branch != "OnError" {
		t.Errorf("workflowErrorOutput = %q (%v), want branch OnError and status 500", c.v("workflowErrorOutput"), err)
	}
	// crm_branches "failed": the apology, then a hangup; no agent.
	want(t, "harness_agent", c.v("harness_agent"), "")
	if len(c.playbacks("PLAYBACK_START", "apology.wav")) == 0 {
		t.Error("crm_branches did not play apology.wav")
	}
}

func (h *harness) dialplanTimeout(t *testing.T) {
	c := h.place(t, "7000", "uac_wait_bye.xml", crmPlan{delay: 30 * time.Second, status: 200, body: `{}`})
	want(t, "wfe_branch", c.v("wfe_branch"), "OnTimeout")
	want(t, "harness_agent", c.v("harness_agent"), "1000")
	atLeast(t, "wfe_elapsed_ms", c.v("wfe_elapsed_ms"), 5*time.Second) // timeout_ms of the test config
	if c.crm != nil && !c.crm.cancelled {
		t.Error("eslapp did not cancel the CRM request at the timeout")
	}
}

func (h *harness) callerHangsUp(t *testing.T) {
	c := h.place(t, "7000", "uac_hangup.xml", crmPlan{delay: 30 * time.Second, status: 200, body: `{}`}, "-d", "1500")
	want(t, "sip_hangup_disposition", c.v("sip_hangup_disposition"), "recv_bye")
	// eslapp sent nothing after the hangup: wfe_branch is still the
	// dialplan's fallback, and no branch ran.
	want(t, "wfe_branch", c.v("wfe_branch"), "OnError")
	want(t, "harness_agent", c.v("harness_agent"), "")
	if len(c.playbacks("PLAYBACK_START", "apology.wav")) != 0 {
		t.Error("a branch ran after the caller hung up")
	}
	if c.crm != nil && !c.crm.cancelled {
		t.Error("eslapp did not cancel the CRM request when the caller hung up")
	}
}

func (h *harness) keyDuringPrompt(t *testing.T) {
	if _, err := os.Stat(dtmfPcap); err != nil {
		t.Skipf("%s is missing (uac_dtmf.xml replays it): %v", dtmfPcap, err)
	}
	c := h.place(t, "7000", "uac_dtmf.xml", crmPlan{delay: 3 * time.Second, status: 200, body: `{"found":true}`}, "-d", "1000")
	want(t, "wfe_branch", c.v("wfe_branch"), "OnSuccess")
	var key *Event
	for i, ev := range c.events {
		if ev.Name() == "DTMF" {
			key = &c.events[i]
			break
		}
	}
	if key == nil {
		t.Fatal("FreeSWITCH saw no key: the RFC 2833 packets did not reach it (RTP between SIPp and FreeSWITCH?)")
	}
	want(t, "DTMF-Digit", key.Get("DTMF-Digit"), "1")
	// playback_terminators=none: the prompt went on after the key until
	// eslapp stopped it for the outcome, so hold music never had to fill a
	// gap before the CRM answered.
	stop := c.promptStop(t)
	if stop.Sequence() < key.Sequence() {
		t.Errorf("the prompt ended (%s) before the key was pressed", stop.Get("Playback-Status"))
	}
	if n := len(c.playbacks("PLAYBACK_START", "holdmusic.wav")); n != 0 {
		t.Errorf("hold music played %d time(s): the key cut the prompt short", n)
	}
}

func (h *harness) flowMode(t *testing.T) {
	body := `{"contact":{"id":"C-9"}}`
	c := h.place(t, "7001", "uac_wait_bye.xml", crmPlan{delay: 300 * time.Millisecond, status: 200, body: body})
	want(t, "wfe_branch", c.v("wfe_branch"), "OnSuccess")
	want(t, "lookup (the step's result_var)", c.v("lookup"), body)
	want(t, "harness_agent (the flow transferred to 1000)", c.v("harness_agent"), "1000")
	var agent *Event
	for i, ev := range c.events {
		if ev.Name() == "CUSTOM eslapp::workflow_result" {
			agent = &c.events[i]
		}
	}
	if agent == nil {
		t.Fatal("no CUSTOM eslapp::workflow_result event for the call on the inbound Event Socket")
	}
	want(t, "Call-UUID", agent.Get("Call-UUID"), c.hangup.Get("Unique-ID"))
	want(t, "Workflow-Branch", agent.Get("Workflow-Branch"), "OnSuccess")
	want(t, "Workflow-Config-Id", agent.Get("Workflow-Config-Id"), "demo-crm")
	want(t, "Workflow-Id", agent.Get("Workflow-Id"), "search-by-phone")
	var got, exp any
	if err := json.Unmarshal([]byte(agent.Body), &got); err != nil || json.Unmarshal([]byte(body), &exp) != nil || !reflect.DeepEqual(got, exp) {
		t.Errorf("agent event body %q, want %s", agent.Body, body)
	}
	if agent.Sequence() > c.hangup.Sequence() {
		t.Error("the agent event came after the hangup")
	}
}

// aniFromCallerProfile: {ANI} is the caller profile's ANI (Caller-ANI),
// which trunks may send apart from the caller ID number; 7080 sets it with
// set_profile_var before handing the call to 7000.
func (h *harness) aniFromCallerProfile(t *testing.T) {
	const profileANI = "+15551234567"
	body := `{"contact":{"id":"C-ANI"}}`
	c := h.placeAs(t, "7080", "uac_wait_bye.xml", profileANI, crmPlan{delay: 200 * time.Millisecond, status: 200, body: body})
	want(t, "Caller-ANI", c.hangup.Get("Caller-ANI"), profileANI)
	if c.hangup.Get("Caller-Caller-ID-Number") == profileANI {
		t.Fatal("the caller ID number equals the ANI: the test proves nothing")
	}
	// The test CRM answers only the planned phone: OnSuccess with this body
	// means eslapp sent the profile's ANI, not the caller ID number.
	want(t, "wfe_branch", c.v("wfe_branch"), "OnSuccess")
	want(t, "workflowResultOutput", c.v("workflowResultOutput"), body)
}

// netWhenEslappDies: eslapp is killed while a socket-less call waits for
// the CRM. FreeSWITCH goes on playing the prompt to the call until the net
// eslapp armed with its claim (the step's bound, 5 s of timeout and 1 s of
// leaving, plus 2 s) transfers it to OnError, where the apology plays and
// the call ends: never held forever. eslapp is started again for the
// subtests after this one.
func (h *harness) netWhenEslappDies(t *testing.T) {
	h.during = func(phone string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := h.crm.started(ctx, phone); err != nil {
			t.Error(err)
		}
		h.eslapp.Kill()
	}
	c := h.place(t, "7019", "uac_wait_bye.xml", crmPlan{delay: 30 * time.Second, status: 200, body: `{}`})
	h.restartEslapp(t)
	want(t, "wfe_branch (the dialplan's, eslapp set none)", c.v("wfe_branch"), "OnError")
	want(t, "harness_agent", c.v("harness_agent"), "")
	if len(c.playbacks("PLAYBACK_START", "apology.wav")) == 0 {
		t.Error("the net did not route the call to OnError (no apology.wav)")
	}
	if len(c.playbacks("PLAYBACK_START", "hold.wav")) == 0 {
		t.Error("eslapp never started the prompt: the call was not taken before eslapp died")
	}
}

// netWhenNoEslapp: no eslapp is connected when the call announces itself;
// eslapp starts while the call waits in the dialplan's hold music (a
// restart) and does not take it, since it never heard its event. The
// pick-up net (+3) routes it to OnError, 2 to 3.5 s after the event.
func (h *harness) netWhenNoEslapp(t *testing.T) {
	h.eslapp.Stop()
	h.during = func(string) {
		time.Sleep(time.Second)
		h.restartEslapp(t)
	}
	c := h.place(t, "7019", "uac_wait_bye.xml", crmPlan{none: true})
	want(t, "wfe_branch (the dialplan's)", c.v("wfe_branch"), "OnError")
	want(t, "harness_agent", c.v("harness_agent"), "")
	if len(c.playbacks("PLAYBACK_START", "apology.wav")) == 0 {
		t.Error("the net did not route the call to OnError (no apology.wav)")
	}
	if n := len(c.playbacks("PLAYBACK_START", "hold.wav")); n != 0 {
		t.Errorf("the prompt played %d time(s) with no eslapp connected", n)
	}
}

// restartEslapp starts eslapp again on the same configuration; it lives
// until TestEndToEnd ends.
func (h *harness) restartEslapp(t *testing.T) {
	h.eslapp.Stop() // returns at once when it has exited
	p, err := launchEslapp(eslappBinary(t), h.env, h.crm.srv.URL, h.dir)
	if err != nil {
		t.Fatalf("restarting eslapp: %v", err)
	}
	h.eslapp = p
	stopAtEnd(h.top, p)
}

// hostileResult: a CRM answer written to break out of every quoting layer
// on the way (FreeSWITCH's ${...} expansion, multiset's separators, set's
// quotes and backslashes, the socket-less mode's sendmsg body) reaches the
// channel verbatim and runs nothing. The value is read with uuid_getvar
// while the call is up: the hangup event cannot show it, since FreeSWITCH
// leaves a valid %XX unencoded when it serialises an event header, so
// "%25" would read back as "%".
func (h *harness) hostileResult(t *testing.T) {
	pwned := filepath.Join(t.TempDir(), "pwned")
	body := fmt.Sprintf(`{"name":"${system(touch %s)}","note":"a;b\\c 'q' \"d\" |x| ^^;y=1 $${api(version)} %%25"}`, pwned)
	if !json.Valid([]byte(body)) {
		t.Fatalf("the test's body is not JSON: %s", body)
	}
	var onChannel string
	h.during = func(phone string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, err := h.crm.request(ctx, phone)
		if err != nil {
			t.Error(err)
			return
		}
		esl, err := DialInbound(ctx, h.env.esl, h.env.password)
		if err != nil {
			t.Error(err)
			return
		}
		defer esl.Close()
		for onChannel == "" || strings.HasPrefix(onChannel, "-ERR") || onChannel == "_undef_" {
			if onChannel, err = esl.API("uuid_getvar " + req.requestID + " workflowResultOutput"); err != nil {
				t.Error(err)
				return
			}
			select {
			case <-ctx.Done():
				t.Errorf("uuid_getvar: %q", onChannel)
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	c := h.place(t, "7000", "uac_wait_bye.xml", crmPlan{delay: 200 * time.Millisecond, status: 200, body: body})
	want(t, "wfe_branch", c.v("wfe_branch"), "OnSuccess")
	want(t, "workflowResultOutput (uuid_getvar)", onChannel, body)
	if _, err := os.Stat(pwned); err == nil {
		t.Error("FreeSWITCH ran the system command of the CRM's answer")
	}
}

// shutdownHandsBack: eslapp is told to stop (SIGINT) while a call waits
// for the CRM; its drain (5 s in the test configuration) ends with the call
// still in the step, and the call is handed back like a refused one: the
// prompt broken, wfe_branch OnError with "eslapp is shutting down", and
// the dialplan's branch (crm_branches' apology) runs. eslapp is started
// again for the subtests after this one.
func (h *harness) shutdownHandsBack(t *testing.T) {
	h.during = func(phone string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := h.crm.started(ctx, phone); err != nil {
			t.Error(err)
		}
		go h.eslapp.Stop()
	}
	c := h.place(t, "7000", "uac_wait_bye.xml", crmPlan{delay: 30 * time.Second, status: 200, body: `{}`})
	h.restartEslapp(t)
	want(t, "wfe_branch", c.v("wfe_branch"), "OnError")
	want(t, "workflowErrorOutput", c.v("workflowErrorOutput"), `{"branch":"OnError","message":"eslapp is shutting down"}`)
	want(t, "harness_agent", c.v("harness_agent"), "")
	if len(c.playbacks("PLAYBACK_START", "apology.wav")) == 0 {
		t.Error("crm_branches did not play apology.wav: the call was not handed back")
	}
	if c.crm != nil && !c.crm.cancelled {
		t.Error("eslapp did not cancel the CRM request")
	}
}

// mappingsInTheDialplan: a CRM answer whose name field is a shell command
// reaches the dialplan through a text mapping, referenced once in a log
// line, a condition field and bridge data, and runs nothing; the typed
// agent extension goes through two set hops into a transfer and reaches
// the agent; the same field under a digits type is not stored.
func (h *harness) mappingsInTheDialplan(t *testing.T) {
	pwned := filepath.Join(t.TempDir(), "pwned")
	name := "${system(touch " + pwned + ")}"
	body := fmt.Sprintf(`{"name":%q,"agent":"1000"}`, name)
	c := h.place(t, "7021", "uac_wait_bye.xml", crmPlan{delay: 200 * time.Millisecond, status: 200, body: body})
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("FreeSWITCH ran the command in the mapped CRM field")
	}
	want(t, "wfe_branch", c.v("wfe_branch"), "OnSuccess")
	want(t, "pwn_name (stored reference-safe)", c.v("pwn_name"), `\${system(touch `+pwned+`)}`)
	want(t, "harness_condition_saw (the condition on ${pwn_name} matched)", c.v("harness_condition_saw"), "yes")
	want(t, "harness_agent_again (the digits value after two set hops)", c.v("harness_agent_again"), "1000")
	want(t, "harness_agent (transferred to ${harness_agent_again})", c.v("harness_agent"), "1000")
	want(t, "crm_bad (a digits mapping of the name)", c.v("crm_bad"), "")
	if h.env.fs != nil {
		logged := "harness mapped name [" + name + "]"
		b, _ := os.ReadFile(h.env.fs.ConsoleLog)
		if !strings.Contains(string(b), logged) {
			t.Errorf("FreeSWITCH's log has no line %q: one ${pwn_name} should give the CRM's text", logged)
		}
	}
}

// lateResult: the flow gives the CRM 500 ms and goes on (OnTimeout); the
// CRM answers at 1.5 s, its request kept open for the window, and the
// answer reaches the agent: the CUSTOM eslapp::workflow_late_result event
// with the body, and late_answer on the call, verbatim through
// uuid_setvar (quotes, a backslash, spaces, ${...}).
func (h *harness) lateResult(t *testing.T) {
	body := `{"note":"b c 'q' \"d\" \\ ${x}","id":7}`
	c := h.place(t, "7022", "uac_wait_bye.xml", crmPlan{delay: 1500 * time.Millisecond, status: 200, body: body})
	want(t, "wfe_branch", c.v("wfe_branch"), "OnTimeout")
	want(t, "late_answer", c.v("late_answer"), body)
	if c.crm != nil && c.crm.cancelled {
		t.Error("eslapp cancelled the request at the step timeout")
	}
	var late *Event
	for i, ev := range c.events {
		if ev.Name() == "CUSTOM eslapp::workflow_late_result" {
			late = &c.events[i]
		}
	}
	if late == nil {
		t.Fatal("no CUSTOM eslapp::workflow_late_result event for the call")
	}
	want(t, "Call-UUID", late.Get("Call-UUID"), c.hangup.Get("Unique-ID"))
	want(t, "Workflow-Branch", late.Get("Workflow-Branch"), "OnSuccess")
	want(t, "late event body", late.Body, body)
}
