package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/eslapp/eslapp/callflow"
	"github.com/eslapp/eslapp/conf"
	"github.com/eslapp/eslapp/internal/flowgraph"
	"github.com/eslapp/eslapp/prompts"
)

// graphCmd is eslapp graph: a flow of the configuration as Mermaid, DOT or
// SVG on stdout. It draws a configuration check would refuse too, with
// the problems marked, and says on stderr that check has more to say.
func graphCmd(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("eslapp graph", flag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("config", conf.DefaultPath, "configuration `file`")
	flowName := flags.String("flow", "", "the flow to draw (default: the only one)")
	format := flags.String("format", "mermaid", "mermaid, dot or svg")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	explicit := false
	flags.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	src, err := load(*configPath, explicit)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	names := slices.Sorted(maps.Keys(src.cfg.Flows))
	name := *flowName
	switch {
	case len(names) == 0:
		fmt.Fprintf(stderr, "%s has no flows\n", src.name)
		return 1
	case name == "" && len(names) > 1:
		fmt.Fprintf(stderr, "%s has %d flows (%s): name one with -flow\n", src.name, len(names), strings.Join(names, ", "))
		return 2
	case name == "":
		name = names[0]
	}
	cfg, ok := src.cfg.Flows[name]
	if !ok {
		fmt.Fprintf(stderr, "%s has no flow %q (its flows: %s)\n", src.name, name, strings.Join(names, ", "))
		return 1
	}
	// The flows as a call would run them, as far as they compile: the
	// sounds need not exist for a picture.
	renderer, err := prompts.NewRenderer(prompts.RenderConfig{SoundsDir: "/"})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	flows, cerr := callflow.CompileFlows(&src.md, src.cfg.Flows, renderer)
	var problems callflow.FieldErrors
	errors.As(cerr, &problems)
	g := callflow.FlowGraph(name, cfg, flows, problems)
	switch *format {
	case "mermaid":
		io.WriteString(stdout, flowgraph.Mermaid(g))
	case "dot":
		io.WriteString(stdout, flowgraph.DOT(g))
	case "svg":
		io.WriteString(stdout, flowgraph.SVG(g))
	default:
		fmt.Fprintf(stderr, "eslapp graph: -format %q: mermaid, dot or svg\n", *format)
		return 2
	}
	if cerr != nil {
		fmt.Fprintf(stderr, "%s: the flows have problems (marked where they show); eslapp check lists them\n", src.name)
	}
	return 0
}
