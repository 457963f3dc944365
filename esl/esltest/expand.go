package esltest

// Expander expands FreeSWITCH variable references the way FreeSWITCH 1.10
// does before it runs an application (switch_core_session_execute_application
// calls switch_channel_expand_variables on the argument unless the channel
// variable app_disable_expand_variables is true), and again where set,
// export and multiset expand their value (mod_dptools.c base_set).
//
// The algorithm is a line-by-line port of switch_channel_expand_variables_check
// (src/switch_channel.c), including its quirks:
//
//   - nothing happens unless the input contains "${" or one of the escapes
//     \\ \n \s \t \' (switch_string_var_check_const,
//     switch_string_has_escaped_data): "\$5" alone stays "\$5";
//   - \$ gives a literal $ (and \$$ a single $), \\ gives \, \' is dropped
//     entirely, any other backslash is kept as is;
//   - ${name} and $${name} look the name up (channel variable, then caller
//     profile field, then global variable); the name is expanded first, and
//     the value found is expanded again, recursively (depth 100);
//   - ${name:offset:length} takes a substring, ${name[i]} an array element;
//   - a space or '(' in the braces makes it an API call: ${system(touch x)}
//     or ${system touch x} runs the API "system" with argument "touch x";
//     braces nest, a missing '}' takes the rest of the string;
//   - the byte right after a closing '}' is copied without escape
//     processing ("${a}\\" keeps both backslashes);
//   - "$$x" (not "$${") loses one '$'; a lone trailing '$' is kept.
//
// The double never runs an API: it calls API, which records the call (see
// Call.APIExecutions) and may return a result to substitute.
type Expander struct {
	// Lookup returns a variable's value. idx is -1, or the index given in
	// ${name[idx]}.
	Lookup func(name string, idx int) (string, bool)
	// API is called for ${api(args)}; ok false substitutes nothing.
	API func(name, args string) (result string, ok bool)
}

// Expand returns in with variables and escapes expanded.
func (x *Expander) Expand(in string) string { return x.expand(in, 0) }

// needsExpansion is switch_string_var_check_const || switch_string_has_escaped_data.
func needsExpansion(in string) bool {
	// switch_string_var_check_const: a '$' followed by '{', with only
	// backslashes between them ("$\{" counts).
	dollar := false
	for i := 0; i < len(in); i++ {
		switch c := in[i]; {
		case c == '$':
			dollar = true
		case dollar && c == '{':
			return true
		case c != '\\':
			dollar = false
		}
	}
	i := indexByte(in, '\\')
	for i >= 0 && i < len(in) && in[i] == '\\' {
		i++
		if i < len(in) {
			switch in[i] {
			case '\\', 'n', 's', 't', '\'':
				return true
			}
		}
		j := indexByte(in[min(i, len(in)):], '\\')
		if j < 0 {
			break
		}
		i += j
	}
	return false
}

func (x *Expander) expand(in string, recur int) string {
	if recur > 100 || in == "" {
		return in
	}
	if i := indexByte(in, 0); i >= 0 {
		in = in[:i]
	}
	if !needsExpansion(in) {
		return in
	}
	b := cString(in)
	endof := len(in) // index of the terminating NUL
	out := make([]byte, 0, len(in))
	nv := false
	for p := 0; p < endof && b[p] != 0; p++ {
		global, vtype := false, 0
		if b[p] == '\\' {
			switch b[p+1] {
			case '$':
				nv = true
				p++
				if b[p+1] == '$' {
					p++
				}
			case '\'':
				p++
				continue
			case '\\':
				out = append(out, b[p])
				p++
				continue
			}
		}
		if b[p] == '$' && !nv {
			if b[p+1] == '$' {
				p++
				global = true
			}
			if b[p+1] == '{' {
				vtype = 1
				if global {
					vtype = 3
				}
			} else {
				nv = true
			}
		}
		if nv {
			out = append(out, b[p])
			nv = false
			continue
		}
		if vtype != 0 {
			p, out = x.reference(b, p, endof, out, recur)
		}
		if b[p] == '$' {
			p--
		} else if b[p] != 0 {
			out = append(out, b[p])
		}
	}
	return string(out)
}

// reference handles one ${...} starting at the '$' at p. It returns the
// position just after the reference (FreeSWITCH copies that byte without
// looking at it, unless it is a '$') and the output so far.
func (x *Expander) reference(b []byte, p, endof int, out []byte, recur int) (int, []byte) {
	s := p + 1
	br := 0
	if b[s] == '{' {
		br = 1
		s++
	}
	e, vname := s, s
	for b[e] != 0 {
		if br == 1 && b[e] == '}' {
			br = 0
			b[e] = 0
			e++
			break
		}
		if br > 0 {
			if e != s && b[e] == '{' {
				br++
			} else if br > 1 && b[e] == '}' {
				br--
			}
		}
		e++
	}
	p = min(e, endof)

	vval := -1
	for sb := vname; b[sb] != 0; sb++ {
		if b[sb] == ' ' {
			vval = sb
			break
		} else if b[sb] == '(' {
			vval = sb
			br = 1
			break
		}
	}
	if vval >= 0 {
		e2 := vval - 1
		b[vval] = 0
		vval++
		for e2 >= 0 && b[e2] == ' ' {
			b[e2] = 0
			e2--
		}
		for e3 := vval; b[e3] != 0; e3++ {
			if b[e3] == '(' {
				br++
			} else if br > 1 && b[e3] == ')' {
				br--
			} else if br == 1 && b[e3] == ')' {
				b[e3] = 0
				break
			}
		}
		name := x.expand(cStr(b, vname), recur+1)
		args := x.expand(cStr(b, vval), recur+1)
		if x.API != nil {
			if res, ok := x.API(name, args); ok {
				out = append(out, res...)
			}
		}
		return p, out
	}

	name := x.expand(cStr(b, vname), recur+1)
	offset, ooffset := 0, 0
	if i := indexByte(name, ':'); i >= 0 {
		rest := name[i+1:]
		name = name[:i]
		offset = atoi(rest)
		if j := indexByte(rest, ':'); j >= 0 {
			ooffset = atoi(rest[j+1:])
		}
	}
	idx := -1
	if i := indexByte(name, '['); i >= 0 && indexByte(name[i:], ']') >= 0 {
		idx = atoi(name[i+1:])
		name = name[:i]
	}
	if x.Lookup == nil {
		return p, out
	}
	val, ok := x.Lookup(name, idx)
	if !ok {
		return p, out
	}
	val = x.expand(val, recur+1)
	if offset >= 0 {
		if offset > len(val) {
			val = ""
		} else {
			val = val[offset:]
		}
	} else if -offset <= len(val) {
		val = val[len(val)+offset:]
	}
	if ooffset > 0 && ooffset < len(val) {
		val = val[:ooffset]
	}
	return p, append(out, val...)
}

// atoi is C's atoi: optional blanks, optional sign, digits; 0 when none.
func atoi(s string) int {
	i := 0
	for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	n := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if n < 1<<30 {
			n = n*10 + int(s[i]-'0')
		}
	}
	if neg {
		return -n
	}
	return n
}
