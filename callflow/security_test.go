package callflow_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/eslapp/eslapp/callflow"
	"github.com/eslapp/eslapp/crm"
	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/esl/esltest"
	"github.com/eslapp/eslapp/internal/testlog"
	"github.com/eslapp/eslapp/prompts"
)

// Security: no outside value is ever evaluated by FreeSWITCH. These tests
// run whole calls through the engine and the double (esltest), which
// expands ${...} like FreeSWITCH 1.10.12 and records every ${api(...)} it
// would have run. Each hostile value enters as FreeSWITCH and the CRM would
// bring it — a CRM response field, the caller-ID name, a SIP-derived
// channel variable, a dialplan input — and goes through every sink: the
// result var, the error var, mapped vars, set vars, TTS text (alone and as a
// file_string element), say arguments, the transfer destination, and a
// CUSTOM event's headers and body. Everywhere it must be stored, spoken or
// sent verbatim (speech normalised), or refused with the call still ending
// on a defined branch — and FreeSWITCH must run no API.

// secHostile is the list, plus the shapes that stress each parser.
var secHostile = []string{
	"${system(touch pwned)}", "$${hostname}", `\${x}`, `\\`, `\'`, `\`, `'`, `"`, `''`, `""`,
	`say "hi" 'there'`, "O'Brien", "!", "a!b!tts://flite|kal|injected", "|", "a|b|c", "{}", "{x}", "}{",
	"^^", "^^|a|b", "^^!a!b", "line1\nline2", "\r\n\r\nsendmsg\r\ncall-command: hangup\r\n\r\n", "tab\there",
	"a\x00b", "\x00", "\xff\xfe invalid \xc3", "Zoë ☎ \u2028 \u00a0", strings.Repeat("x", 64<<10),
	strings.Repeat(`${system(x)}!|'\^^{}`, 64<<10/20), `$${hostname}\!"x"`, "${system touch pwned}",
	"${${x}}", `\\\${x}`, `$\{x}`, `\n\s\t\'`, "ARRAY::a|:b", "%00%0a", "ends with space ", " starts",
	"1000 XML default", "park inline", "-", "12.50", "plain", "{voice=rms}Hi",
}

// secOptions: every file plays 10 ms, the hold music for ever (it is broken),
// TTS and say take 5 ms: whole calls in tens of milliseconds.
func secOptions(callerName string, vars map[string]string) esltest.CallOptions {
	return esltest.CallOptions{
		UUID:           esltest.NewUUID(),
		Vars:           vars,
		CallerIDName:   callerName,
		CallerIDNumber: "1235550100",
		Media: func(path string) (time.Duration, bool) {
			if strings.HasSuffix(path, "holdmusic.wav") {
				return time.Hour, true
			}
			return 10 * time.Millisecond, true
		},
		SayDuration:   func(string) time.Duration { return 5 * time.Millisecond },
		SpeakDuration: func(string) time.Duration { return 5 * time.Millisecond },
	}
}

