package esltest

// This file ports FreeSWITCH's string tokenizer, switch_separate_string and
// its helpers (src/switch_utils.c: unescape_char, cleanup_separated_string,
// separate_string_char_delim, separate_string_blank_delim,
// switch_separate_string). FreeSWITCH uses it to split file_string:// play
// lists on '!', multiset arguments, and api arguments such as uuid_setvar's.
// The port works on a NUL-terminated copy, like the C code, so the in-place
// edits (quotes removed, escapes resolved, trailing blanks cut) behave the
// same, quirks included.

// SeparateString splits s like switch_separate_string(buf, delim, argv, max):
//
//   - a leading "^^X" (X followed by at least one more byte) makes X the
//     delimiter;
//   - a backslash protects the next byte from splitting, and the cleanup then
//     turns \n \r \t \s into newline, CR, tab, space, drops the backslash
//     before ' " \ and the delimiter, and keeps it before anything else;
//   - a single quote starts a quoted part when another single quote follows
//     somewhere (for a blank delimiter: always); quotes are removed and the
//     delimiter inside them does not split;
//   - leading spaces of each part are skipped, trailing ones cut;
//   - a blank delimiter (' ') folds runs of spaces; other delimiters give
//     empty parts for consecutive delimiters, but no part after a trailing one;
//   - at most max parts: the last one keeps the rest of the string.
func SeparateString(s string, delim byte, max int) []string {
	if max <= 0 {
		return nil
	}
	buf := cString(s)
	start := 0
	if buf[0] == '^' && buf[1] == '^' && buf[2] != 0 && buf[3] != 0 {
		delim = buf[2]
		start = 3
	}
	var idx []int
	if delim == ' ' {
		idx = separateBlank(buf, start, max)
	} else {
		idx = separateChar(buf, start, delim, max)
	}
	out := make([]string, len(idx))
	for i, p := range idx {
		out[i] = cStr(buf, cleanupSeparated(buf, p, delimForCleanup(delim)))
	}
	return out
}

func delimForCleanup(delim byte) byte {
	if delim == ' ' {
		return 0
	}
	return delim
}

// cString returns s up to its first NUL, as a NUL-terminated byte slice.
// Two extra NULs let the ports look one or two bytes ahead the way the C
// code reads the terminator.
func cString(s string) []byte {
	if i := indexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	b := make([]byte, len(s)+3)
	copy(b, s)
	return b
}

// cStr returns the C string that starts at p.
func cStr(b []byte, p int) string {
	e := p
	for e < len(b) && b[e] != 0 {
		e++
	}
	return string(b[p:e])
}

// hasByteFrom reports strchr(b+p, c) != NULL.
func hasByteFrom(b []byte, p int, c byte) bool {
	for ; p < len(b) && b[p] != 0; p++ {
		if b[p] == c {
			return true
		}
	}
	return false
}

func unescapeChar(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 's':
		return ' '
	}
	return c
}

// cleanupSeparated is cleanup_separated_string: it edits the C string at p
// in place and returns where the cleaned string starts.
func cleanupSeparated(b []byte, p int, delim byte) int {
	ptr := p
	for b[ptr] == ' ' {
		ptr++
	}
	start, dest, end := ptr, ptr, -1
	inside := false
	for ; ptr < len(b) && b[ptr] != 0; ptr++ {
		esc := false
		if b[ptr] == '\\' {
			e := b[ptr+1]
			keep := e == '\'' || e == '"' || (delim != 0 && e == delim) || e == '\\'
			if keep || unescapeChar(e) != e {
				if !keep {
					e = unescapeChar(e)
				}
				ptr++
				b[dest] = e
				dest++
				end = dest
				esc = true
			}
		}
		if !esc {
			if b[ptr] == '\'' && (inside || hasByteFrom(b, ptr+1, '\'')) {
				inside = !inside
				if inside {
					end = dest
				}
			} else {
				b[dest] = b[ptr]
				dest++
				if b[ptr] != ' ' || inside {
					end = dest
				}
			}
		}
	}
	if end >= 0 {
		b[end] = 0
	}
	return start
}

// separateChar is separate_string_char_delim; it returns the start of each
// part and cuts the parts with NULs.
func separateChar(b []byte, ptr int, delim byte, max int) []int {
	var idx []int
	inside, findDelim := false, false
	for ptr < len(b) && b[ptr] != 0 && len(idx) < max {
		if !findDelim {
			idx = append(idx, ptr)
			findDelim = true
			continue
		}
		switch {
		case b[ptr] == '\\':
			ptr++
		case b[ptr] == '\'' && (inside || hasByteFrom(b, ptr+1, '\'')):
			inside = !inside
		case b[ptr] == delim && !inside:
			b[ptr] = 0
			findDelim = false
		}
		ptr++
	}
	return idx
}

// separateBlank is separate_string_blank_delim.
func separateBlank(b []byte, ptr int, max int) []int {
	const (
		start = iota
		skipInitial
		findDelim
		skipEnding
	)
	var idx []int
	state, inside := start, false
	for ptr < len(b) && b[ptr] != 0 && len(idx) < max {
		switch state {
		case start:
			idx = append(idx, ptr)
			state = skipInitial
		case skipInitial:
			if b[ptr] == ' ' {
				ptr++
			} else {
				state = findDelim
			}
		case findDelim:
			switch {
			case b[ptr] == '\\':
				ptr++
			case b[ptr] == '\'':
				inside = !inside
			case b[ptr] == ' ' && !inside:
				b[ptr] = 0
				state = skipEnding
			}
			ptr++
		case skipEnding:
			if b[ptr] == ' ' {
				ptr++
			} else {
				state = start
			}
		}
	}
	return idx
}
