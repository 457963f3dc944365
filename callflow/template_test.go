package callflow

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestTemplateGolden renders each case of testdata/template/cases.txt.
func TestTemplateGolden(t *testing.T) {
	v := testVars(t)
	var out strings.Builder
	for _, sec := range readSections(t, "testdata/template/cases.txt") {
		fmt.Fprintf(&out, "-- %s --\n", sec.name)
		tmpl, err := ParseTemplate(sec.body)
		if err != nil {
			var xe *ExprError
			if !errors.As(err, &xe) {
				t.Errorf("%s: error %T, want *ExprError", sec.name, err)
			}
			fmt.Fprintf(&out, "error: %v\n", err)
			continue
		}
		if tmpl.String() != sec.body {
			t.Errorf("%s: String() = %q", sec.name, tmpl.String())
		}
		var refs []string
		for _, r := range tmpl.Refs() {
			refs = append(refs, r.String())
		}
		text, warnings := tmpl.Render(v)
		fmt.Fprintf(&out, "refs: %q\ntext: %q\n", refs, text)
		if lit, ok := tmpl.Literal(); ok {
			if lit != text {
				t.Errorf("%s: Literal() = %q, Render = %q", sec.name, lit, text)
			}
			fmt.Fprintf(&out, "literal\n")
		}
		for _, w := range warnings {
			fmt.Fprintf(&out, "warning: %s: %v\n", sentinelName(w), w)
		}
	}
	checkGolden(t, "testdata/template/cases.golden", out.String())
}

func TestTemplateNil(t *testing.T) {
	var tmpl *Template
	if s, w := tmpl.Render(testVars(t)); s != "" || w != nil {
		t.Errorf("nil Render = %q, %v", s, w)
	}
	if tmpl.Refs() != nil || tmpl.String() != "" {
		t.Error("nil Template has refs or text")
	}
	if s, ok := tmpl.Literal(); s != "" || !ok {
		t.Error("nil Template is not the empty literal")
	}
}

// escapeTemplate returns the template whose rendering is s.
func escapeTemplate(s string) string {
	return strings.NewReplacer("{", "{{", "}", "}}").Replace(s)
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"", "demo-crm", "{ANI}", "search-{DNIS}-{contact.id}", "{{x}}", "}}{{", "{{{ANI}}}", "{", "}",
		"{}", "{ANI", "a}b", "{a{b}}", "{contact['first name']}", "{x.asjson()}", "{a\"}", "\xff{ANI}",
	} {
		f.Add(s, "5551234")
		f.Add(s, "{ANI}}{\x00\xff\"\\")
	}
	f.Fuzz(func(t *testing.T, src, val string) {
		// Escaped text renders as itself.
		lit, err := ParseTemplate(escapeTemplate(val))
		if err != nil {
			t.Fatalf("escaped %q: %v", val, err)
		}
		if got, ok := lit.Literal(); !ok || got != val {
			t.Fatalf("escaped %q: Literal = %q, %v", val, got, ok)
		}

		tmpl, err := ParseTemplate(src)
		if err != nil {
			var xe *ExprError
			if !errors.As(err, &xe) || xe.Offset < 0 || xe.Offset > len(src) {
				t.Fatalf("ParseTemplate(%q): bad error %#v", src, err)
			}
			return
		}
		refs := tmpl.Refs()
		// Without variables, every reference is a warning.
		if _, w := tmpl.Render(nil); len(w) != len(refs) {
			t.Fatalf("%q: %d warnings for %d refs", src, len(w), len(refs))
		}
		// Every variable is val: the output is the literal parts with each
		// reference replaced by val (or its JSON), whatever val holds.
		v := NewVars(func(string) (string, bool) { return val, true }, nil)
		got, warnings := tmpl.Render(v)
		var want strings.Builder
		for _, p := range tmpl.parts {
			switch {
			case !p.isRef:
				want.WriteString(p.lit)
			case p.expr.HasPath():
				// Traversal depends on val: checked by FuzzParseExpr.
				return
			case p.expr.AsJSON():
				want.Write(StringValue(val).AppendJSON(nil))
			default:
				want.WriteString(val)
			}
		}
		if got != want.String() || len(warnings) != 0 {
			t.Fatalf("%q with %q: got %q %v, want %q", src, val, got, warnings, want.String())
		}
	})
}
