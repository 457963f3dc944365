package flowgraph

import (
	"fmt"
	"html"
	"strings"
	"unicode/utf8"

	"github.com/eslapp/eslapp/callflow"
)

// SVG draws a flow without a browser or Graphviz: a small layered layout.
// Each node goes on the row of its shortest distance from the start (the
// actions nothing reaches below them, the dialplan at the bottom); a row's
// nodes in the order they are first reached. An edge down the rows is a
// straight arrow; one back up or along a row (a loop) curves around the
// right-hand side.

const (
	svgCharW    = 7.0 // average glyph width of 12 px sans-serif
	svgLineH    = 16.0
	svgPadX     = 12.0
	svgPadY     = 8.0
	svgGapX     = 40.0
	svgGapY     = 64.0
	svgMargin   = 24.0
	svgMaxChars = 44 // a box is at most this many glyphs wide
)

type svgBox struct {
	id      string
	lines   []string
	x, y    float64 // top left
	w, h    float64
	row     int
	problem bool
	shape   string // box, hex, oval
	start   bool
}

func (b *svgBox) cx() float64 { return b.x + b.w/2 }

// SVG renders g as a standalone SVG document.
func SVG(g callflow.Graph) string {
	boxes, order := svgBoxes(g)
	rows := svgRows(g, boxes, order)

	// Rows top to bottom, each centred on the widest.
	width := 0.0
	for _, row := range rows {
		w := -svgGapX
		for _, b := range row {
			w += b.w + svgGapX
		}
		width = max(width, w)
	}
	leftRoom := 0.0
	for _, e := range g.Edges {
		if f, t := boxes[e.From], boxes[edgeTarget(e)]; f != nil && t != nil && t.row > f.row+1 {
			leftRoom = 80
		}
	}
	y := svgMargin + 20
	for _, row := range rows {
		w, h := -svgGapX, 0.0
		for _, b := range row {
			w += b.w + svgGapX
			h = max(h, b.h)
		}
		x := svgMargin + leftRoom + (width-w)/2
		for _, b := range row {
			b.x, b.y = x, y+(h-b.h)/2
			x += b.w + svgGapX
		}
		y += h + svgGapY
	}
	loopRoom := 0.0
	for _, e := range g.Edges {
		if f, t := boxes[e.From], boxes[edgeTarget(e)]; f != nil && t != nil && (t.row < f.row || t == f) {
			loopRoom = 90
		}
	}
	totalW := width + 2*svgMargin + leftRoom + loopRoom
	totalH := y - svgGapY + svgMargin

	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", totalW, totalH, totalW, totalH)
	s.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>` + "\n")
	fmt.Fprintf(&s, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&s, `<text x="%.0f" y="%.0f" font-size="14" font-weight="bold">%s</text>`+"\n", svgMargin, svgMargin+4, svgEscape("flow "+g.Flow))

	// Edges under the nodes.
	for _, e := range g.Edges {
		f, t := boxes[e.From], boxes[edgeTarget(e)]
		if f == nil || t == nil {
			continue
		}
		dash := ""
		if e.Implicit {
			dash = ` stroke-dasharray="5,4"`
		}
		var path string
		var lx, ly float64
		if t.row > f.row+1 {
			// Down past other rows: around the left-hand side, clear of
			// the boxes between.
			x1, y1 := f.x, f.y+f.h/2
			x2, y2 := t.x, t.y+t.h/2
			out := svgMargin + 10
			path = fmt.Sprintf("M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f", x1, y1, out, y1, out, y2, x2, y2)
			lx, ly = out+24, (y1+y2)/2
		} else if t.row > f.row {
			x1, y1, x2, y2 := f.cx(), f.y+f.h, t.cx(), t.y
			path = fmt.Sprintf("M%.1f,%.1f L%.1f,%.1f", x1, y1, x2, y2)
			lx, ly = x1+(x2-x1)*0.5, y1+(y2-y1)*0.5
		} else if f == t {
			// A step back to itself: a loop on its right side.
			x, y1, y2 := f.x+f.w, f.y+f.h/2-8, f.y+f.h/2+8
			path = fmt.Sprintf("M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f", x, y1, x+50, y1-24, x+50, y2+24, x, y2)
			lx, ly = x+44, f.y+f.h/2+4
		} else if t.row == f.row {
			// Along the row: a curve under it.
			x1, y1, x2, y2 := f.cx(), f.y+f.h, t.cx(), t.y+t.h
			dip := max(y1, y2) + svgGapY*0.6
			path = fmt.Sprintf("M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f", x1, y1, x1, dip, x2, dip, x2, y2)
			lx, ly = (x1+x2)/2, dip-4
		} else {
			// Back up the rows: around the right-hand side.
			x1, y1 := f.x+f.w, f.y+f.h/2
			x2, y2 := t.x+t.w, t.y+t.h/2
			out := max(x1, x2) + 70
			path = fmt.Sprintf("M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f", x1, y1, out, y1, out, y2, x2, y2)
			lx, ly = out-16, (y1+y2)/2
		}
		fmt.Fprintf(&s, `<path d="%s" fill="none" stroke="#444" stroke-width="1.3"%s marker-end="url(#arrow)"/>`+"\n", path, dash)
		lw := float64(utf8.RuneCountInString(e.Label))*svgCharW*0.9 + 8
		fmt.Fprintf(&s, `<rect x="%.1f" y="%.1f" width="%.1f" height="15" fill="white" opacity="0.9"/>`, lx-lw/2, ly-11, lw)
		fmt.Fprintf(&s, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11" fill="#225">%s</text>`+"\n", lx, ly, svgEscape(e.Label))
	}

	for _, id := range order {
		b := boxes[id]
		stroke, sw := "#333", 1.2
		if b.start {
			sw = 2.5
		}
		if b.problem {
			stroke, sw = "#c00", 2.5
		}
		switch b.shape {
		case "oval":
			fmt.Fprintf(&s, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="%.1f" fill="#f4f4f4" stroke="%s" stroke-width="%.1f"/>`+"\n", b.x, b.y, b.w, b.h, b.h/2, stroke, sw)
		case "hex":
			d := 10.0
			fmt.Fprintf(&s, `<polygon points="%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="#eef4ff" stroke="%s" stroke-width="%.1f"/>`+"\n",
				b.x+d, b.y, b.x+b.w-d, b.y, b.x+b.w, b.y+b.h/2, b.x+b.w-d, b.y+b.h, b.x+d, b.y+b.h, b.x, b.y+b.h/2, stroke, sw)
		default:
			fmt.Fprintf(&s, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="4" fill="#fff" stroke="%s" stroke-width="%.1f"/>`+"\n", b.x, b.y, b.w, b.h, stroke, sw)
		}
		for i, l := range b.lines {
			weight, fill := "", "#111"
			if i == 0 {
				weight = ` font-weight="bold"`
			}
			if strings.HasPrefix(l, "⚠") {
				fill = "#c00"
			}
			fmt.Fprintf(&s, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s"%s>%s</text>`+"\n", b.cx(), b.y+svgPadY+svgLineH*float64(i)+11, fill, weight, svgEscape(l))
		}
	}
	s.WriteString("</svg>\n")
	return s.String()
}

