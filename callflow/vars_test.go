package callflow

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The golden files under testdata/{expr,template,payload} are rewritten with
//
//	go test ./callflow -run 'Test(Expr|Template|Payload)Golden' -update
//
// (a plain -run Golden also rewrites testdata/calls). The -update flag is
// the package's one (golden_test.go, package callflow_test, defines it); it
// is looked up when a test runs, so that this file does not define it a
// second time.
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// testContact is a CRM result as a workflow returns it.
const testContact = `{
  "name": "Ann \"Nan\" Lee", "Name": "exact case wins", "id": 42, "vip": true, "notes": null,
  "balance": 12.50, "big": 1e400,
  "phones": [ {"type": "home", "number": "555-0100"}, {"type": "work", "number": "555-0199"} ],
  "address": {"city": "Z\u00fcrich", "zip": "8001"},
  "first name": "Ann", "@odata.etag": "W/\"1\"", "e-mail": "ann@example.com",
  "tags": [], "empty": {}, "dup": 1, "dup": 2, "esc\u0061ped": "key with an escape",
  "html": "<b>&</b>", "nested": {"a": {"b": {"c": [0, [1, [2]]]}}}
}`

// testChannel is the connect data of the test call.
var testChannel = map[string]string{
	"caller_name":     `O'Brien "Bob" </script>` + "\n\\",
	"stored":          ` {"id": "C-1", "list": [1, 2], "deep": {"x": "y"}} `,
	"not_json":        `{"id": `,
	"empty":           "",
	"timeoutMilliSec": "6000",
	"ANI":             "channel ANI is hidden by the built-in",
}

// testVars returns the variables of the test call.
func testVars(t testing.TB) *Vars {
	t.Helper()
	v := NewVars(func(name string) (string, bool) {
		s, ok := testChannel[name]
		return s, ok
	}, map[string]string{"ANI": "5551234", "DNIS": "7000", "ContactID": "c0ffee"})
	for name, raw := range map[string]string{
		"contact": testContact,
		"count":   `3`,
		"ratio":   `-1.5e3`,
		"yes":     `true`,
		"nothing": `null`,
		"list":    `["a", "b", {"c": [true, false, null]}]`,
		"quoted":  `"a \"JSON\" string"`,
	} {
		if err := v.SetJSON(name, []byte(raw)); err != nil {
			t.Fatalf("SetJSON(%s): %v", name, err)
		}
	}
	v.SetString("greeting", "hello, {world}")
	v.SetString("hostile", `"},{"x":"`+"\x00\xff\u2028")
	return v
}

// section is one case of a golden test file: "-- name --" then its text.
type section struct {
	name, body string
}

var sectionHeader = regexp.MustCompile(`^-- (.+) --$`)

// readSections reads a file of sections. The newline that ends a section's
// last line is not part of its body.
func readSections(t *testing.T, path string) []section {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var secs []section
	var body []string
	flush := func() {
		if len(secs) > 0 {
			secs[len(secs)-1].body = strings.Join(body, "\n")
		}
		body = nil
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if m := sectionHeader.FindStringSubmatch(line); m != nil {
			flush()
			secs = append(secs, section{name: m[1]})
			continue
		}
		if len(secs) == 0 {
			continue // comments before the first section
		}
		body = append(body, line)
	}
	flush()
	return secs
}

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if updating() {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got == string(want) {
		return
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
	for i := range max(len(gl), len(wl)) {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("%s differs at line %d (run with -update to accept):\ngot:  %s\nwant: %s", filepath.Base(path), i+1, g, w)
		}
	}
}

