package prompts

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected output in testdata/*.golden")

// A golden file holds cases. Each case starts with "=== NAME", then input
// lines, then "---", then the expected output up to the next case:
//
//	=== seed example
//	seq: "%Your account balance is" "silence.wav" "${accountBalance}"
//	var accountBalance: "12.5"
//	---
//	playback "file_string://tts://flite|kal|Your account balance is!/snd/silence.wav"
//	say "en currency pronounced 12.50"
//
// Input lines: "seq: TEXT" (the sequence, verbatim to the end of the
// line), "seqq: GO-STRING" (the sequence as a Go string literal, for
// control characters), "var NAME: GO-STRING" (a variable's value; other
// references are undefined), "prefix C: KIND" (a prefix table entry),
// "dir: PATH" (the sounds directory; default /snd) and "# comments".
// With -update the outputs are rewritten and the inputs kept.
type goldenCase struct {
	name     string
	input    []string // the input lines, verbatim
	want     string
	seq      string
	vars     map[string]string
	prefixes map[string]string
	dir      string
}

func readGolden(t *testing.T, file string) []*goldenCase {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []*goldenCase
	var c *goldenCase
	inOutput := false
	var out strings.Builder
	finish := func() {
		if c != nil {
			c.want = strings.TrimRight(out.String(), "\n")
			cases = append(cases, c)
		}
		out.Reset()
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "=== "); ok {
			finish()
			c = &goldenCase{name: name, vars: map[string]string{}, prefixes: map[string]string{}, dir: "/snd"}
			inOutput = false
			continue
		}
		if c == nil {
			t.Fatalf("%s:%d: text before the first case", file, n)
		}
		if inOutput {
			out.WriteString(line + "\n")
			continue
		}
		if line == "---" {
			inOutput = true
			continue
		}
		c.input = append(c.input, line)
		if err := c.parseInput(line); err != nil {
			t.Fatalf("%s:%d: %v", file, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	finish()
	return cases
}

func (c *goldenCase) parseInput(line string) error {
	key, val, ok := strings.Cut(line, ": ")
	switch {
	case strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "":
		return nil
	case !ok:
		return fmt.Errorf("input line %q: want KEY: VALUE", line)
	case key == "seq":
		c.seq = val
	case key == "seqq":
		s, err := strconv.Unquote(val)
		c.seq = s
		return err
	case key == "dir":
		c.dir = val
	case strings.HasPrefix(key, "var "):
		s, err := strconv.Unquote(val)
		c.vars[strings.TrimPrefix(key, "var ")] = s
		return err
	case strings.HasPrefix(key, "prefix "):
		c.prefixes[strings.TrimPrefix(key, "prefix ")] = val
	default:
		return fmt.Errorf("unknown input key %q", key)
	}
	return nil
}

// runGolden runs every case of file through fn and compares its output
// with the expected one, or rewrites the file with -update.
func runGolden(t *testing.T, file string, fn func(t *testing.T, c *goldenCase) string) {
	cases := readGolden(t, file)
	var rewritten strings.Builder
	for _, c := range cases {
		var got string
		t.Run(c.name, func(t *testing.T) {
			got = strings.TrimRight(fn(t, c), "\n")
			if !*update && got != c.want {
				t.Errorf("input:\n%s\ngot:\n%s\nwant:\n%s", strings.Join(c.input, "\n"), got, c.want)
			}
		})
		fmt.Fprintf(&rewritten, "=== %s\n", c.name)
		for _, l := range c.input {
			rewritten.WriteString(l + "\n")
		}
		rewritten.WriteString("---\n" + got + "\n\n")
	}
	if *update {
		if err := os.WriteFile(file, []byte(strings.TrimRight(rewritten.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// mapResolver resolves from a map; an absent name is an error.
func mapResolver(vars map[string]string) Resolver {
	return ResolverFunc(func(ref string) (string, error) {
		v, ok := vars[ref]
		if !ok {
			return "", fmt.Errorf("undefined variable %q", ref)
		}
		return v, nil
	})
}
