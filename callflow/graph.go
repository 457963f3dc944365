package callflow

import (
	"maps"
	"slices"
	"strings"
)

// A flow as a graph (eslapp graph): its actions as nodes, its branches and
// next keys as edges labelled with the outcome, and what check would
// complain about marked on the nodes rather than refused, so that a broken
// flow can be looked at too. This is the model, data only; internal/flowgraph
// draws it (Mermaid, DOT, SVG).

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
	// Shape is the figure the node is drawn as, which its action's type
	// chooses; DialplanNode is ShapeEnd.
	Shape Shape
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

// Shape is how a graph shows a node; the renderer picks the figure.
type Shape int

const (
	ShapeAction Shape = iota // an action the flow goes on from (a box); also a node that did not compile
	ShapeStep                // a workflow_execute step (a hexagon)
	ShapeEnd                 // where the call leaves the flow (an oval)
)

// drawing is an action's node in its flow's graph, as its type describes
// it.
type drawing struct {
	shape  Shape
	detail string
	// exits are its ways back to the dialplan that no key of it names:
	// continue's, a step's outcomes without a branch.
	exits []exit
}

// exit is a way from an action back to the dialplan (DialplanNode).
type exit struct {
	label    string
	implicit bool   // drawn dashed: nothing in the flow says so (a step's unwired outcomes)
	problem  string // what the graph marks on the action for it ("" nothing)
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
			d := a.drawing()
			n.Type, n.Caption, n.Detail, n.Shape, n.Ends = a.Type, a.Caption, d.detail, d.shape, a.ends()
			for _, t := range a.targets() {
				label := "next"
				if len(t.key) == 2 && t.key[0] == "branches" {
					label = t.key[1]
				}
				g.Edges = append(g.Edges, GraphEdge{From: id, To: t.to, Label: label, Missing: !hasKey(cfg.Actions, t.to)})
			}
			for _, x := range d.exits {
				if x.problem != "" {
					n.Problems = append(n.Problems, x.problem)
				}
				g.Edges = append(g.Edges, GraphEdge{From: id, To: DialplanNode, Label: x.label, Implicit: x.implicit})
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
		g.Nodes = append(g.Nodes, GraphNode{ID: DialplanNode, Shape: ShapeEnd, Ends: true})
	}
	return g
}
