package crm

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// FuzzExpandPath: whatever a caller's data holds, the request URL keeps the
// base's scheme, host and path prefix, has no query or fragment, and each
// value stays in its segment.
func FuzzExpandPath(f *testing.F) {
	for _, s := range []string{"123", "..", ".", "", "a/b", "?x=1", "#f", "%2e%2e", "../../admin", "a b", "\x00", "ü", "//evil.example", "@evil", "a:b", "\\..\\"} {
		f.Add(s, s)
	}
	base, _ := url.Parse("https://crm.example:8443/api/v1")
	tmpl, err := compilePath("/contacts/{a}/x-{b}/end")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		vars := map[string]string{"a": a, "b": b}
		p, err := tmpl.expand(func(n string) (string, bool) { v, ok := vars[n]; return v, ok })
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("expand: %v", err)
			}
			return
		}
		u, err := joinURL(base, p, "")
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("join: %v", err)
			}
			return
		}
		if u.Scheme != "https" || u.Host != "crm.example:8443" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			t.Fatalf("URL %q left the base", u)
		}
		segs := strings.Split(u.EscapedPath(), "/")
		if len(segs) != 7 || segs[1] != "api" || segs[2] != "v1" || segs[3] != "contacts" || segs[6] != "end" || !strings.HasPrefix(segs[5], "x-") {
			t.Fatalf("path %q has the wrong shape", u.EscapedPath())
		}
		if got, _ := url.PathUnescape(segs[4]); got != a {
			t.Fatalf("segment %q does not round-trip to %q", segs[4], a)
		}
	})
}
