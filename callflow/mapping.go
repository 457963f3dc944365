package callflow

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/eslapp/eslapp/esl"
)

// Mappings are the dialplan's interface to CRM data: a mapping copies one
// field of the step's result to a channel variable the dialplan can use
// (an agent extension to bridge, a VIP flag to route on).
//
// FreeSWITCH expands a variable's value again when the dialplan references
// it, so a CRM field holding ${system(...)} would run the moment the
// dialplan wrote ${var}. A mapping therefore has a type. A typed value
// (digits, number, word, uuid, bool, enum) that does not match is not
// stored (a warning and eslapp_mapping_rejected_total; the branch is
// unchanged); one that matches holds none of the bytes the expander reads
// and stays safe through any number of dialplan hops. A text mapping (the
// type of a mapping written as a bare path) is stored reference-safe: one
// ${var} reference yields the original text and runs nothing. A second
// hop — set x=${var}, then ${x} — would expand the text itself: the
// README names it.

// MappingType is what a mapped value must look like.
type MappingType struct {
	Name   string
	Values []string // enum: the values allowed
}

// Mapping types.
const (
	MapText   = "text"
	MapDigits = "digits"
	MapNumber = "number"
	MapWord   = "word"
	MapUUID   = "uuid"
	MapBool   = "bool"
	MapEnum   = "enum"
)

var mappingTypes = []string{MapText, MapDigits, MapNumber, MapWord, MapUUID, MapBool, MapEnum}

// maxTypedValue bounds every typed value but text.
const maxTypedValue = 256

var (
	digitsRE = regexp.MustCompile(`^[0-9]+$`)
	numberRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)
	wordRE   = regexp.MustCompile(`^[A-Za-z0-9_.+-]+$`)
	uuidRE   = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
)

// Accepts reports whether v may be stored under this type.
func (t MappingType) Accepts(v string) bool {
	if t.Name == MapText || t.Name == "" {
		return true
	}
	if v == "" || len(v) > maxTypedValue {
		return false
	}
	switch t.Name {
	case MapDigits:
		return digitsRE.MatchString(v)
	case MapNumber:
		return numberRE.MatchString(v)
	case MapWord:
		return wordRE.MatchString(v)
	case MapUUID:
		return uuidRE.MatchString(v)
	case MapBool:
		return v == "true" || v == "false"
	case MapEnum:
		return slices.Contains(t.Values, v)
	}
	return false
}

// Stored is what goes on the channel for a value the type accepts: the
// value itself when typed, reference-safe when text.
func (t MappingType) Stored(v string) string {
	if t.Name == MapText || t.Name == "" {
		return esl.ReferenceSafe(v)
	}
	return v
}

// parseMapping reads one mapping: "result.path" (text), or
// { path = "result.path", type = "digits" }, with values = [...] for enum.
func (d *decoder) parseMapping(name string, raw any) (Mapping, bool) {
	key := []string{"mappings", name}
	m := Mapping{Var: name, Type: MappingType{Name: MapText}}
	var path string
	switch v := raw.(type) {
	case string:
		path = v
	case map[string]any:
		ok := true
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if !slices.Contains([]string{"path", "type", "values"}, k) {
				d.errorf(append(key, k), "unknown key (path, type, values)")
				ok = false
			}
		}
		p, isString := v["path"].(string)
		if !isString || p == "" {
			d.errorf(append(key, "path"), "missing: the field of the result to map, e.g. \"result.agent.ext\"")
			return m, false
		}
		path = p
		if t, present := v["type"]; present {
			s, _ := t.(string)
			if !slices.Contains(mappingTypes, s) {
				d.errorf(append(key, "type"), "must be one of %s", strings.Join(mappingTypes, ", "))
				return m, false
			}
			m.Type.Name = s
		}
		values, hasValues := v["values"]
		switch {
		case m.Type.Name == MapEnum && !hasValues:
			d.errorf(append(key, "values"), "missing: an enum mapping lists its values")
			ok = false
		case m.Type.Name != MapEnum && hasValues:
			d.errorf(append(key, "values"), "only an enum mapping has values")
			ok = false
		case hasValues:
			list, _ := values.([]any)
			if len(list) == 0 {
				d.errorf(append(key, "values"), "must list at least one value")
				ok = false
			}
			for _, item := range list {
				s, _ := item.(string)
				if !wordRE.MatchString(s) || len(s) > maxTypedValue {
					d.errorf(append(key, "values"), "%q is not a word (letters, digits and _ . + -)", fmt.Sprint(item))
					ok = false
					continue
				}
				m.Type.Values = append(m.Type.Values, s)
			}
		}
		if !ok {
			return m, false
		}
	default:
		d.errorf(key, "must be a path (\"result.x\") or { path = \"result.x\", type = \"digits\" }")
		return m, false
	}
	e, err := ParseExpr(path)
	if err != nil {
		d.errorf(key, "%v", err)
		return m, false
	}
	if e.Root() != "result" {
		d.errorf(key, "a mapping reads the step's result: start it with \"result\", e.g. \"result.records[0].id\"")
		return m, false
	}
	m.Path = e
	return m, true
}
