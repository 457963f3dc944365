package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/eslapp/eslapp/conf"
)

// A file over the size limit and a key nested too deep are refused before
// the decoder sees them, with the line.
func TestConfigLimits(t *testing.T) {
	_, err := parseSource("big.toml", strings.Repeat("# padding\n", conf.MaxConfigBytes/10+1), ".")
	if err == nil || !strings.Contains(err.Error(), "big.toml: ") || !strings.Contains(err.Error(), "over the limit of 16 MiB") {
		t.Errorf("big file: %v", err)
	}
	deep := "[server]\nlisten = \"127.0.0.1:0\"\n\n" + strings.Repeat("a.", 4000) + "b = 1\n"
	_, err = parseSource("deep.toml", deep, ".")
	if err == nil || !strings.HasPrefix(err.Error(), "deep.toml:4: server.a.a...: keys and values nested more than 64 deep") {
		t.Errorf("deep key: %v", err)
	}
	nested := "x = " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n"
	if _, err = parseSource("nested.toml", nested, "."); err == nil || !strings.HasPrefix(err.Error(), "nested.toml:1: x: keys and values nested") {
		t.Errorf("nested arrays: %v", err)
	}
	inline := "x = " + strings.Repeat("{a=", 70) + "1" + strings.Repeat("}", 70) + "\n"
	if _, err = parseSource("inline.toml", inline, "."); err == nil || !strings.HasPrefix(err.Error(), "inline.toml:1: ") {
		t.Errorf("nested inline tables: %v", err)
	}
}

// BenchmarkCheckTenants is eslapp check (read, decode, key lines, build)
// of a configuration with n tenants, each with its own fixture
// integration: the review's multi-tenant file, whose check used to grow
// with the square of its size.
func BenchmarkCheckTenants(b *testing.B) {
	for _, n := range []int{10_000, 20_000, 120_000} {
		var doc strings.Builder
		doc.WriteString("[prompts]\nhold_music = \"\"\n")
		for i := range n {
			fmt.Fprintf(&doc, "[tenants.t%d]\nagent_integrations = true\n", i)
		}
		for i := range n / 10 {
			fmt.Fprintf(&doc, "[integrations.crm%d]\nkind = \"fixture\"\ntenant = \"t%d\"\n[[integrations.crm%d.workflows.lookup.rules]]\nbody = '{}'\n", i, i, i)
		}
		text := doc.String()
		b.Run(fmt.Sprintf("tenants=%d/bytes=%d", n, len(text)), func(b *testing.B) {
			for b.Loop() {
				_, built, err := parseConfig("bench.toml", text, ".", nil)
				if err != nil {
					b.Fatal(err)
				}
				built.close()
			}
		})
	}
}
