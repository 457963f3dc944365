package flowgraph

import (
	"fmt"
	"html"
	"strings"

	"github.com/eslapp/eslapp/callflow"
)

// Mermaid renders g as a Mermaid flowchart.
func Mermaid(g callflow.Graph) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%%%% eslapp flow %q\nflowchart TD\n", g.Flow)
	ids := shortIDs(g)
	for _, n := range g.Nodes {
		open, close := "[", "]"
		switch n.Shape {
		case callflow.ShapeStep:
			open, close = "{{", "}}"
		case callflow.ShapeEnd:
			open, close = "([", "])"
		}
		fmt.Fprintf(&b, "  %s%s\"%s\"%s\n", ids[n.ID], open, mermaidText(lines(n)), close)
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
func DOT(g callflow.Graph) string {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n  rankdir=TB;\n  node [fontname=\"Helvetica\" fontsize=11];\n  edge [fontname=\"Helvetica\" fontsize=10];\n", dotString("eslapp flow "+g.Flow))
	for _, n := range g.Nodes {
		attrs := []string{"label=" + dotString(strings.Join(lines(n), "\n"))}
		switch {
		case n.Shape == callflow.ShapeEnd || n.Ends:
			// Graphviz draws every node the call can leave the flow at as
			// an oval, a step whose outcomes go back to the dialplan too.
			attrs = append(attrs, "shape=oval")
		case n.Shape == callflow.ShapeStep:
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
func lines(n callflow.GraphNode) []string {
	if n.ID == callflow.DialplanNode {
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
func shortIDs(g callflow.Graph) map[string]string {
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
