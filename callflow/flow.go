package callflow

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/eslapp/eslapp/conf"
	"github.com/eslapp/eslapp/prompts"
)

// FlowConfig is [flows.NAME] as decoded from the configuration. Each
// action's table stays undecoded until its type reads it (see action.go).
type FlowConfig struct {
	Start   string                    `toml:"start"`
	Actions map[string]toml.Primitive `toml:"actions"`
}

// FieldError and FieldErrors are the configuration's problems.
type (
	FieldError  = conf.FieldError
	FieldErrors = conf.FieldErrors
)

// Flow is a compiled, checked flow.
type Flow struct {
	Name    string
	Start   string
	Actions map[string]*Action
	// Reads are the variables (lower case) the flow's templates read: the
	// channel variables a call must keep for it (see Engine.ChannelVars).
	Reads map[string]bool
}

// Sequences calls fn for every prompt sequence of the flow, with its key
// (for checking the sounds it plays).
func (f *Flow) Sequences(fn func(key []string, seq *Sequence)) {
	for _, id := range slices.Sorted(maps.Keys(f.Actions)) {
		seqs := f.Actions[id].sequences()
		for _, k := range slices.Sorted(maps.Keys(seqs)) {
			if seqs[k] != nil {
				fn([]string{"flows", f.Name, "actions", id, k}, seqs[k])
			}
		}
	}
}

// CompileFlows decodes, checks and compiles every flow, and returns
// FieldErrors naming each problem's key; with errors, the flows are what
// did compile, for checks that go on (the sounds they play). md is the
// configuration's TOML
// metadata: each action's type decodes its own table from it, and sees
// which keys were written. Keys no type reads are reported here.
func CompileFlows(md *toml.MetaData, cfgs map[string]FlowConfig, renderer *prompts.Renderer) (map[string]*Flow, error) {
	flows := make(map[string]*Flow, len(cfgs))
	var errs FieldErrors
	for _, name := range slices.Sorted(maps.Keys(cfgs)) {
		c := &compiler{name: name, md: md, renderer: renderer}
		flows[name] = c.compile(cfgs[name])
		errs = append(errs, c.errs...)
	}
	errs = append(errs, undecodedActionKeys(md, cfgs)...)
	if len(errs) > 0 {
		return flows, errs
	}
	return flows, nil
}

// undecodedActionKeys reports the keys of action tables that their type
// does not take: one pass over the configuration's undecoded keys.
func undecodedActionKeys(md *toml.MetaData, cfgs map[string]FlowConfig) FieldErrors {
	var errs FieldErrors
	for _, k := range md.Undecoded() {
		if len(k) < 5 || k[0] != "flows" || k[2] != "actions" {
			continue
		}
		flow, ok := cfgs[k[1]]
		if !ok {
			continue
		}
		if _, ok := flow.Actions[k[3]]; !ok {
			continue
		}
		var head actionHead
		_ = md.PrimitiveDecode(flow.Actions[k[3]], &head)
		t, known := actionTypes[head.Type]
		if !known {
			continue // reported at the type
		}
		keys := t.keys()
		if slices.Contains(keys, k[4]) {
			// Inside a key the type takes as a whole (a mapping's
			// inline table): its compile checks what is in it.
			continue
		}
		list := "none"
		if len(keys) > 0 {
			list = strings.Join(keys, ", ")
		}
		errs.Add(k[:5], fmt.Sprintf("not used by a %s action (its keys: %s)", head.Type, list))
	}
	return errs
}

// actionHead is what every action table has.
type actionHead struct {
	Type    string `toml:"type"`
	Caption string `toml:"caption"`
}

// compiler checks one flow.
type compiler struct {
	name     string
	md       *toml.MetaData
	renderer *prompts.Renderer
	errs     FieldErrors
}

func (c *compiler) errorf(key []string, format string, args ...any) {
	c.errs.Add(append([]string{"flows", c.name}, key...), fmt.Sprintf(format, args...))
}

func (c *compiler) compile(cfg FlowConfig) *Flow {
	f := &Flow{Name: c.name, Start: cfg.Start, Actions: make(map[string]*Action, len(cfg.Actions)), Reads: map[string]bool{}}
	if !isFlowName(c.name) {
		c.errorf(nil, "flow names are letters, digits, '_' and '-'")
	}
	if len(cfg.Actions) == 0 {
		c.errorf([]string{"actions"}, "a flow needs at least one action")
		return f
	}
	switch _, ok := cfg.Actions[cfg.Start]; {
	case cfg.Start == "":
		c.errorf([]string{"start"}, "missing: name the first action")
	case !ok:
		c.errorf([]string{"start"}, "no action %q in this flow", cfg.Start)
	}
	for _, id := range slices.Sorted(maps.Keys(cfg.Actions)) {
		if a := c.action(id, cfg.Actions[id]); a != nil {
			f.Actions[id] = a
		}
	}
	for _, id := range slices.Sorted(maps.Keys(f.Actions)) {
		for _, t := range f.Actions[id].targets() {
			if _, ok := f.Actions[t.to]; !ok && hasKey(cfg.Actions, t.to) {
				continue // the target exists but did not compile: reported there
			} else if !ok {
				c.errorf(append([]string{"actions", id}, t.key...), "no action %q in this flow", t.to)
			}
		}
	}
	if len(c.errs) == 0 {
		c.checkGraph(f)
	}
	for _, a := range f.Actions {
		for _, roots := range a.reads() {
			for _, r := range roots {
				f.Reads[lowerASCII(r)] = true
			}
		}
	}
	return f
}

