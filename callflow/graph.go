package callflow

import (
	"fmt"
	"html"
	"maps"
	"slices"
	"strings"
)

// A flow as a picture (eslapp graph): its actions as nodes, its branches
// and next keys as edges labelled with the outcome, and what check would
// complain about marked on the picture rather than refused, so that a
// broken flow can be looked at too.

// Graph is one flow's actions and the ways between them.
type Graph struct {
	Flow  string
	Start string
	Nodes []GraphNode // the start first, then in the order they are reached, then the rest by id
	Edges []GraphEdge
}

// GraphNode is an action, or one of the two places a call goes when it
// leaves the flow (DialplanNode, and the transfer or hangup actions
// themselves, which end).
type GraphNode struct {
	ID      string
	Type    string // the action type; "" for DialplanNode and for an action that does not compile
	Caption string
	// Detail is the action's target where one helps: a transfer's
	// destination, a step's workflow.
	Detail string
	// Problems, each a short sentence: "nothing leads here", "no Default:
	// other outcomes go back to the dialplan", "does not compile".
	Problems []string
	Ends     bool // the call leaves the flow here (transfer, hangup, continue)
}

// GraphEdge is a way from one node to another.
type GraphEdge struct {
	From, To string
	Label    string // the outcome (OnSuccess, Default…) or "next"
	Missing  bool   // To names no action of the flow
	Implicit bool   // not written: a step's unwired outcomes going back to the dialplan
}

// DialplanNode is where a flow hands the call back to the dialplan: the
// target of continue, and of a step's outcomes without a branch.
const DialplanNode = "(dialplan)"

// FlowGraph draws flow name of cfgs; flows and errs are what CompileFlows
// made of them (partial when the configuration has errors: an action that
// did not compile is drawn as such, and each action carries the problems
// check reports at its keys).
func FlowGraph(name string, cfg FlowConfig, flows map[string]*Flow, errs FieldErrors) Graph {
	g := Graph{Flow: name, Start: cfg.Start}
	f := flows[name]
	compiled := func(id string) *Action {
		if f == nil {
			return nil
		}
		return f.Actions[id]
	}
	// Order: depth-first from the start, then the rest by id.
	var order []string
	seen := map[string]bool{}
	var visit func(id string)
	visit = func(id string) {
		if seen[id] || !hasKey(cfg.Actions, id) {
			return
		}
		seen[id] = true
		order = append(order, id)
		if a := compiled(id); a != nil {
			for _, t := range a.targets() {
				visit(t.to)
			}
		}
	}
	visit(cfg.Start)
	reached := maps.Clone(seen)
	for _, id := range slices.Sorted(maps.Keys(cfg.Actions)) {
		if !seen[id] {
			seen[id] = true
			order = append(order, id)
		}
	}
	// check's problems by action; an action that does not compile hides
	// where it leads, so "nothing leads here" is only certain without one.
	problems := map[string][]string{}
	broken := false
	for _, e := range errs {
		if len(e.Key) >= 4 && e.Key[0] == "flows" && e.Key[1] == name && e.Key[2] == "actions" {
			what := e.Msg
			if len(e.Key) > 4 {
				what = strings.Join(e.Key[4:], ".") + ": " + e.Msg
			}
			problems[e.Key[3]] = append(problems[e.Key[3]], what)
		}
	}
	for id := range cfg.Actions {
		broken = broken || compiled(id) == nil
	}
	toDialplan := false
	for _, id := range order {
		n := GraphNode{ID: id}
		a := compiled(id)
		n.Problems = append(n.Problems, problems[id]...)
		if a == nil {
			if len(problems[id]) == 0 {
				n.Problems = append(n.Problems, "does not compile (eslapp check says why)")
			}
		} else {
			n.Type, n.Caption, n.Detail, n.Ends = a.Type, a.Caption, nodeDetail(a), a.ends()
			for _, t := range a.targets() {
				label := "next"
				if len(t.key) == 2 && t.key[0] == "branches" {
					label = t.key[1]
				}
				g.Edges = append(g.Edges, GraphEdge{From: id, To: t.to, Label: label, Missing: !hasKey(cfg.Actions, t.to)})
			}
			switch node := a.node.(type) {
			case *stepNode:
				if _, ok := node.spec.Branches[Default]; !ok && node.ends() {
					n.Problems = append(n.Problems, "no Default: other outcomes go back to the dialplan")
					g.Edges = append(g.Edges, GraphEdge{From: id, To: DialplanNode, Label: "other outcomes", Implicit: true})
					toDialplan = true
				}
			case continueNode:
				g.Edges = append(g.Edges, GraphEdge{From: id, To: DialplanNode, Label: "continue"})
				toDialplan = true
			}
		}
		switch {
		case reached[id]:
		case broken:
			n.Problems = append(n.Problems, "not reached from the start (an action that does not compile may lead here)")
		default:
			n.Problems = append(n.Problems, "nothing leads here")
		}
		g.Nodes = append(g.Nodes, n)
	}
	if cfg.Start == "" || !hasKey(cfg.Actions, cfg.Start) {
		g.Nodes = append([]GraphNode{{ID: "(start)", Problems: []string{"start names no action"}}}, g.Nodes...)
	}
	if toDialplan {
		g.Nodes = append(g.Nodes, GraphNode{ID: DialplanNode, Ends: true})
	}
	return g
}