// secEngine is newEngine built from Go values rather than TOML, so that a
// CRM body can hold any bytes (TOML cannot carry invalid UTF-8). The
// integration "hostile" answers every workflow request at once with body.
func secEngine(t testing.TB, body string, flowsTOML string, policy string) *callflow.Engine {
	t.Helper()
	log := testLog(t)
	renderer, err := prompts.NewRenderer(prompts.RenderConfig{SoundsDir: soundsDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	wf := crm.WorkflowConfig{Rules: []crm.FixtureRule{{Body: body}}}
	svc, err := crm.New(crm.Config{Integrations: map[string]crm.IntegrationConfig{
		"hostile": {Kind: "fixture", Workflows: map[string]crm.WorkflowConfig{"echo": wf}},
	}}, crm.Options{Logger: log})
	if err != nil {
		t.Fatalf("crm: %v", err)
	}
	t.Cleanup(svc.Close)
	var cfg struct {
		Flows map[string]callflow.FlowConfig `toml:"flows"`
	}
	md, err := toml.Decode(flowsTOML, &cfg)
	if err != nil {
		t.Fatalf("flows: %v", err)
	}
	compiled, err := callflow.CompileFlows(&md, cfg.Flows, renderer)
	if err != nil {
		t.Fatalf("flows: %v", err)
	}
	e, err := callflow.New(callflow.Config{
		Flows: compiled, Renderer: renderer, CRM: svc, Logger: log,
		PlaybackTerminators: "none", HoldMusic: "holdmusic.wav", DefaultPolicy: policy,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// secFlows is flow mode with every sink of CRM data: the step's result and
// a mapping, then TTS between two files (one file_string), say of the value
// as number, currency and digits, a custom event with the value in a
// header and in the body (as JSON and inside a string), a set, and a
// transfer whose destination is built from the value.
const secFlows = `
[flows.hostile]
start = "step"
[flows.hostile.actions.step]
type = "workflow_execute"
config_id = "hostile"
workflow_id = "echo"
result_var = "crm"
mappings = { crm_v = "result.v" }
branches = { Default = "speak" }
[flows.hostile.actions.speak]
type = "play"
sequence = '"hold.wav" "%{crm_v}" "hold.wav"'
next = "say"
[flows.hostile.actions.say]
type = "play"
sequence = '"#{crm_v}" "${crm_v}" "&{crm_v}"'
next = "event"
[flows.hostile.actions.event]
type = "custom_event"
subclass = "eslapp::hostile"
headers = { X-Value = "{crm_v}" }
body = '{"v":{crm_v.asjson()},"s":"{crm_v}"}'
next = "copy"
[flows.hostile.actions.copy]
type = "set"
vars = { copied = "{crm_v}" }
next = "xfer"
[flows.hostile.actions.xfer]
type = "transfer"
destination = "{crm_v} XML default"
`

// jsonBody is a CRM response {"v":"..."} carrying v: JSON escapes for '"',
// '\' and control characters, every other byte raw (invalid UTF-8 too, as
// a CRM may send it).
func jsonBody(v string) string {
	var b strings.Builder
	b.WriteString(`{"v":"`)
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteString(`"}`)
	return b.String()
}

// decoded is the value of "v" as eslapp reads it from the CRM's JSON
// (encoding/json's decoding: invalid UTF-8 becomes U+FFFD).
func decoded(t testing.TB, body string) string {
	var doc struct{ V string }
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("body %.60q: %v", body, err)
	}
	return doc.V
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// delivered is a channel value (caller-ID name, channel variable) as
// eslapp gets it: FreeSWITCH URL-encodes the connect data with
// switch_url_encode, which stops at a NUL (C strings) and leaves an
// existing "%XX" (uppercase hex) alone, so eslapp decodes it once more. The
// double encodes the same way.
func delivered(v string) string { return esl.URLDecode(esltest.URLEncode(v)) }

// storable: FreeSWITCH channel variables are C strings, so a value with a
// NUL cannot be stored; eslapp refuses it. (See
// TestRegressionNULInMappedValueKeepsOtherOutputs for what that costs today.)
func storable(s string) bool { return strings.IndexByte(s, 0) < 0 }

var transferWord = regexp.MustCompile(`^[A-Za-z0-9_\-.+*#@]{1,128}$`)

// checkNoAPI is the core assertion: FreeSWITCH ran nothing.
func checkNoAPI(t testing.TB, c *esltest.Call) {
	t.Helper()
	if ex := c.APIExecutions(); len(ex) > 0 {
		t.Errorf("FreeSWITCH RAN %d APIs: %.80q", len(ex), ex[:min(3, len(ex))])
	}
}

// checkVar asserts a variable is stored exactly as want or, when want
// cannot be stored (NUL), not at all.
func checkVar(t testing.TB, c *esltest.Call, name, want string) {
	t.Helper()
	got, ok := c.Var(name)
	switch {
	case !ok && !storable(want):
	case !ok:
		t.Errorf("%s not set, want %.60q", name, want)
	case got != want:
		t.Errorf("%s = %.80q, want %.80q", name, got, want)
	}
}

// ttsTexts lists the TTS texts the caller heard, leaving out the hold
// music, and the file_string elements of the playbacks they were in.
func ttsTexts(c *esltest.Call) (texts []string, elements [][]string) {
	for _, p := range c.Played() {
		if p.App != "playback" || strings.Contains(p.Arg, "holdmusic.wav") {
			continue
		}
		texts = append(texts, p.Texts...)
		elements = append(elements, p.Files)
	}
	return texts, elements
}

// expectSpoken is what a TTS segment holding text makes FreeSWITCH speak:
// nothing when the resolved segment is over prompts.MaxValueLen (the
// sequence is refused) or normalises to nothing.
func expectSpoken(text string) (string, bool) {
	if len(text) > prompts.MaxValueLen {
		return "", false
	}
	n := esl.NormalizeSpeech(text)
	return n, n != ""
}

// runDialplanHostile: dialplan mode. v is the caller-ID name and the SIP
// user agent (a channel variable); both are spoken in the prompt (two TTS
// segments: one file_string); the CRM answers {"v": v}, which goes into the
// result var and the agent event body.
func runDialplanHostile(t testing.TB, v string) {
	body := jsonBody(v)
	e := secEngine(t, body, "", callflow.PolicyComplete)
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	c := runCall(t, e, fs, callScript{opts: secOptions(v, map[string]string{
		"wfe_config_id": "hostile", "wfe_workflow_id": "echo", "wfe_agent_event": "true",
		"wfe_sequence":   `"%Hello {caller_id_name}" "%Agent {sip_user_agent}"`,
		"sip_user_agent": v,
	})})
	checkNoAPI(t, c)
	if o := c.Outcome(); o.Kind != esltest.Resumed {
		t.Errorf("outcome %v, want Resumed", o.Kind)
	}
	checkVar(t, c, "wfe_branch", "OnSuccess")
	// Sink: result var. The CRM body, compact JSON, byte for byte.
	checkVar(t, c, callflow.DefaultResultVar, body)
	if _, ok := c.Var(callflow.DefaultErrorVar); ok {
		t.Errorf("error var set on success")
	}
	// Sink: TTS text, as one file_string of two elements.
	var want []string
	// An empty name arrives as "_undef_", which eslapp reads as empty
	// (TestRegressionEmptyCallerNameIsUndef).
	name := delivered(v)
	hello, agent := "Hello "+name, "Agent "+delivered(v)
	if len(hello) <= prompts.MaxValueLen && len(agent) <= prompts.MaxValueLen {
		for _, s := range []string{hello, agent} {
			if n, ok := expectSpoken(s); ok {
				want = append(want, n)
			}
		}
	}
	texts, elements := ttsTexts(c)
	if strings.Join(texts, "\x00") != strings.Join(want, "\x00") || len(texts) != len(want) {
		t.Errorf("spoken %.120q, want %.120q", texts, want)
	}
	for _, el := range elements {
		if len(el) != len(want) {
			t.Errorf("playback elements %.120q, want %d TTS items", el, len(want))
		}
		for _, f := range el {
			if !strings.HasPrefix(f, "tts://flite|kal|") {
				t.Errorf("playback element %.80q is not eslapp's TTS item", f)
			}
		}
	}
	// Sink: CUSTOM event body (the agent event carries the result).
	var found bool
	for _, ev := range fs.FiredEvents() {
		if ev.Subclass == callflow.DefaultSubclass {
			found = true
			if string(ev.Body) != body {
				t.Errorf("agent event body %.80q, want %.80q", ev.Body, body)
			}
			if ev.QueuedTo != "" {
				t.Errorf("agent event queued to %s instead of fired", ev.QueuedTo)
			}
		}
	}
	if !found {
		t.Errorf("no agent event")
	}
}

// runErrorVarHostile: dialplan mode with v as wfe_timeout_ms, which is not
// a number: OnInvalidInput, and the error var's message quotes v.
func runErrorVarHostile(t testing.TB, v string) {
	if _, err := strconv.ParseInt(delivered(v), 10, 64); err == nil || delivered(v) == "" {
		return // a valid timeout, or none: no error to store
	}
	e := secEngine(t, jsonBody("unused"), "", "")
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	c := runCall(t, e, fs, callScript{opts: secOptions("Caller", map[string]string{
		"wfe_config_id": "hostile", "wfe_workflow_id": "echo", "wfe_timeout_ms": v,
	})})
	checkNoAPI(t, c)
	if o := c.Outcome(); o.Kind != esltest.Resumed {
		t.Errorf("outcome %v, want Resumed", o.Kind)
	}
	checkVar(t, c, "wfe_branch", "OnInvalidInput")
	msg := fmt.Sprintf("wfe_timeout_ms: %q is not a number of milliseconds", delivered(v))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	want, _ := json.Marshal(crm.StepError{Branch: crm.OnInvalidInput, Message: msg})
	checkVar(t, c, callflow.DefaultErrorVar, string(want))
}

// runFlowHostile: flow mode, the CRM answers {"v": v}.
func runFlowHostile(t testing.TB, v string) {
	body := jsonBody(v)
	want := decoded(t, body)
	e := secEngine(t, body, secFlows, "")
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	c := runCall(t, e, fs, callScript{opts: secOptions("Caller", map[string]string{"wfe_flow": "hostile"})})
	checkNoAPI(t, c)
	nul := !storable(want) // every output is lost then: see the finding

	// Sinks: result var, mapped var, set var.
	if !nul {
		checkVar(t, c, "crm", body)
	}
	// A text mapping is stored reference-safe: the dialplan's ${crm_v}
	// yields the value and runs nothing.
	checkVar(t, c, "crm_v", esl.ReferenceSafe(want))
	if storable(want) {
		if got := c.Expand("${crm_v}"); got != want {
			t.Errorf("${crm_v} in the dialplan gives %.80q, want %.80q", got, want)
		}
		checkNoAPI(t, c)
	}
	checkVar(t, c, "copied", want)

	// Sink: TTS as the middle element of a file_string.
	texts, elements := ttsTexts(c)
	spoken, ok := expectSpoken(want)
	switch {
	case len(want) > prompts.MaxValueLen:
		if len(elements) != 0 {
			t.Errorf("an over-long value played %.120q; the sequence should be refused", elements)
		}
	case len(elements) != 1:
		t.Errorf("%d playbacks %.120q, want 1", len(elements), elements)
	case !ok:
		if len(elements[0]) != 2 || len(texts) != 0 {
			t.Errorf("nothing to say, but played %.120q %.120q", elements[0], texts)
		}
	default:
		el := elements[0]
		if len(el) != 3 || !strings.HasSuffix(el[0], "/hold.wav") || !strings.HasSuffix(el[2], "/hold.wav") ||
			!strings.HasPrefix(el[1], "tts://flite|kal|") || len(texts) != 1 || texts[0] != spoken {
			t.Errorf("played %.120q speaking %.120q, want hold.wav, TTS %.80q, hold.wav", el, texts, spoken)
		}
	}

	// Sink: say argument. A value that is not a number is left out; what
	// is said is a plain number, in one say argument of four words.
	for _, p := range c.Played() {
		if p.App != "say" {
			continue
		}
		f := esltest.SeparateString(p.Arg, ' ', 5)
		if len(f) != 4 || f[0] != "en" || !regexp.MustCompile(`^-?[0-9]+(\.[0-9]{2})?$`).MatchString(f[3]) {
			t.Errorf("say %.80q", p.Arg)
		}
		// prompts trims white space around a value before reading it.
		if strings.Trim(strings.TrimSpace(want), "0123456789.,-+$ ") != "" {
			t.Errorf("said %.80q for the value %.80q, which is not a number", p.Arg, want)
		}
	}

	// Sinks: CUSTOM event header and body.
	header := strings.TrimSpace(esl.NormalizeSpeech(want))
	var fired *esltest.FiredEvent
	events := fs.FiredEvents()
	for i := range events {
		if events[i].Subclass == "eslapp::hostile" {
			fired = &events[i]
		}
	}
	if len(header) > 1024 || strings.HasPrefix(header, "ARRAY::") {
		header = "" // a header the event cannot carry is left out, alone
	}
	switch {
	case fired == nil:
		t.Errorf("custom event not fired")
	default:
		got, has := "", false
		for _, h := range fired.Headers {
			if h.Name == "X-Value" {
				got, has = h.Value, true
			}
		}
		if header == "" && has || header != "" && got != header {
			t.Errorf("X-Value header %.80q (present %v), want %.80q", got, has, header)
		}
		for _, h := range fired.Headers {
			if strings.EqualFold(h.Name, "Unique-ID") || strings.ContainsAny(h.Name+h.Value, "\r\n") {
				t.Errorf("event header %q: %.60q", h.Name, h.Value)
			}
		}
		if wantBody := `{"v":` + jsonString(want) + `,"s":` + jsonString(want) + `}`; string(fired.Body) != wantBody {
			t.Errorf("event body %.120q, want %.120q", fired.Body, wantBody)
		}
		if fired.QueuedTo != "" {
			t.Errorf("event queued to %s instead of fired", fired.QueuedTo)
		}
	}

	// Sink: transfer destination. Only a value that is one extension word
	// transfers; anything else is refused: OnError, back to the dialplan.
	dest := strings.Fields(want + " XML default")
	o := c.Outcome()
	switch {
	case len(dest) == 3 && transferWord.MatchString(dest[0]):
		if o.Kind != esltest.Transferred || o.TransferDest != strings.Join(dest, " ") {
			t.Errorf("outcome %v to %q, want Transferred to %q", o.Kind, o.TransferDest, strings.Join(dest, " "))
		}
	default:
		if o.Kind != esltest.Resumed || o.TransferDest != "" {
			t.Errorf("outcome %v to %.60q, want Resumed (destination refused)", o.Kind, o.TransferDest)
		}
		if nul {
			break
		}
		checkVar(t, c, "wfe_branch", "OnError")
		ev, _ := c.Var(callflow.DefaultErrorVar)
		var se crm.StepError
		if err := json.Unmarshal([]byte(ev), &se); err != nil || se.Branch != crm.OnError || !strings.HasPrefix(se.Message, "transfer destination ") {
			t.Errorf("error var %.120q (%v)", ev, err)
		}
		quoted := want + " XML default"
		if len(quoted) > 200 {
			quoted = quoted[:200] + "…" // messages quote at most 200 bytes
		}
		if !strings.Contains(se.Message, fmt.Sprintf("%q", quoted)) {
			t.Errorf("error message %.120q does not quote the destination verbatim", se.Message)
		}
	}
}

// TestHostileValues is the table: every hostile value through every sink.
func TestHostileValues(t *testing.T) {
	for i, v := range secHostile {
		name := fmt.Sprintf("%02d_%.24q", i, v)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			t.Run("dialplan", func(t *testing.T) { runDialplanHostile(t, v) })
			t.Run("errorvar", func(t *testing.T) { runErrorVarHostile(t, v) })
			t.Run("flow", func(t *testing.T) { runFlowHostile(t, v) })
		})
	}
}

// FuzzHostileCall runs whole calls with a fuzzed value in every sink.
//
//	go test ./callflow -run XXX -fuzz FuzzHostileCall -fuzztime 60s
func FuzzHostileCall(f *testing.F) {
	// A few seeds: TestHostileValues runs the whole list on every go test.
	for _, v := range []string{"${system(touch pwned)}", `$${hostname}\!"x"`, "a!b|c'd", `\${x}\'`,
		"line1\nline2", "\xff\x00", "{voice=rms}^^|x", "1000 XML default"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if v == "" || len(v) > 70<<10 {
			return // an empty caller-ID name is the double's default; bigger is not new
		}
		runDialplanHostile(t, v)
		runErrorVarHostile(t, v)
		runFlowHostile(t, v)
	})
}

// TestSecurityDialplanCall is the acceptance call: dialplan mode,
// the CRM answers {"name":"${system(touch pwned)}", ...}, the caller-ID
// name is $${hostname}\!"x". The result var holds both verbatim (the CRM
// echoes the caller name eslapp sent it in the payload: the fixture rule
// matches only that exact name), the caller name is spoken in a TTS
// segment, and FreeSWITCH runs nothing.
func TestSecurityDialplanCall(t *testing.T) {
	const callerName = `$${hostname}\!"x"`
	const body = `{"name":"${system(touch pwned)}","caller":"$${hostname}\\!\"x\""}`
	e := newEngine(t, `
[tenants.default]
agent_integrations = true

[integrations.demo]
kind = "fixture"
[[integrations.demo.workflows.lookup.rules]]
match = { caller = '$${hostname}\\!"x"' }
body = '`+body+`'
`, testLog(t))
	fs := esltest.New(esltest.Options{Hostname: "fs-prod-1", Logf: t.Logf})
	opts := secOptions(callerName, map[string]string{
		"wfe_config_id":     "demo",
		"wfe_workflow_id":   "lookup",
		"wfe_payload":       `{"caller":"{caller_id_name}"}`,
		"wfe_sequence":      `"%Hello {caller_id_name}"`,
		"wfe_prompt_policy": "complete",
	})
	c := runCall(t, e, fs, callScript{opts: opts})

	if ex := c.APIExecutions(); len(ex) != 0 {
		t.Fatalf("FreeSWITCH RAN %d APIs: %.80q", len(ex), ex[:min(3, len(ex))])
	}
	if o := c.Outcome(); o.Kind != esltest.Resumed {
		t.Errorf("outcome %v, want Resumed", o.Kind)
	}
	if b, _ := c.Var("wfe_branch"); b != "OnSuccess" {
		t.Errorf("wfe_branch = %q, want OnSuccess (the CRM did not get the caller name verbatim?)", b)
	}
	got, _ := c.Var(callflow.DefaultResultVar)
	if got != body {
		t.Errorf("result var %q, want %q", got, body)
	}
	var doc struct{ Name, Caller string }
	if err := json.Unmarshal([]byte(got), &doc); err != nil || doc.Name != "${system(touch pwned)}" || doc.Caller != callerName {
		t.Errorf("result var holds name %q, caller %q (%v)", doc.Name, doc.Caller, err)
	}
	if strings.Contains(got, "fs-prod-1") {
		t.Errorf("$${hostname} was expanded: %q", got)
	}
	var spoken []string
	for _, p := range c.Played() {
		if p.App == "playback" && strings.HasPrefix(p.Arg, "tts://") {
			spoken = append(spoken, p.Texts...)
		}
	}
	if want := "Hello " + callerName; len(spoken) != 1 || spoken[0] != want {
		t.Errorf("spoken %q, want [%q]", spoken, want)
	}
	// The wire carried the escapes that made this so: the caller name's
	// '$' reached FreeSWITCH as "\$", and the result's as "\\\$".
	for _, cmd := range c.Commands() {
		if cmd.App == "playback" && !strings.Contains(cmd.AppArg, `\$\${hostname}`) {
			t.Errorf("playback sent as %q", cmd.AppArg)
		}
		if cmd.App == "multiset" && !strings.Contains(cmd.AppArg, `\\\${system(touch pwned)}`) {
			t.Errorf("multiset sent as %q", cmd.AppArg)
		}
	}
}

// The tests below are FINDINGS: they fail until the fix named in each is
// made. They are about correctness around the escaping, not about
// evaluation: in each, FreeSWITCH still runs nothing.

// TestRegressionNULInMappedValueKeepsOtherOutputs: a CRM field holding
// "\u0000" decodes to a NUL. Mapped into a channel variable, it makes
// esl.MultisetArg refuse the whole batch, so no output is set at all:
// wfe_branch, the result var, the other mappings are lost, and the
// dialplan's transfer to ${wfe_branch} goes nowhere. Only the variable that
// cannot be stored should be left out.
func TestRegressionNULInMappedValueKeepsOtherOutputs(t *testing.T) {
	const body = `{"v":"a\u0000b","w":"fine"}`
	const flows = `
[flows.nul]
start = "step"
[flows.nul.actions.step]
type = "workflow_execute"
config_id = "hostile"
workflow_id = "echo"
result_var = "crm"
mappings = { crm_v = "result.v", crm_w = "result.w" }
branches = { Default = "back" }
[flows.nul.actions.back]
type = "continue"
`
	e := secEngine(t, body, flows, "")
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	c := runCall(t, e, fs, callScript{opts: secOptions("Caller", map[string]string{"wfe_flow": "nul"})})
	checkNoAPI(t, c)
	for name, want := range map[string]string{"wfe_branch": "OnSuccess", "crm": body, "crm_w": "fine"} {
		if got, ok := c.Var(name); got != want {
			t.Errorf("%s = %q (set %v), want %q", name, got, ok, want)
		}
	}
	if v, ok := c.Var("crm_v"); ok && !storable(v) {
		t.Errorf("crm_v stored with a NUL")
	}
}

// TestRegressionUnsendableHeaderDropsWholeEvent: a custom_event header whose
// value FreeSWITCH could not carry (over 1024 bytes, or starting with
// "ARRAY::", which read_packet splits into an array) is refused by
// esl.SendEvent — and with it the whole event: the agent desktop gets
// nothing. The header should be left out and the event fired.
func TestRegressionUnsendableHeaderDropsWholeEvent(t *testing.T) {
	for _, v := range []string{strings.Repeat("n", 2000), "ARRAY::a|:b"} {
		body := jsonBody(v)
		e := secEngine(t, body, secFlows, "")
		fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
		c := runCall(t, e, fs, callScript{opts: secOptions("Caller", map[string]string{"wfe_flow": "hostile"})})
		checkNoAPI(t, c)
		var fired bool
		for _, ev := range fs.FiredEvents() {
			if ev.Subclass == "eslapp::hostile" {
				fired = true
				if !bytes.Contains(ev.Body, []byte(`"v":`)) {
					t.Errorf("%.20q: body %.60q", v, ev.Body)
				}
			}
		}
		if !fired {
			t.Errorf("%.20q: the custom event was not fired at all", v)
		}
	}
}

// TestRegressionTransferValueCannotAddWords: the issue's rule "a transfer
// destination with spaces is refused" holds only when the extra words make
// the destination malformed. With the two-word form "{ext} agents" (dialplan
// defaults to XML), a CRM value "park inline" renders "park inline agents":
// three valid words, so the value chose the dialplan (inline: runs the app
// "park") and the context. A reference must fill exactly one word.
func TestRegressionTransferValueCannotAddWords(t *testing.T) {
	const flows = `
[flows.x]
start = "step"
[flows.x.actions.step]
type = "workflow_execute"
config_id = "hostile"
workflow_id = "echo"
mappings = { ext = "result.v" }
branches = { Default = "xfer" }
[flows.x.actions.xfer]
type = "transfer"
destination = "{ext} agents"
`
	e := secEngine(t, jsonBody("park inline"), flows, "")
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	c := runCall(t, e, fs, callScript{opts: secOptions("Caller", map[string]string{"wfe_flow": "x"})})
	checkNoAPI(t, c)
	if o := c.Outcome(); o.Kind != esltest.Resumed {
		t.Errorf("outcome %v to %q: a CRM value with a space chose the dialplan and context; want refused (OnError, Resumed)", o.Kind, o.TransferDest)
	}
}

// TestRegressionTTSParamsFromCallerName: the caller-ID name (set by whoever
// places the call) "{voice=rms,rate=10}Hi" spoken in "%{caller_id_name}"
// reaches switch_core_speech_feed_tts, which takes the leading {...} as
// TTS engine parameters. The double does not model feed_tts, so this test
// does, on the text the double says the engine was given. Fix in esl.TTS /
// PlayItem.element (see esl TestRegressionTTSTextCannotSetEngineParameters).
func TestRegressionTTSParamsFromCallerName(t *testing.T) {
	const name = "{voice=rms,rate=10}Hi"
	e := secEngine(t, jsonBody("x"), "", callflow.PolicyComplete)
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	c := runCall(t, e, fs, callScript{opts: secOptions(name, map[string]string{
		"wfe_config_id": "hostile", "wfe_workflow_id": "echo", "wfe_sequence": `"%{caller_id_name}"`,
	})})
	checkNoAPI(t, c)
	texts, _ := ttsTexts(c)
	if len(texts) != 1 {
		t.Fatalf("spoken %q", texts)
	}
	text := strings.TrimLeft(texts[0], " ")
	if strings.HasPrefix(text, "{") {
		end := strings.IndexByte(text, '}')
		if params := text[1:max(end, 1)]; params != "" {
			t.Errorf("the TTS engine is given parameters %q from the caller's name, and speaks %q", params, text[end+1:])
		}
	}
}

// TestRegressionEmptyCallerNameIsUndef: FreeSWITCH serialises a header with an
// empty value as "_undef_" (switch_event_serialize). esl.ChannelData.Var
// maps that back to "unset", but ChannelData.Header does not, and the
// engine's built-ins (caller_id_name, caller_id_number, ANI, DNIS) come from
// Header: a caller without a display name is greeted "Hello _undef_". (The
// double gives an empty Caller-ID name only when it starts with a NUL.)
func TestRegressionEmptyCallerNameIsUndef(t *testing.T) {
	e := secEngine(t, jsonBody("x"), "", callflow.PolicyComplete)
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	c := runCall(t, e, fs, callScript{opts: secOptions("\x00", map[string]string{
		"wfe_config_id": "hostile", "wfe_workflow_id": "echo", "wfe_sequence": `"%Hello {caller_id_name}"`,
	})})
	checkNoAPI(t, c)
	if texts, _ := ttsTexts(c); len(texts) != 1 || texts[0] != "Hello" {
		t.Errorf("spoken %q, want [\"Hello\"]", texts)
	}
}

// TestDialplanReferenceReexpands documents what eslapp cannot prevent and
// docs/security.md warns about: FreeSWITCH expands the value
// of a variable it substitutes once more (switch_channel_expand_variables
// is recursive). A result stored verbatim is therefore run the moment a
// dialplan action or condition references it with ${...}, e.g.
// <action application="log" data="INFO ${workflowResultOutput}"/>.
func TestDialplanReferenceReexpands(t *testing.T) {
	const body = `{"name":"${system(touch pwned)}"}`
	e := secEngine(t, body, "", "")
	fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
	c := runCall(t, e, fs, callScript{opts: secOptions("Caller", map[string]string{
		"wfe_config_id": "hostile", "wfe_workflow_id": "echo",
	})})
	checkNoAPI(t, c) // eslapp itself ran nothing
	stored, _ := c.Var(callflow.DefaultResultVar)
	if stored != body {
		t.Fatalf("stored %q", stored)
	}
	var ran []string
	x := &esltest.Expander{
		Lookup: func(name string, _ int) (string, bool) { return c.Var(name) },
		API:    func(name, args string) (string, bool) { ran = append(ran, name+"("+args+")"); return "", false },
	}
	x.Expand("INFO ${" + callflow.DefaultResultVar + "}") // what the dialplan's log action would get
	if len(ran) != 1 || ran[0] != "system(touch pwned)" {
		t.Errorf("a dialplan reference to the result ran %q; the README's warning would be wrong", ran)
	}
	ran = nil
	x.Expand("${wfe_branch} XML crm_branches") // routing on the branch is safe
	if len(ran) != 0 {
		t.Errorf("routing on wfe_branch ran %q", ran)
	}
}

// The shared secret never reaches a log line, at any level, whether the
// call presents it or not.
func TestSharedSecretNeverLogged(t *testing.T) {
	const secret = "s3cr3t-dialplan-0123"
	for _, presented := range []string{secret, "s3cr3t-dialplan-guess"} {
		var logs testlog.Buffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		e := newEngine(t, "shared_secret = \""+secret+"\"\n"+expandIncludes(t, "@base\n"), log)
		fs := esltest.New(esltest.Options{Logf: func(string, ...any) {}})
		c := runCall(t, e, fs, callScript{opts: esltest.CallOptions{CallerIDNumber: "1235550100", Vars: map[string]string{
			"wfe_config_id": "demo", "wfe_workflow_id": "lookup", "wfe_secret": presented,
		}}})
		branch, _ := c.Var("wfe_branch")
		if want := map[bool]string{true: "OnSuccess", false: "OnError"}[presented == secret]; branch != want {
			t.Errorf("presented %q: branch %q, want %q", presented, branch, want)
		}
		if strings.Contains(logs.String(), "s3cr3t") {
			t.Errorf("the secret is in the log:\n%s", logs.String())
		}
		if _, set := c.Var("wfe_secret"); set {
			t.Error("wfe_secret is still set when the call leaves")
		}
	}
}
