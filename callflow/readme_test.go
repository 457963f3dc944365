package callflow

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The README's flow-mode action table is the action types' own: one row
// per registered type, its keys those the type takes, in its order.
func TestReadmeActionTable(t *testing.T) {
	rows := readmeTable(t, "### Flow mode", "| `type` | keys | does |")
	for _, name := range slices.Sorted(maps.Keys(actionTypes)) {
		row, ok := rows["`"+name+"`"]
		if !ok {
			t.Errorf("README's action table has no row for %s", name)
			continue
		}
		want := actionTypes[name].keys()
		if got := backticked(row[0]); !slices.Equal(got, want) {
			t.Errorf("README's %s row lists the keys %v; the type takes %v:\n| `%s` | %s |", name, got, want, name, "`"+strings.Join(want, "`, `")+"`")
		}
		delete(rows, "`"+name+"`")
	}
	for name := range rows {
		t.Errorf("README's action table has a row for %s, which is no action type", name)
	}
}

// The README's dialplan-mode table of channel variables lists every input
// of a step that has one, and no other wfe_ variable but wfe_flow. (Every
// input's flow key is in the README's workflow_execute row: the type's keys
// are its inputs', and TestReadmeActionTable checks the row.)
func TestReadmeStepInputs(t *testing.T) {
	rows := readmeTable(t, "### Dialplan mode", "| channel variable (read) | meaning |")
	listed := map[string]bool{}
	for first := range rows {
		for _, v := range backticked(first) {
			listed[v] = true
		}
	}
	for _, in := range stepInputs {
		if in.wfe != "" && !listed[in.wfe] {
			t.Errorf("README's dialplan-mode table does not list %s (the step's %s)", in.wfe, in.key)
		}
		delete(listed, in.wfe)
	}
	delete(listed, "wfe_flow")
	for v := range listed {
		t.Errorf("README's dialplan-mode table lists %s, which is no step input", v)
	}
}

// readmeTable returns the rows of the first table with header under the
// README's heading, by their first cell; each holds the other cells.
func readmeTable(t *testing.T, heading, header string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README has no %q", heading)
	}
	section, _, _ = strings.Cut(section, "\n#")
	_, table, ok := strings.Cut(section, "\n"+header+"\n")
	if !ok {
		t.Fatalf("README's %q has no table %q", heading, header)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(table, "\n")[1:] { // after |---|
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[cells[0]] = cells[1:]
	}
	return rows
}

// backticked lists the `code` spans of a cell, in order.
func backticked(cell string) []string {
	var out []string
	for _, m := range backtickRE.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

var backtickRE = regexp.MustCompile("`([^`]*)`")