func nodeDetail(a *Action) string {
	switch n := a.node.(type) {
	case *stepNode:
		return n.spec.ConfigID.String() + " / " + n.spec.WorkflowID.String()
	case *transferNode:
		words := make([]string, len(n.destination))
		for i, w := range n.destination {
			words[i] = w.String()
		}
		if dest := strings.TrimSpace(strings.Join(words, " ")); dest != "" {
			return "to " + dest
		}
	}
	return ""
}

// Mermaid renders g as a Mermaid flowchart.
func (g Graph) Mermaid() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%%%% eslapp flow %q\nflowchart TD\n", g.Flow)
	ids := g.shortIDs()
	for _, n := range g.Nodes {
		open, close := "[", "]"
		switch {
		case n.ID == DialplanNode:
			open, close = "([", "])"
		case n.Type == TypeWorkflowExecute:
			open, close = "{{", "}}"
		case n.Ends:
			open, close = "([", "])"
		}
		fmt.Fprintf(&b, "  %s%s\"%s\"%s\n", ids[n.ID], open, mermaidText(n.lines()), close)
		if len(n.Problems) > 0 {
			fmt.Fprintf(&b, "  class %s problem\n", ids[n.ID])
		}
	}
	for _, e := range g.Edges {
		to := ids[e.To]
		if e.Missing {
			to = ids["missing:"+e.To]
			fmt.Fprintf(&b, "  %s[\"%s\"]\n  class %s problem\n", to, mermaidText([]string{e.To, "no such action"}), to)
		}
		arrow := "-->"
		if e.Implicit {
			arrow = "-.->"
		}
		fmt.Fprintf(&b, "  %s %s|%s| %s\n", ids[e.From], arrow, mermaidText([]string{e.Label}), to)
	}
	if g.Start != "" {
		if id, ok := ids[g.Start]; ok {
			fmt.Fprintf(&b, "  class %s start\n", id)
		}
	}
	b.WriteString("  classDef problem stroke:#c00,stroke-width:3px,color:#c00\n")
	b.WriteString("  classDef start stroke-width:3px\n")
	return b.String()
}

// DOT renders g for Graphviz.
func (g Graph) DOT() string {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n  rankdir=TB;\n  node [fontname=\"Helvetica\" fontsize=11];\n  edge [fontname=\"Helvetica\" fontsize=10];\n", dotString("eslapp flow "+g.Flow))
	for _, n := range g.Nodes {
		attrs := []string{"label=" + dotString(strings.Join(n.lines(), "\n"))}
		switch {
		case n.ID == DialplanNode || n.Ends:
			attrs = append(attrs, "shape=oval")
		case n.Type == TypeWorkflowExecute:
			attrs = append(attrs, "shape=hexagon")
		default:
			attrs = append(attrs, "shape=box")
		}
		if n.ID == g.Start {
			attrs = append(attrs, "penwidth=2.5")
		}
		if len(n.Problems) > 0 {
			attrs = append(attrs, "color=red", "fontcolor=red")
		}
		fmt.Fprintf(&b, "  %s [%s];\n", dotString(n.ID), strings.Join(attrs, " "))
	}
	for _, e := range g.Edges {
		if e.Missing {
			fmt.Fprintf(&b, "  %s [label=%s shape=box color=red fontcolor=red];\n", dotString("missing:"+e.To), dotString(e.To+"\nno such action"))
		}
		to := e.To
		if e.Missing {
			to = "missing:" + e.To
		}
		attrs := "label=" + dotString(e.Label)
		if e.Implicit {
			attrs += " style=dashed"
		}
		fmt.Fprintf(&b, "  %s -> %s [%s];\n", dotString(e.From), dotString(to), attrs)
	}
	b.WriteString("}\n")
	return b.String()
}

// lines is what a node's box says: its id and type, caption, detail and
// problems.
func (n GraphNode) lines() []string {
	if n.ID == DialplanNode {
		return []string{"back to the dialplan"}
	}
	head := n.ID
	if n.Type != "" {
		head += " · " + n.Type
	}
	out := []string{head}
	if n.Caption != "" {
		out = append(out, n.Caption)
	}
	if n.Detail != "" {
		out = append(out, n.Detail)
	}
	for _, p := range n.Problems {
		out = append(out, "⚠ "+p)
	}
	return out
}

// shortIDs names the nodes n0, n1, … for Mermaid, whose ids cannot hold
// every character an action id may.
func (g Graph) shortIDs() map[string]string {
	ids := map[string]string{}
	for i, n := range g.Nodes {
		ids[n.ID] = fmt.Sprintf("n%d", i)
	}
	k := len(g.Nodes)
	for _, e := range g.Edges {
		if e.Missing {
			if _, ok := ids["missing:"+e.To]; !ok {
				ids["missing:"+e.To] = fmt.Sprintf("n%d", k)
				k++
			}
		}
	}
	return ids
}

// mermaidText joins lines for a Mermaid label: quotes and markup as
// entities, lines with <br/>.
func mermaidText(lines []string) string {
	for i, l := range lines {
		l = html.EscapeString(l)
		l = strings.NewReplacer("&#34;", "#quot;", "&#39;", "#39;", "|", "#124;").Replace(l)
		lines[i] = l
	}
	return strings.Join(lines, "<br/>")
}

// dotString quotes s for DOT.
func dotString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