func TestValueTextAndJSON(t *testing.T) {
	obj, err := ParseJSON([]byte(" { \"a\" : [ 1 , \"x y\" ] } "))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		v          Value
		kind       Kind
		text, json string
	}{
		{Value{}, KindNull, "", "null"},
		{StringValue(`a"b`), KindString, `a"b`, `"a\"b"`},
		{StringValue(""), KindString, "", `""`},
		{StringValue("5551234"), KindString, "5551234", `"5551234"`},
		{BoolValue(true), KindBool, "true", "true"},
		{BoolValue(false), KindBool, "false", "false"},
		{IntValue(-42), KindNumber, "-42", "-42"},
		{obj, KindObject, `{"a":[1,"x y"]}`, `{"a":[1,"x y"]}`},
	} {
		if tc.v.Kind() != tc.kind || tc.v.Text() != tc.text || string(tc.v.AppendJSON(nil)) != tc.json {
			t.Errorf("%#v: kind %v text %q json %s; want %v %q %s", tc.v, tc.v.Kind(), tc.v.Text(), tc.v.AppendJSON(nil), tc.kind, tc.text, tc.json)
		}
		if b, err := json.Marshal(tc.v); err != nil || string(b) != tc.json {
			t.Errorf("json.Marshal(%#v) = %s, %v", tc.v, b, err)
		}
	}
}

func TestParseJSON(t *testing.T) {
	for _, tc := range []struct {
		raw        string
		kind       Kind
		text       string
		wantErr    bool
		fieldCheck string
	}{
		{raw: `"a\u0041\n"`, kind: KindString, text: "aA\n"},
		{raw: `1.50`, kind: KindNumber, text: "1.50"},
		{raw: `-0`, kind: KindNumber, text: "-0"},
		{raw: `1e400`, kind: KindNumber, text: "1e400"},
		{raw: ` null `, kind: KindNull, text: ""},
		{raw: `[ ]`, kind: KindArray, text: "[]"},
		{raw: "{\"k\":\"\xff\xfe\"}", kind: KindObject, text: `{"k":"` + "\ufffd\ufffd" + `"}`},
		{raw: "\"\xffa\"", kind: KindString, text: "\ufffda"},
		{raw: ``, wantErr: true},
		{raw: `{"a":1`, wantErr: true},
		{raw: `{"a":1}x`, wantErr: true},
		{raw: `'a'`, wantErr: true},
		{raw: "\"a\x01\"", wantErr: true},
	} {
		v, err := ParseJSON([]byte(tc.raw))
		if tc.wantErr {
			var se *json.SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("ParseJSON(%q) = %v, %v; want a *json.SyntaxError", tc.raw, v, err)
			}
			continue
		}
		if err != nil || v.Kind() != tc.kind || v.Text() != tc.text {
			t.Errorf("ParseJSON(%q) = %v %q, %v; want %v %q", tc.raw, v.Kind(), v.Text(), err, tc.kind, tc.text)
		}
		if !json.Valid(v.AppendJSON(nil)) {
			t.Errorf("ParseJSON(%q): JSON %q not valid", tc.raw, v.AppendJSON(nil))
		}
	}
}

func TestFieldAndIndex(t *testing.T) {
	v := testVars(t)
	contact, _ := v.Get("contact")
	for _, tc := range []struct {
		name string
		want string
		err  error
	}{
		{"id", "42", nil},
		{"name", `Ann "Nan" Lee`, nil},
		{"Name", "exact case wins", nil},
		{"NAME", "exact case wins", nil}, // no exact match: the last one ignoring case
		{"dup", "2", nil},                // duplicate keys: the last wins
		{"escaped", "key with an escape", nil},
		{"first name", "Ann", nil},
		{"notes", "", nil},
		{"missing", "", ErrNoField},
	} {
		got, err := contact.Field(tc.name)
		if err != tc.err || got.Text() != tc.want {
			t.Errorf("Field(%q) = %q, %v; want %q, %v", tc.name, got.Text(), err, tc.want, tc.err)
		}
	}
	if _, err := contact.Index(0); err != ErrWrongType {
		t.Errorf("object Index: %v, want ErrWrongType", err)
	}
	list, _ := v.Get("list")
	if n := list.Len(); n != 3 {
		t.Errorf("Len = %d, want 3", n)
	}
	if e, err := list.Index(2); err != nil || e.Text() != `{"c":[true,false,null]}` {
		t.Errorf("Index(2) = %q, %v", e.Text(), err)
	}
	for _, i := range []int{3, -1, 1 << 30} {
		if _, err := list.Index(i); err != ErrNoField {
			t.Errorf("Index(%d): %v, want ErrNoField", i, err)
		}
	}
	if _, err := StringValue("plain").Field("x"); err != ErrWrongType {
		t.Errorf("string Field: %v, want ErrWrongType", err)
	}
	stored := StringValue(testChannel["stored"])
	if f, err := stored.Field("id"); err != nil || f.Text() != "C-1" {
		t.Errorf("JSON in a string: Field = %q, %v", f.Text(), err)
	}
	if _, err := StringValue(testChannel["not_json"]).Field("id"); err != ErrWrongType {
		t.Errorf("broken JSON in a string: %v, want ErrWrongType", err)
	}
	if _, err := (Value{}).Field("x"); err != ErrWrongType {
		t.Errorf("null Field: %v, want ErrWrongType", err)
	}
}

