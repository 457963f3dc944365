package esltest

import (
	"slices"
	"strings"
	"testing"
)

// The expected values follow src/switch_channel.c,
// switch_channel_expand_variables_check (FreeSWITCH 1.10), whose lines are
// quoted in the comments; the escapes were verified on 1.10.12.
func TestExpand(t *testing.T) {
	vars := map[string]string{
		"a":     "A",
		"hello": "Hello",
		"ref":   "${a}",      // a value is expanded again when used
		"esc":   `\${a}`,     // ... escapes in it too
		"api":   "${sys(x)}", // a stored ${api()} runs when the variable is used
		"arr":   "ARRAY::one|:two",
	}
	globals := map[string]string{"hostname": "vm"}
	for _, c := range []struct{ in, want, api string }{
		// nv = switch_string_var_check_const(in) || switch_string_has_escaped_data(in); if (!nv) return in;
		{in: "plain text", want: "plain text"},
		{in: `price \$5`, want: `price \$5`},        // no "${" and \$ is not "escaped data"
		{in: `it\'s`, want: `its`},                  // \' is escaped data: expansion runs
		{in: `a\nb`, want: `a\nb`},                  // \n triggers the scan but stays as is
		{in: "${a}", want: "A"},                     // vtype = 1
		{in: "$${hostname}", want: "vm"},            // vtype = 3, looked up the same way
		{in: "${hostname}", want: "vm"},             // channel, then profile, then globals
		{in: "${destination_number}", want: "7000"}, // switch_caller_get_field_by_name
		{in: "pre ${a} post", want: "pre A post"},
		{in: `\${a}`, want: "${a}"},         // if (*(p + 1) == '$') { nv = 1; p++; ...
		{in: `\$${a}`, want: "${a}"},        // ... if (*(p + 1) == '$') { p++; }
		{in: `x\\y ${a}`, want: `x\y A`},    // else if (*(p + 1) == '\\') { *c++ = *p++; ...
		{in: `it\'s ${a}`, want: "its A"},   // else if (*(p + 1) == '\'') { p++; continue; }
		{in: `\"${a}\"`, want: `\"A\"`},     // other backslashes are copied
		{in: `${a}\\`, want: `A\\`},         // the byte after '}' is copied unexamined
		{in: "${a}${a}", want: "AA"},        // if (*p == '$') { p--; }
		{in: "$$x ${a}", want: "$x A"},      // "$$" not followed by '{' keeps one '$'
		{in: "cost ${a}$", want: "cost A$"}, // lone trailing '$'
		{in: "${missing}!", want: "!"},
		{in: "${a", want: "A"},                                 // missing '}' takes the rest
		{in: "${ref}", want: "A"},                              // expanded_sub_val = expand(sub_val)
		{in: "${esc}", want: "${a}"},                           // the stored value's escapes are processed
		{in: "${hello:1}", want: "ello"},                       // offset
		{in: "${hello:1:2}", want: "el"},                       // offset and length
		{in: "${hello:-3}", want: "llo"},                       // negative offset
		{in: "${hello:9}", want: ""},                           // offset past the end
		{in: "${arr[1]}", want: "two"},                         // idx
		{in: "${${a}}", want: ""},                              // the name is expanded first: ${A} is unset
		{in: "${sys(touch x)}", want: "", api: "sys(touch x)"}, // a '(' makes it an API call
		{in: "${sys touch x}", want: "", api: "sys(touch x)"},  // so does a space
		{in: "${sys(${a})}", want: "", api: "sys(A)"},          // arguments are expanded
		{in: "${api}", want: "", api: "sys(x)"},                // ... and so are stored values
		{in: "x${sys(a(b)c)}y", want: "xy", api: "sys(a(b)c)"}, // parentheses nest
		{in: `\${sys(x)}`, want: "${sys(x)}"},                  // escaped: nothing runs
	} {
		var apis []string
		x := &Expander{
			Lookup: func(name string, idx int) (string, bool) {
				v, ok := vars[name]
				if !ok {
					v, ok = globals[name]
				}
				if !ok && name == "destination_number" {
					v, ok = "7000", true
				}
				if ok && idx >= 0 {
					parts := strings.Split(strings.TrimPrefix(v, "ARRAY::"), "|:")
					if idx >= len(parts) {
						return "", false
					}
					return parts[idx], true
				}
				return v, ok
			},
			API: func(name, args string) (string, bool) {
				apis = append(apis, name+"("+args+")")
				return "", false
			},
		}
		if got := x.Expand(c.in); got != c.want {
			t.Errorf("Expand(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := strings.Join(apis, ","); got != c.api {
			t.Errorf("Expand(%q) ran APIs %q, want %q", c.in, got, c.api)
		}
	}
}

// The cases follow switch_separate_string and its helpers in
// src/switch_utils.c (separate_string_char_delim, separate_string_blank_delim,
// cleanup_separated_string, unescape_char).
func TestSeparateString(t *testing.T) {
	for _, c := range []struct {
		in    string
		delim byte
		max   int
		want  []string
	}{
		{"a.wav!b.wav", '!', 128, []string{"a.wav", "b.wav"}},
		{`a\!b!c`, '!', 128, []string{"a!b", "c"}},                    // (delim && e == delim): escaped delimiter
		{"^^:a:b!c", '!', 128, []string{"a", "b!c"}},                  // "^^X" switches the delimiter
		{"^^:", '!', 128, []string{"^^:"}},                            // needs two bytes after "^^"
		{"O'Brien!x", '!', 128, []string{"O'Brien", "x"}},             // a lone quote is a character
		{"It's Bob's day!x", '!', 128, []string{"Its Bobs day", "x"}}, // paired quotes vanish
		{"'a!b'!c", '!', 128, []string{"a!b", "c"}},                   // the delimiter inside quotes
		{" a ! b ", '!', 128, []string{"a", "b"}},                     // blanks trimmed
		{"a!!b", '!', 128, []string{"a", "", "b"}},
		{"a!", '!', 128, []string{"a"}},
		{`x\ny\sz\tw\\v\qu`, '!', 128, []string{"x\ny z\tw\\v\\qu"}}, // unescape_char
		{`say \"hi\"`, '!', 128, []string{`say "hi"`}},
		{"flite|kal|a|b", '|', 3, []string{"flite", "kal", "a|b"}}, // the last slot keeps the rest
		{"uuid var  two  words ", ' ', 3, []string{"uuid", "var", "two  words"}},
		{"a 'b c' d", ' ', 8, []string{"a", "b c", "d"}},
		{"  lead  trail  ", ' ', 8, []string{"lead", "trail"}},
		{"", '!', 8, nil},
	} {
		got := SeparateString(c.in, c.delim, c.max)
		if !slices.Equal(got, c.want) {
			t.Errorf("SeparateString(%q, %q, %d) = %q, want %q", c.in, c.delim, c.max, got, c.want)
		}
	}
}
