package callflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestPayloadGolden renders each case of testdata/payload/cases.txt.
func TestPayloadGolden(t *testing.T) {
	v := testVars(t)
	var out strings.Builder
	for _, sec := range readSections(t, "testdata/payload/cases.txt") {
		fmt.Fprintf(&out, "-- %s --\n", sec.name)
		p, err := ParsePayload(sec.body)
		if err != nil {
			var xe *ExprError
			if !errors.As(err, &xe) {
				t.Errorf("%s: error %T, want *ExprError", sec.name, err)
			}
			fmt.Fprintf(&out, "error: %v\n", err)
			continue
		}
		var refs []string
		for _, r := range p.Refs() {
			refs = append(refs, r.String())
		}
		body, warnings, err := p.Render(v, 0)
		if err != nil {
			t.Errorf("%s: Render: %v", sec.name, err)
			continue
		}
		if !json.Valid(body) {
			t.Errorf("%s: not valid JSON: %s", sec.name, body)
		}
		fmt.Fprintf(&out, "refs: %q\n%s\n", refs, body)
		for _, w := range warnings {
			fmt.Fprintf(&out, "warning: %s: %v\n", sentinelName(w), w)
		}
	}
	checkGolden(t, "testdata/payload/cases.golden", out.String())
}

// TestPayloadBraces pins down which braces are references.
func TestPayloadBraces(t *testing.T) {
	for _, tc := range []struct {
		src  string
		refs string // the references found, comma-separated; "error" for a parse error
	}{
		{`{}`, ""},
		{`{ }`, ""},
		{"{\n}", ""},
		{`{"a":1}`, ""},
		{`{ "a" : { "b" : [ { } ] } }`, ""},
		{`{a}`, "a"},
		{`{_a}`, "_a"},
		{`{"x":{ANI}}`, "ANI"},
		{`{"x":{ ANI}}`, "error"},
		{`{ANI.asjson()}`, "ANI.asjson()"},
		{`{"a":{"b":{"c":{ANI}}}}`, "ANI"},
		{`[{a},{"b":{c}},"{d}"]`, "a,c,d"},
		{`{"{k}":{v}}`, "k,v"},
		{`{"s":"{{not a ref}}"}`, ""},
		{`{"s":"\"{a}\""}`, "a"},
		{`{"s":"\\{a}"}`, "a"}, // an escaped backslash, then a reference
		{`{"s":"{a}}}"}`, "a"},
		{`{"s":"{{{a}}}"}`, "a"},
		{`{{a}:1}`, "error"},
		{`{"s":"{"}`, "error"},
		{`{"s":"}"}`, "error"},
		{`{"s":"{1}"}`, "error"},
		{`{1}`, "error"},
		{`{"a":{a b}}`, "error"},
	} {
		p, err := ParsePayload(tc.src)
		got := "error"
		if err == nil {
			var names []string
			for _, r := range p.Refs() {
				names = append(names, r.String())
			}
			got = strings.Join(names, ",")
		}
		if got != tc.refs {
			t.Errorf("ParsePayload(%s): refs %q, want %q (err %v)", tc.src, got, tc.refs, err)
		}
	}
}

func TestPayloadErrorPosition(t *testing.T) {
	for _, tc := range []struct {
		src       string
		line, col int
		msg       string
	}{
		{"{\"a\":1,}", 1, 8, "not valid JSON"},
		{"{\n  \"a\": {x}\n  \"b\": 2\n}", 3, 3, "not valid JSON"},
		{"{\"a\":1{count}}", 1, 7, "reference {count} cannot stand here"},
		{"{\"a\":\"x}\"}", 1, 8, "'}' without a matching '{'"},
		{"{\"a\":\"é{1}\"}", 1, 9, "a reference starts with a variable name"},
		{"{\"a\":\"\xff\"}", 1, 7, "not valid UTF-8"},
		{"{\"a\":\"x", 1, 8, "unexpected end"},
		{"", 1, 1, "empty payload"},
	} {
		_, err := ParsePayload(tc.src)
		var xe *ExprError
		if !errors.As(err, &xe) {
			t.Errorf("ParsePayload(%q) = %v, want *ExprError", tc.src, err)
			continue
		}
		if xe.Line != tc.line || xe.Column != tc.col || !strings.Contains(xe.Msg, tc.msg) {
			t.Errorf("ParsePayload(%q): %d:%d %q; want %d:%d containing %q", tc.src, xe.Line, xe.Column, xe.Msg, tc.line, tc.col, tc.msg)
		}
	}
}

func TestPayloadSizeLimit(t *testing.T) {
	v := testVars(t)
	p, err := ParsePayload(`{"c":{contact}}`)
	if err != nil {
		t.Fatal(err)
	}
	full, _, err := p.Render(v, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b, _, err := p.Render(v, len(full)); err != nil || !bytes.Equal(b, full) {
		t.Errorf("at the limit: %v", err)
	}
	_, _, err = p.Render(v, len(full)-1)
	var pe *PayloadError
	if !errors.As(err, &pe) || !errors.Is(err, ErrPayloadTooLarge) || pe.Limit != len(full)-1 {
		t.Errorf("over the limit: %v", err)
	}
	if err != nil && !strings.Contains(err.Error(), "size limit") {
		t.Errorf("message: %v", err)
	}
}

func TestPayloadRenderNilVars(t *testing.T) {
	p, err := ParsePayload(`{"a":{x},"b":"{y}"}`)
	if err != nil {
		t.Fatal(err)
	}
	b, w, err := p.Render(nil, 0)
	if err != nil || string(b) != `{"a":null,"b":""}` || len(w) != 2 || !errors.Is(w[0], ErrUnknownVar) {
		t.Errorf("Render(nil) = %s, %v, %v", b, w, err)
	}
}

// shape is the sequence of a JSON document's tokens with every string,
// number and literal reduced to its type: two documents with the same
// shape have the same structure.
func shape(t *testing.T, doc []byte) string {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var b strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return b.String()
		}
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		switch tok := tok.(type) {
		case json.Delim:
			b.WriteString(tok.String())
		case string:
			b.WriteByte('s')
		case json.Number:
			b.WriteByte('n')
		case bool:
			b.WriteByte('b')
		case nil:
			b.WriteByte('0')
		}
	}
}

