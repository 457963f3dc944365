// Package flowgraph draws a flow's graph (callflow.Graph, made by
// callflow.FlowGraph) for eslapp graph: as a Mermaid flowchart, as DOT for
// Graphviz, and as a standalone SVG laid out here, with no browser or
// Graphviz needed.
//
// It owns notation and layout only: the figure each callflow.Shape is drawn
// as, labels, escaping, rows and arrows. It must not decide anything about a
// flow — which nodes and edges there are, their shapes, details and
// problems come from the graph model, which each action type describes —
// and it must not look at actions, configuration or calls.
package flowgraph
