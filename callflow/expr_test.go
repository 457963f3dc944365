package callflow

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

// canonical writes e's path in one form: .field when the name is a field
// name, ['key'] otherwise.
func canonical(e Expr) string {
	var b strings.Builder
	b.WriteString(e.root)
	for _, st := range e.path {
		switch {
		case st.index >= 0:
			fmt.Fprintf(&b, "[%d]", st.index)
		case isFieldName(st.field):
			b.WriteString("." + st.field)
		default:
			b.WriteString("['" + st.field + "']")
		}
	}
	if e.asJSON {
		b.WriteString(".asjson()")
	}
	return b.String()
}

func isFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isFieldByte(s[i]) {
			return false
		}
	}
	return true
}

// describeEval is an expression's result for a golden file.
func describeEval(e Expr, v *Vars) string {
	val, err := e.Eval(v)
	if err != nil {
		var ee *EvalError
		if !errors.As(err, &ee) {
			return fmt.Sprintf("BAD ERROR TYPE %T: %v", err, err)
		}
		return fmt.Sprintf("%s: %v", sentinelName(err), err)
	}
	return fmt.Sprintf("%s %q", val.Kind(), val.Text())
}

func sentinelName(err error) string {
	switch {
	case errors.Is(err, ErrUnknownVar):
		return "ErrUnknownVar"
	case errors.Is(err, ErrNoField):
		return "ErrNoField"
	case errors.Is(err, ErrWrongType):
		return "ErrWrongType"
	}
	return "NO SENTINEL"
}

// TestExprGolden parses and evaluates each line of testdata/expr/cases.txt
// (lines starting with # are comments) against testVars.
func TestExprGolden(t *testing.T) {
	b, err := os.ReadFile("testdata/expr/cases.txt")
	if err != nil {
		t.Fatal(err)
	}
	v := testVars(t)
	var out strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fmt.Fprintf(&out, "%s\n", line)
		e, err := ParseExpr(line)
		if err != nil {
			var xe *ExprError
			if !errors.As(err, &xe) {
				t.Errorf("%q: error %T, want *ExprError", line, err)
			}
			fmt.Fprintf(&out, "\tparse error: %v\n", err)
			continue
		}
		fmt.Fprintf(&out, "\tparse: root=%s canonical=%s\n", e.Root(), canonical(e))
		fmt.Fprintf(&out, "\teval:  %s\n", describeEval(e, v))
	}
	checkGolden(t, "testdata/expr/cases.golden", out.String())
}

func TestExprErrorPosition(t *testing.T) {
	for _, tc := range []struct {
		src       string
		offset    int
		line, col int
	}{
		{"", 0, 1, 1},
		{"1abc", 0, 1, 1},
		{"a.", 2, 1, 3},
		{"a[01]", 2, 1, 3},
		{"a.b(", 2, 1, 3},
		{"a.asjson(x)", 9, 1, 10},
		{"a.asjson().b", 10, 1, 11},
		{"Zürich", 1, 1, 2}, // ü is two bytes, one column
	} {
		_, err := ParseExpr(tc.src)
		var xe *ExprError
		if !errors.As(err, &xe) {
			t.Errorf("ParseExpr(%q) = %v, want *ExprError", tc.src, err)
			continue
		}
		if xe.Offset != tc.offset || xe.Line != tc.line || xe.Column != tc.col {
			t.Errorf("ParseExpr(%q): offset %d line %d col %d; want %d %d %d (%v)", tc.src, xe.Offset, xe.Line, xe.Column, tc.offset, tc.line, tc.col, err)
		}
	}
}

func TestEvalOn(t *testing.T) {
	res, err := ParseJSON([]byte(`{"records":[{"id":"r-1"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseExpr("result.records[0].id")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := e.EvalOn(res); err != nil || v.Text() != "r-1" {
		t.Errorf("EvalOn = %q, %v", v.Text(), err)
	}
	e, _ = ParseExpr("result.records.asjson()")
	if v, err := e.EvalOn(res); err != nil || v.Text() != `[{"id":"r-1"}]` {
		t.Errorf("EvalOn = %q, %v", v.Text(), err)
	}
	e, _ = ParseExpr("result.records[1].id")
	if _, err := e.EvalOn(res); !errors.Is(err, ErrNoField) {
		t.Errorf("EvalOn missing element: %v", err)
	}
}

func TestEvalNilVars(t *testing.T) {
	e, _ := ParseExpr("ANI")
	if _, err := e.Eval(nil); !errors.Is(err, ErrUnknownVar) {
		t.Errorf("Eval(nil) = %v, want ErrUnknownVar", err)
	}
	if _, err := (Expr{}).Eval(testVars(t)); !errors.Is(err, ErrUnknownVar) {
		t.Errorf("zero Expr: %v", err)
	}
}

func TestValidName(t *testing.T) {
	for s, want := range map[string]bool{"ANI": true, "_x1": true, "": false, "1a": false, "a-b": false, "a.b": false, "é": false} {
		if ValidName(s) != want {
			t.Errorf("ValidName(%q) != %v", s, want)
		}
	}
}

func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{
		"ANI", "contact.name", "contact.phones[1].number", "contact['first name']", "x.asjson()",
		"x.AsJSON()", "a[0][1]['k'].b-c.asjson()", "", "a.", "a[", "a['", "a['x", "a['x']", "a[01]",
		"a[999999999]", "a[1234567890]", "a..b", "a.b()", "a.asjson().x", "a b", "a\x00", "é",
		"stored.deep.x", "hostile.x", "list[2].c[0]", "contact['@odata.etag']",
	} {
		f.Add(s)
	}
	v := testVars(f)
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseExpr(s)
		if err != nil {
			var xe *ExprError
			if !errors.As(err, &xe) || xe.Offset < 0 || xe.Offset > len(s) || xe.Line < 1 || xe.Column < 1 {
				t.Fatalf("ParseExpr(%q): bad error %#v", s, err)
			}
			return
		}
		if e.String() != s || !ValidName(e.Root()) || !strings.HasPrefix(s, e.Root()) {
			t.Fatalf("ParseExpr(%q): String %q Root %q", s, e.String(), e.Root())
		}
		// The canonical form parses to the same path.
		c := canonical(e)
		e2, err := ParseExpr(c)
		if err != nil {
			t.Fatalf("canonical %q of %q: %v", c, s, err)
		}
		if !reflect.DeepEqual(e.path2(), e2.path2()) || e.asJSON != e2.asJSON || e.root != e2.root {
			t.Fatalf("canonical %q of %q parses differently", c, s)
		}
		val, err := e.Eval(v)
		if err != nil {
			var ee *EvalError
			if !errors.As(err, &ee) || sentinelName(err) == "NO SENTINEL" {
				t.Fatalf("Eval(%q): bad error %#v", s, err)
			}
			return
		}
		if e.AsJSON() && val.Kind() != KindString {
			t.Fatalf("Eval(%q): asjson gives %v", s, val.Kind())
		}
	})
}

// path2 is the path without the source offsets, to compare two parses.
func (e Expr) path2() []pathStep {
	p := make([]pathStep, len(e.path))
	for i, st := range e.path {
		st.end = 0
		p[i] = st
	}
	return p
}