// edgeTarget is the box an edge points at: a missing action has its own.
func edgeTarget(e callflow.GraphEdge) string {
	if e.Missing {
		return "missing:" + e.To
	}
	return e.To
}

// svgBoxes sizes a box per node and per missing target, in drawing order.
func svgBoxes(g callflow.Graph) (map[string]*svgBox, []string) {
	boxes := map[string]*svgBox{}
	var order []string
	add := func(id string, lines []string, problem bool, shape string) {
		if boxes[id] != nil {
			return
		}
		lines = wrapLines(lines, svgMaxChars)
		w := 0.0
		for _, l := range lines {
			w = max(w, float64(utf8.RuneCountInString(l))*svgCharW)
		}
		pad := svgPadX
		if shape == "hex" {
			pad += 10
		}
		boxes[id] = &svgBox{id: id, lines: lines, w: w + 2*pad, h: float64(len(lines))*svgLineH + 2*svgPadY, problem: problem, shape: shape, start: id == g.Start}
		order = append(order, id)
	}
	for _, n := range g.Nodes {
		shape := "box"
		switch n.Shape {
		case callflow.ShapeStep:
			shape = "hex"
		case callflow.ShapeEnd:
			shape = "oval"
		}
		add(n.ID, lines(n), len(n.Problems) > 0, shape)
	}
	for _, e := range g.Edges {
		if e.Missing {
			add("missing:"+e.To, []string{e.To, "⚠ no such action"}, true, "box")
		}
	}
	return boxes, order
}

// svgRows places the boxes on rows by their distance from the start.
func svgRows(g callflow.Graph, boxes map[string]*svgBox, order []string) [][]*svgBox {
	dist := map[string]int{}
	if boxes[g.Start] != nil {
		dist[g.Start] = 0
		queue := []string{g.Start}
		for len(queue) > 0 {
			id := queue[0]
			queue = queue[1:]
			for _, e := range g.Edges {
				to := edgeTarget(e)
				if e.From != id || to == callflow.DialplanNode {
					continue
				}
				if _, seen := dist[to]; !seen {
					dist[to] = dist[id] + 1
					queue = append(queue, to)
				}
			}
		}
	}
	last := 0
	for _, d := range dist {
		last = max(last, d)
	}
	unreached := last + 1
	for _, id := range order {
		if id == callflow.DialplanNode {
			continue
		}
		if _, ok := dist[id]; !ok {
			dist[id] = unreached
		}
	}
	bottom := 0
	for _, d := range dist {
		bottom = max(bottom, d)
	}
	if boxes[callflow.DialplanNode] != nil {
		dist[callflow.DialplanNode] = bottom + 1
	}
	var rows [][]*svgBox
	for _, id := range order {
		d := dist[id]
		for len(rows) <= d {
			rows = append(rows, nil)
		}
		boxes[id].row = d
		rows[d] = append(rows[d], boxes[id])
	}
	out := rows[:0]
	for _, r := range rows {
		if len(r) > 0 {
			out = append(out, r)
		}
	}
	for i, r := range out {
		for _, b := range r {
			b.row = i
		}
	}
	return out
}

func svgEscape(s string) string { return html.EscapeString(s) }

// wrapLines breaks lines longer than width runes at spaces (a word longer
// than width is cut with an ellipsis).
func wrapLines(lines []string, width int) []string {
	var out []string
	for _, l := range lines {
		var cur []rune
		for _, word := range strings.Fields(l) {
			w := []rune(word)
			if len(w) > width {
				w = append(w[:width-1], '…')
			}
			if len(cur) > 0 && len(cur)+1+len(w) > width {
				out = append(out, string(cur))
				cur = nil
			}
			if len(cur) > 0 {
				cur = append(cur, ' ')
			}
			cur = append(cur, w...)
		}
		out = append(out, string(cur))
	}
	return out
}
