package flowgraph

import (
	"strings"
	"testing"

	"github.com/eslapp/eslapp/callflow"
)

// Each renderer draws each shape of the model as its own figure. (Whole
// drawings are compared with cmd/eslapp's golden graphs.)
func TestShapes(t *testing.T) {
	figures := map[callflow.Shape]struct{ mermaid, dot, svg string }{
		callflow.ShapeAction: {`n0["a"]`, `shape=box`, `rx="4"`},
		callflow.ShapeStep:   {`n0{{"a"}}`, `shape=hexagon`, `<polygon`},
		callflow.ShapeEnd:    {`n0(["a"])`, `shape=oval`, `rx="16.0"`},
	}
	for shape, want := range figures {
		g := callflow.Graph{Flow: "f", Start: "a", Nodes: []callflow.GraphNode{{ID: "a", Shape: shape}}}
		if got := Mermaid(g); !strings.Contains(got, want.mermaid) {
			t.Errorf("shape %d: Mermaid has no %s:\n%s", shape, want.mermaid, got)
		}
		if got := DOT(g); !strings.Contains(got, want.dot) {
			t.Errorf("shape %d: DOT has no %s:\n%s", shape, want.dot, got)
		}
		if got := SVG(g); !strings.Contains(got, want.svg) {
			t.Errorf("shape %d: SVG has no %s:\n%s", shape, want.svg, got)
		}
	}
}