func TestVarsLookupOrder(t *testing.T) {
	v := testVars(t)
	get := func(name string) string {
		t.Helper()
		val, ok := v.Get(name)
		if !ok {
			return "<unset>"
		}
		return val.Text()
	}
	for name, want := range map[string]string{
		"ANI":             "5551234", // built-in before channel
		"ani":             "5551234", // built-ins ignore case
		"Contact.x":       "<unset>",
		"CONTACTID":       "c0ffee",
		"timeoutMilliSec": "6000",
		"timeoutmillisec": "<unset>", // the channel lookup decides about case
		"empty":           "",
		"GREETING":        "hello, {world}", // flow variables ignore case
		"unknown":         "<unset>",
	} {
		if got := get(name); got != want {
			t.Errorf("Get(%q) = %q, want %q", name, got, want)
		}
	}
	v.SetString("ani", "flow wins")
	v.SetString("Greeting", "again")
	if got := get("ANI"); got != "flow wins" {
		t.Errorf("flow variable does not hide the built-in: %q", got)
	}
	v.Unset("timeoutMilliSec")
	if got := get("timeoutMilliSec"); got != "<unset>" {
		t.Errorf("Unset does not hide the channel variable: %q", got)
	}
	if err := v.SetJSON("count", []byte("{bad")); err == nil || get("count") != "3" {
		t.Errorf("SetJSON(bad) = %v; count = %q, want unchanged 3", err, get("count"))
	}
	want := []string{"contact", "count", "ratio", "yes", "nothing", "list", "quoted", "Greeting", "hostile", "ani"}
	got := v.Names()
	if len(got) != len(want) {
		t.Fatalf("Names() = %q", got)
	}
	// The JSON variables were set from a map: compare as sets for them.
	seen := map[string]bool{}
	for _, n := range got {
		seen[n] = true
	}
	for _, n := range want {
		if !seen[n] {
			t.Errorf("Names() = %q, lacks %q", got, n)
		}
	}
	if got[len(got)-1] != "ani" || got[len(got)-2] != "hostile" {
		t.Errorf("Names() order: %q", got)
	}
	var nilVars *Vars
	if _, ok := nilVars.Get("x"); ok {
		t.Error("nil Vars has a variable")
	}
}

func TestAppendEscapedMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `"\`, "\x00\x01\x1f\x7f", "\b\f\n\r\t", "</script>&", "\u2028\u2029",
		"\xff", "a\xc3", "\xed\xa0\x80", "Zürich 日本 😀", `"},{"x":"`,
	} {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestLowerASCII(t *testing.T) {
	for in, want := range map[string]string{"": "", "abc": "abc", "ANI": "ani", "ContactID": "contactid", "Ä_X": "Ä_x"} {
		if got := lowerASCII(in); got != want {
			t.Errorf("lowerASCII(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnquoteMatchesEncodingJSON(t *testing.T) {
	for _, lit := range []string{
		`""`, `"plain"`, `"\"\\\/\b\f\n\r\t"`, `"\u00e9\u20AC"`, `"\ud83d\ude00"`, `"\ud800"`, `"\ud800x"`,
		`"\ud800\u0041"`, `"\udc00\ud800"`, `"\ud800\ud800\udc00"`, "\"\xff\xc3\"", `"a\u0000b"`,
	} {
		var want string
		if err := json.Unmarshal([]byte(lit), &want); err != nil {
			t.Fatalf("%s: %v", lit, err)
		}
		if got := unquote(lit); got != want {
			t.Errorf("unquote(%s) = %q, want %q", lit, got, want)
		}
	}
}
