package crm

import (
	"net/url"
	"strings"
	"testing"

	"github.com/eslapp/eslapp/conf"
)

// FuzzQuery: any configured query either is refused or builds, with any
// variable value, a query string that parses back to the same parameter
// names in the same order: a value never adds, drops or renames one.
func FuzzQuery(f *testing.F) {
	for _, seed := range []string{"code=${env:K}&async=false", "p={phone}&flag", "a=b%20c&d==e", "x={a}{b}&y=1"} {
		f.Add(seed, "+1 555&admin=1#x")
	}
	res := conf.Resolver{LookupEnv: func(string) (string, bool) { return "v&=?#", true }}
	f.Fuzz(func(t *testing.T, query, value string) {
		params, err := compileQuery(query, res)
		if err != nil {
			return
		}
		q, err := expandQuery(params, func(string) (string, bool) { return value, true })
		if err != nil {
			t.Fatalf("expand: %v", err)
		}
		var names []string
		for _, pair := range strings.Split(q, "&") {
			name, _, _ := strings.Cut(pair, "=")
			names = append(names, name)
		}
		if len(names) != len(params) {
			t.Fatalf("%q built %q: %d parameters, want %d", query, q, len(names), len(params))
		}
		for i, p := range params {
			if names[i] != p.name {
				t.Fatalf("%q built %q: parameter %d is %q, want %q", query, q, i, names[i], p.name)
			}
		}
		if _, err := url.ParseQuery(q); err != nil {
			t.Fatalf("%q built %q, which does not parse: %v", query, q, err)
		}
	})
}
