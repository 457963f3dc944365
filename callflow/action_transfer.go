package callflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode"

	"github.com/eslapp/eslapp/conf"
	"github.com/eslapp/eslapp/crm"
	"github.com/eslapp/eslapp/esl"
)

// transfer: sets the outputs (they travel with the call), then transfers
// it to "EXT [DIALPLAN] CONTEXT".

type transferConfig struct {
	Destination string `toml:"destination"`
}

type transferNode struct {
	// destination is "EXT [DIALPLAN] CONTEXT", a template per word: a value
	// from a variable fills one word and cannot add others.
	destination []*Template
}

func (*transferNode) keys() []string { return []string{"destination"} }

func (*transferNode) compile(d *decoder) actionType {
	var cfg transferConfig
	if !d.decode(&cfg) {
		return nil
	}
	key := []string{"destination"}
	d.require("destination", cfg.Destination)
	words := strings.Fields(cfg.Destination)
	if cfg.Destination != "" && (len(words) < 2 || len(words) > 3) {
		d.errorf(key, "transfer destination %q: want \"EXTENSION XML CONTEXT\"", cfg.Destination)
	}
	n := &transferNode{}
	literal := true
	for _, w := range words {
		t := d.template(key, w)
		n.destination = append(n.destination, t)
		literal = literal && t != nil && len(t.Refs()) == 0
	}
	if literal && len(words) >= 2 && len(words) <= 3 {
		if _, _, _, err := ParseDestination(cfg.Destination); err != nil {
			d.errorf(key, "%v", err)
		}
	}
	return n
}

func (n *transferNode) targets() []target { return nil }
func (n *transferNode) ends() bool        { return true }
func (n *transferNode) reads() map[string][]string {
	r := readsOf{}
	for _, w := range n.destination {
		r.add("destination", w.Refs())
	}
	return r
}

func (n *transferNode) writes() []string                { return nil }
func (n *transferNode) sequences() map[string]*Sequence { return nil }

// drawing: an end, naming the destination as written.
func (n *transferNode) hold(*call) hold { return hold{} }

func (n *transferNode) drawing() drawing {
	d := drawing{shape: ShapeEnd}
	words := make([]string, len(n.destination))
	for i, w := range n.destination {
		words[i] = w.String()
	}
	if dest := strings.TrimSpace(strings.Join(words, " ")); dest != "" {
		d.detail = "to " + dest
	}
	return d
}

func (n *transferNode) run(ctx context.Context, c *call, log *slog.Logger) string {
	dest, err := c.destination(n.destination)
	var ext, dp, cx string
	if err == nil {
		ext, dp, cx, err = ParseDestination(dest)
	}
	if err != nil {
		log.Error("transfer destination unusable; handing the call back", "err", err)
		c.fail(crm.OnError, err.Error())
		c.e.leave(ctx, c)
		return ""
	}
	if err := c.flushOutputs(ctx); err != nil {
		log.Warn("outputs not set", "err", err)
	}
	c.left = true // on its way: a shutdown must not hand the call back as well
	if err := c.ch.Transfer(ctx, ext, dp, cx); err != nil && ctx.Err() == nil {
		log.Error("transfer failed; handing the call back", "err", err)
		c.left = false
		c.e.leave(ctx, c)
	}
	return ""
}

// destination renders a transfer destination word by word: a word whose
// value is empty or holds white space is refused, so that a value cannot
// choose the dialplan or the context.
func (c *call) destination(words []*Template) (string, error) {
	out := make([]string, len(words))
	raw := make([]string, len(words))
	bad := -1
	for i, w := range words {
		v, warnings := w.Render(c.vars)
		raw[i] = v
		v = strings.TrimSpace(v)
		for _, warn := range warnings {
			c.log.Warn("transfer: unknown value", "warning", warn)
		}
		if bad < 0 && (v == "" || strings.ContainsFunc(v, unicode.IsSpace)) {
			bad = i
		}
		out[i] = v
	}
	if bad >= 0 {
		return "", fmt.Errorf("transfer destination %q: %s must give one word", conf.Clip(strings.Join(raw, " "), 200), words[bad].String())
	}
	dest := strings.Join(out, " ")
	if _, _, _, err := ParseDestination(dest); err != nil {
		return "", fmt.Errorf("transfer destination %q: %w", conf.Clip(strings.Join(raw, " "), 200), errors.Unwrap(err))
	}
	return dest, nil
}

// ParseDestination splits a transfer destination "EXT [DIALPLAN] CONTEXT"
// (dialplan defaults to XML) and checks each word.
func ParseDestination(s string) (ext, dialplan, context string, err error) {
	f := strings.Fields(s)
	switch len(f) {
	case 2:
		ext, dialplan, context = f[0], "XML", f[1]
	case 3:
		ext, dialplan, context = f[0], f[1], f[2]
	default:
		return "", "", "", fmt.Errorf("transfer destination %q: want \"EXTENSION XML CONTEXT\"", s)
	}
	if _, err := esl.TransferArg(ext, dialplan, context); err != nil {
		return "", "", "", fmt.Errorf("transfer destination %q: %w", s, err)
	}
	return ext, dialplan, context, nil
}