func (c *compiler) action(id string, prim toml.Primitive) *Action {
	key := []string{"flows", c.name, "actions", id}
	if !isFlowName(id) {
		c.errorf(key[2:], "action ids are letters, digits, '_' and '-'")
	}
	var head actionHead
	if err := c.md.PrimitiveDecode(prim, &head); err != nil {
		c.errorf(key[2:], "%v", strings.TrimPrefix(err.Error(), "toml: "))
		return nil
	}
	t, ok := actionTypes[head.Type]
	if !ok {
		if head.Type == "" {
			c.errorf(append(key[2:], "type"), "missing: one of %s", strings.Join(slices.Sorted(maps.Keys(actionTypes)), ", "))
		} else {
			c.errorf(append(key[2:], "type"), "unknown action type %q (one of %s)", head.Type, strings.Join(slices.Sorted(maps.Keys(actionTypes)), ", "))
		}
		return nil
	}
	d := &decoder{md: c.md, prim: prim, key: key, caption: head.Caption, renderer: c.renderer, errs: &c.errs}
	a := t.compile(d)
	if a == nil {
		return nil
	}
	return &Action{ID: id, Type: head.Type, Caption: head.Caption, actionType: a}
}

// checkGraph finds actions nothing reaches and actions from which the flow
// cannot end.
func (c *compiler) checkGraph(f *Flow) {
	reached := map[string]bool{}
	var visit func(id string)
	visit = func(id string) {
		if reached[id] {
			return
		}
		reached[id] = true
		for _, t := range f.Actions[id].targets() {
			visit(t.to)
		}
	}
	if _, ok := f.Actions[f.Start]; !ok {
		return
	}
	visit(f.Start)
	for _, id := range slices.Sorted(maps.Keys(f.Actions)) {
		if !reached[id] {
			c.errorf([]string{"actions", id}, "no action leads here, and it is not the start")
		}
	}
	// canEnd: fixed point over "ends, or leads to an action that can end".
	canEnd := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for id, a := range f.Actions {
			if canEnd[id] {
				continue
			}
			ok := a.ends()
			for _, t := range a.targets() {
				ok = ok || canEnd[t.to]
			}
			if ok {
				canEnd[id], changed = true, true
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(f.Actions)) {
		if reached[id] && !canEnd[id] {
			c.errorf([]string{"actions", id}, "the flow cannot end from here: every path loops without reaching transfer, continue or hangup")
		}
	}
}

func isFlowName(s string) bool { return isName(s, 64, "_-", true) }

// isName reports whether s is 1 to max bytes of digits, upper-case letters,
// lower-case letters when lower, and the bytes of extra.
func isName(s string, max int, extra string, lower bool) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, r := range s {
		ok := 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || lower && 'a' <= r && r <= 'z' || strings.ContainsRune(extra, r)
		if !ok {
			return false
		}
	}
	return true
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}

// Lint returns warnings about a compiled flow: references to variables
// the flow never sets and that are not built in. Such a variable must come
// from the channel (the dialplan) — or it is a typo, which renders empty at
// run time. Keys are like FieldError's.
func Lint(flows map[string]*Flow) FieldErrors {
	var warns FieldErrors
	for _, name := range slices.Sorted(maps.Keys(flows)) {
		f := flows[name]
		known := map[string]bool{"wfe_branch": true, "wfe_elapsed_ms": true}
		for _, b := range builtinVars {
			known[lowerASCII(b.name)] = true
		}
		for _, a := range f.Actions {
			for _, v := range a.writes() {
				known[lowerASCII(v)] = true
			}
		}
		for _, id := range slices.Sorted(maps.Keys(f.Actions)) {
			reads := f.Actions[id].reads()
			for _, key := range slices.Sorted(maps.Keys(reads)) {
				for _, r := range reads[key] {
					if !known[lowerASCII(r)] && !strings.HasPrefix(r, "wfe_") {
						warns.Add([]string{"flows", name, "actions", id, key},
							fmt.Sprintf("{%s} is not set by this flow: it must be a channel variable, or it renders empty", r))
					}
				}
			}
		}
	}
	return warns
}
