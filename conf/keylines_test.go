package conf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// probeKeyLines is the reference: the decoder's own positions, read by
// probing each key with a decode that fails (quadratic, hence not used).
func probeKeyLines(t testing.TB, data string) map[string]int {
	lines := make(map[string]int)
	var root map[string]toml.Primitive
	md, err := toml.Decode(data, &root)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(prims map[string]toml.Primitive, path toml.Key)
	walk = func(prims map[string]toml.Primitive, path toml.Key) {
		for name, prim := range prims {
			key := append(path[:len(path):len(path)], name)
			var pe toml.ParseError
			if err := md.PrimitiveDecode(prim, &lineProbe{}); errors.As(err, &pe) && pe.Position.Line > 0 {
				lines[key.String()] = pe.Position.Line
			}
			var sub map[string]toml.Primitive
			if md.PrimitiveDecode(prim, &sub) == nil {
				walk(sub, key)
			}
		}
	}
	walk(root, nil)
	return lines
}

type lineProbe struct{}

func (*lineProbe) UnmarshalTOML(any) error { return errors.New("probe") }

// KeyLines finds every key on the line the decoder has for it, in the
// shipped configurations, the golden calls' base and every TOML block of
// the README and of the pages in docs/.
func TestKeyLinesAgreeWithTheDecoder(t *testing.T) {
	root := ".."
	docs := map[string]string{}
	for _, f := range []string{"conf/eslapp.toml", "docker/eslapp.toml", "itest/pbxcost/eslapp.toml", "callflow/testdata/calls/base.toml", "callflow/testdata/calls/route.toml"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		docs[f] = string(b)
	}
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) == 0 {
		t.Fatal("no page in docs/")
	}
	for _, page := range append([]string{filepath.Join(root, "README.md")}, pages...) {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(root, page)
		for i, m := range regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
			docs[fmt.Sprintf("%s block %d", filepath.ToSlash(name), i+1)] = m[1]
		}
	}
	docs["tricky"] = `# comment with [brackets] and = signs
a = "x # not a comment"
"quoted.key" = 1
'lit' = 'y'
multi = """
[not.a.table]
b = 2
"""
lit2 = '''
c = 3 '''
arr = [
  1, # a comment
  { inner = { deep = true } },
  [2, [3]],
]
[t . u]   # spaces around the dot
v.w = { x = 1, y.z = 2 }
[[list]]
k = 1
[[list]]
k = 2
`
	for name, doc := range docs {
		want := probeKeyLines(t, doc)
		got, err := KeyLines(doc)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		docLines := strings.Split(doc, "\n")
		for k, line := range want {
			if got[k] < line && got[k] > 0 && multiLineValue(docLines[got[k]-1]) {
				continue // the decoder places it where its value ends; the key's own line is better
			}
			if got[k] != line {
				t.Errorf("%s: key %s on line %d, KeyLines says %d", name, k, line, got[k])
			}
		}
	}
}

func multiLineValue(line string) bool {
	return strings.Contains(line, `= """`) || strings.Contains(line, "= '"+"''")
}

// FuzzKeyLines: KeyLines ends on any input, and on any document the decoder
// accepts it finds every key the decoder has, on a line of the document.
func FuzzKeyLines(f *testing.F) {
	for _, seed := range []string{
		"a = 1\n[b]\nc.d = 'x'\n",
		"[[x]]\ny = [1, {z = 2}]\n",
		"s = \"\"\"\nq\"\"\"\nt = '''\n'''\n",
		"\"k.k\" = { 'l' = [[]] }\n",
		"a.b.c = 1 # c\n[d . 'e']\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		lines, err := KeyLines(doc)
		if err != nil {
			return
		}
		md, derr := toml.Decode(doc, &map[string]any{})
		if derr != nil {
			return
		}
		n := strings.Count(doc, "\n") + 1
		for _, k := range md.Keys() {
			l := LineOf(lines, k)
			if l < 1 || l > n {
				t.Fatalf("key %s: line %d of %d", k, l, n)
			}
		}
	})
}
