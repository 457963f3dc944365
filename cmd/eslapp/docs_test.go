package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// docPages are the documentation pages, relative to the repository root:
// the README and every page under docs/.
func docPages(t *testing.T, root string) []string {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) == 0 {
		t.Fatal("no page in docs/")
	}
	out := []string{"README.md"}
	for _, p := range pages {
		rel, _ := filepath.Rel(root, p)
		out = append(out, filepath.ToSlash(rel))
	}
	return out
}

var (
	fenceRE    = regexp.MustCompile("(?ms)^```.*?^```[ \t]*$")
	codeSpanRE = regexp.MustCompile("`[^`\n]*`")
	linkRE     = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)\)`)
	headingRE  = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t#]*$`)
)

// withoutCode blanks the fenced code blocks and the code spans of a Markdown
// text: what looks like a link or a heading there is neither. Lines are
// kept, so that positions still name their line.
func withoutCode(text string) string {
	text = fenceRE.ReplaceAllStringFunc(text, func(block string) string {
		return strings.Repeat("\n", strings.Count(block, "\n"))
	})
	return codeSpanRE.ReplaceAllString(text, "code")
}

// anchorOf is the anchor GitHub gives a heading: lower case, spaces to
// '-', every character but letters, digits, '-' and '_' dropped.
func anchorOf(heading string) string {
	heading = codeSpanRE.ReplaceAllStringFunc(heading, func(s string) string { return strings.Trim(s, "`") })
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchorsOf lists the anchors of a Markdown file's headings; a repeated
// heading gets -1, -2, ... as on GitHub.
func anchorsOf(text string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, m := range headingRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(text, ""), -1) {
		a := anchorOf(m[1])
		if n := seen[a]; n > 0 {
			anchors[a+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[a] = true
		}
		seen[a]++
	}
	return anchors
}

func TestAnchorOf(t *testing.T) {
	for heading, want := range map[string]string{
		"Socket or socket-less":             "socket-or-socket-less",
		"Configuration at scale (issue 14)": "configuration-at-scale-issue-14",
		"eslapp's shared secret":            "eslapps-shared-secret",
		"What a peer can and cannot do":     "what-a-peer-can-and-cannot-do",
		"The `[server]` table":              "the-server-table",
		"snake_case and 10,000 calls":       "snake_case-and-10000-calls",
	} {
		if got := anchorOf(heading); got != want {
			t.Errorf("anchorOf(%q) = %q, want %q", heading, got, want)
		}
	}
	a := anchorsOf("# A\n## A\n```\n# not a heading\n```\n### A\n")
	if !a["a"] || !a["a-1"] || !a["a-2"] || a["not-a-heading"] {
		t.Errorf("anchorsOf = %v", a)
	}
}

// Every relative link of the README and of the pages in docs/ names a file
// or directory of the repository, and every #anchor a heading of the
// Markdown file it names (GitHub's anchors). Every page in docs/ is linked
// from the README.
func TestDocsLinks(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	anchorCache := map[string]map[string]bool{}
	anchors := func(path string) map[string]bool {
		if a, ok := anchorCache[path]; ok {
			return a
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		anchorCache[path] = anchorsOf(string(b))
		return anchorCache[path]
	}
	pages := docPages(t, root)
	linked := map[string]bool{}
	links := 0
	for _, page := range pages {
		b, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			t.Fatal(err)
		}
		text := withoutCode(string(b))
		for _, m := range linkRE.FindAllStringSubmatchIndex(text, -1) {
			target := text[m[2]:m[3]]
			where := page + ":" + strconv.Itoa(strings.Count(text[:m[0]], "\n")+1)
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			links++
			file, anchor, _ := strings.Cut(target, "#")
			path := filepath.Join(root, page) // a bare #anchor: this page
			if file != "" {
				if filepath.IsAbs(file) {
					t.Errorf("%s: link %q is absolute: links are relative to the page", where, target)
					continue
				}
				path = filepath.Join(filepath.Dir(path), filepath.FromSlash(file))
			}
			rel, err := filepath.Rel(root, path)
			if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				t.Errorf("%s: link %q leaves the repository", where, target)
				continue
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Errorf("%s: link %q: no file %s", where, target, filepath.ToSlash(rel))
				continue
			}
			if page == "README.md" {
				linked[filepath.ToSlash(rel)] = true
			}
			if anchor == "" {
				continue
			}
			if fi.IsDir() || !strings.HasSuffix(path, ".md") {
				t.Errorf("%s: link %q: an anchor into %s, which is no Markdown file", where, target, filepath.ToSlash(rel))
				continue
			}
			if !anchors(path)[anchor] {
				t.Errorf("%s: link %q: %s has no heading with the anchor #%s", where, target, filepath.ToSlash(rel), anchor)
			}
		}
	}
	if links == 0 {
		t.Fatal("no relative link found: the link pattern is broken")
	}
	for _, page := range pages {
		if page != "README.md" && !linked[page] {
			t.Errorf("%s is not linked from the README", page)
		}
	}
}