var hostileValues = []string{
	`\ud83d\ude00`, `\ud800`, `\ud800\u0041`, `\udc00\ud800`, `\u00e9\/\b\f\n\r\t`, `\uD83D\uDE00x`,
	`"},{"x":"`, `"`, `\`, `\"`, `\\"`, "\x00", "\n\r\t", "\xff\xfe", "a\xc3", "</script>", "\u2028\u2029",
	`{ANI}`, `{{`, `}}`, `null`, `1`, `{"a":1}`, `[1,2]`, `\u0022`, "\x1f\x7f", `"}]}`,
}

func FuzzPayload(f *testing.F) {
	for _, s := range []string{
		`{"phone":"{ANI}"}`, `{"phone":"{ANI}","name":"{contact.name}"}`, `{"x":{ANI}}`, `{ANI}`,
		`{ANI.asjson()}`, `[{a},"{b}",{"{c}":{d}}]`, `{"s":"pre {a} {{mid}} {b.asjson()} post"}`,
		`{"q":"\"{a}\"\n"}`, `{"a":{"b":{"c":{x}}}}`, `{}`, `{ }`, `{"a":1}`, `{a}`, `{{a}:1}`,
		`{"a":"{"}`, `{"a":1{b}}`, "{\n \"k\" : [ {v} , \"{w}\" ] \n}",
	} {
		for _, v := range hostileValues {
			f.Add(s, v)
		}
	}
	f.Fuzz(func(t *testing.T, src, val string) {
		// Our escaping is encoding/json's.
		if want, _ := json.Marshal(val); !bytes.Equal(appendJSONString(nil, val), want) {
			t.Fatalf("appendJSONString(%q) = %s, want %s", val, appendJSONString(nil, val), want)
		}
		// Our unquoting is encoding/json's.
		if lit := `"` + val + `"`; json.Valid([]byte(lit)) {
			var want string
			if err := json.Unmarshal([]byte(lit), &want); err != nil || unquote(lit) != want {
				t.Fatalf("unquote(%q) = %q, want %q (%v)", lit, unquote(lit), want, err)
			}
		}
		p, err := ParsePayload(src)
		if err != nil {
			var xe *ExprError
			if !errors.As(err, &xe) || xe.Offset < 0 || xe.Offset > len(src) {
				t.Fatalf("ParsePayload(%q): bad error %#v", src, err)
			}
			return
		}
		render := func(v *Vars) []byte {
			b, _, err := p.Render(v, 0)
			if err != nil {
				t.Fatalf("%q: Render: %v", src, err)
			}
			if !json.Valid(b) || !utf8.Valid(b) {
				t.Fatalf("%q: rendered invalid JSON %q", src, b)
			}
			var c bytes.Buffer
			if err := json.Compact(&c, b); err != nil || !bytes.Equal(c.Bytes(), b) {
				t.Fatalf("%q: not compact: %q", src, b)
			}
			return b
		}
		all := func(s string) *Vars {
			return NewVars(func(string) (string, bool) { return s, true }, nil)
		}
		plain := render(all("x"))
		hostile := render(all(val))
		render(nil)
		for _, r := range p.Refs() {
			if r.HasPath() {
				return // traversal of a value that may hold JSON: shapes may differ
			}
		}
		if sp, sh := shape(t, plain), shape(t, hostile); sp != sh {
			t.Fatalf("%q: value %q changes the structure:\nplain:   %s\nhostile: %s", src, val, plain, hostile)
		}
	})
}

// BenchmarkPayloadRender renders a typical payload: a built-in and a field
// of a CRM result.
func BenchmarkPayloadRender(b *testing.B) {
	v := testVars(b)
	p, err := ParsePayload(`{"phone":"{ANI}","name":"{contact.name}"}`)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := p.Render(v, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPayloadRenderObject inserts a whole CRM result.
func BenchmarkPayloadRenderObject(b *testing.B) {
	v := testVars(b)
	p, err := ParsePayload(`{"contact":{contact},"ani":{ANI}}`)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := p.Render(v, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTemplateRender(b *testing.B) {
	v := testVars(b)
	tmpl, err := ParseTemplate("{contact.phones[1].number} XML {DNIS}")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		tmpl.Render(v)
	}
}

func BenchmarkParsePayload(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePayload(`{"phone":"{ANI}","name":"{contact.name}"}`); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFieldLargeResult reads the last field of a 20 KB CRM result:
// Field scans the compact text (the last duplicate key wins, so the whole
// object is read).
func BenchmarkFieldLargeResult(b *testing.B) {
	var src strings.Builder
	src.WriteString(`{"records":[`)
	for i := range 100 {
		if i > 0 {
			src.WriteByte(',')
		}
		fmt.Fprintf(&src, `{"id":"r-%d","name":"Customer %d","email":"c%d@example.com","tags":["a","b"],"balance":%d.50}`, i, i, i, i)
	}
	src.WriteString(`],"total":100}`)
	res, err := ParseJSON([]byte(src.String()))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(res.Text())))
	b.ReportAllocs()
	for b.Loop() {
		if v, err := res.Field("total"); err != nil || v.Text() != "100" {
			b.Fatal(v, err)
		}
	}
}
