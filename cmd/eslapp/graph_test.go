package main

import (
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of testdata/")

// eslapp graph draws the shipped demo flow and a broken flow in each
// format; the output is compared with testdata/graph/*.
func TestGraphGolden(t *testing.T) {
	root := filepath.Join("..", "..")
	for _, tc := range []struct{ config, flow, golden string }{
		{filepath.Join(root, "conf", "eslapp.toml"), "demo", "demo"},
		{filepath.Join("testdata", "graph", "broken.toml"), "broken", "broken"},
	} {
		for _, format := range []string{"mermaid", "dot", "svg"} {
			t.Run(tc.golden+"."+format, func(t *testing.T) {
				code, out, errOut := runCmd(t, "graph", "-config", tc.config, "-flow", tc.flow, "-format", format)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errOut)
				}
				if tc.golden == "broken" && !strings.Contains(errOut, "eslapp check lists them") {
					t.Errorf("stderr does not point at check: %q", errOut)
				}
				if format == "svg" {
					checkXML(t, out)
				}
				ext := map[string]string{"mermaid": ".mmd", "dot": ".dot", "svg": ".svg"}[format]
				checkGolden(t, filepath.Join("testdata", "graph", tc.golden+ext), out)
			})
		}
	}
}

// checkGolden compares got with the golden file at path, or rewrites the
// file with -update.
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test ./cmd/eslapp -update rewrites it):\n%s", path, got)
	}
}

func checkXML(t *testing.T, doc string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
	}
}

// The flow to draw must be named when there are several; bad formats and
// unknown flows are refused.
func TestGraphArguments(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "two.toml")
	writeFile(t, cfg, "[prompts]\nhold_music = \"\"\n[flows.a]\nstart = \"x\"\n[flows.a.actions.x]\ntype = \"continue\"\n[flows.b]\nstart = \"x\"\n[flows.b.actions.x]\ntype = \"continue\"\n")
	if code, _, errOut := runCmd(t, "graph", "-config", cfg); code != 2 || !strings.Contains(errOut, "has 2 flows (a, b): name one with -flow") {
		t.Errorf("no -flow: exit %d %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, "graph", "-config", cfg, "-flow", "nope"); code != 1 || !strings.Contains(errOut, `no flow "nope"`) {
		t.Errorf("unknown flow: exit %d %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, "graph", "-config", cfg, "-flow", "a", "-format", "png"); code != 2 || !strings.Contains(errOut, "mermaid, dot or svg") {
		t.Errorf("bad format: exit %d %q", code, errOut)
	}
}
