package main

import (
	"errors"

	"github.com/BurntSushi/toml"
)

// keyLines maps every key of a TOML document ("a.b.c") to the line it is
// defined on, so that a configuration error can name its line.
//
// BurntSushi/toml records each key's position but exposes it only in the
// ParseError of a failed decode. keyLines walks the document as Primitives
// and decodes each into a probe that always fails, reading the line from the
// error: exact for every key, and with nothing but the library's public API.
func keyLines(data string) map[string]int {
	lines := make(map[string]int)
	var root map[string]toml.Primitive
	md, err := toml.Decode(data, &root)
	if err != nil {
		return lines
	}
	var walk func(prims map[string]toml.Primitive, path toml.Key)
	walk = func(prims map[string]toml.Primitive, path toml.Key) {
		for name, prim := range prims {
			key := append(path[:len(path):len(path)], name)
			var pe toml.ParseError
			if err := md.PrimitiveDecode(prim, &lineProbe{}); errors.As(err, &pe) && pe.Position.Line > 0 {
				lines[key.String()] = pe.Position.Line
			}
			var sub map[string]toml.Primitive
			if md.PrimitiveDecode(prim, &sub) == nil {
				walk(sub, key)
			}
		}
	}
	walk(root, nil)
	return lines
}

var errProbe = errors.New("probe")

// lineProbe fails every decode, so that the decoder reports the position of
// the key being decoded.
type lineProbe struct{}

func (*lineProbe) UnmarshalTOML(any) error { return errProbe }

// lineOf returns the line of key, or of its nearest ancestor that has one.
func lineOf(lines map[string]int, key toml.Key) int {
	for k := key; len(k) > 0; k = k[:len(k)-1] {
		if l, ok := lines[k.String()]; ok {
			return l
		}
	}
	return 0
}
