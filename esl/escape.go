package esl

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file is the one place where text becomes part of a FreeSWITCH
// command. Every argument eslapp sends is an AppArg, APIArgs or EventHeader
// value, and those are made here, by functions that know what FreeSWITCH
// does to the text on its way (the FreeSWITCH 1.10 functions named below,
// each behaviour verified on 1.10.12):
//
//   - switch_core_session_exec expands ${...} in every application argument
//     unless the channel variable app_disable_expand_variables is true; set
//     (mod_dptools base_set) expands its value once more. Expansion runs API
//     calls (${system(...)}), so outside text must reach it escaped.
//   - switch_separate_string splits file_string:// lists on '!', tts://
//     on '|', say and transfer arguments on spaces; it treats ' as a quote and
//     \ as an escape, and each part is unescaped once (cleanup_separated_string).
//   - mod_event_socket's read_packet reads header values literally, ends a
//     value at a newline, and cuts a body at its first NUL.
//
// An AppArg holds the text the application must finally see. Session.Start
// adds the escaping for the expansion that happens before the application
// runs, because only the session knows whether it is switched off on the
// channel.

// AppArg is an application argument: the exact text the application will
// see. The zero AppArg is "no argument".
type AppArg struct{ s string }

// String is the text the application sees.
func (a AppArg) String() string { return a.s }

// Wire is the argument as eslapp sends it: escaped for the expansion
// FreeSWITCH applies before running the application, unless the channel has
// app_disable_expand_variables set (expandsBeforeRun false).
func (a AppArg) Wire(expandsBeforeRun bool) string {
	if !expandsBeforeRun {
		return a.s
	}
	return escapeForExpansion(a.s)
}

// Fixed is an argument eslapp itself wrote, such as "9999 XML default" from
// a validated configuration. It reaches the application verbatim: a '$' in it
// is not expanded. Never pass outside data (CRM results, caller names,
// channel variables) to Fixed: use the builders below, which check and
// escape it for the application's own parsing.
func Fixed(s string) AppArg { return AppArg{s: s} }

// escapeForExpansion returns what must be sent so that one FreeSWITCH
// expansion pass (switch_channel_expand_variables_check) yields s.
//
// The pass runs only when the text holds "$" followed by "{" (backslashes
// between them allowed; switch_string_var_check_const) or a backslash
// followed by \ n s t or ' (switch_string_has_escaped_data). When s triggers
// neither, FreeSWITCH leaves it alone and so does this function. Otherwise
// every '\' and '$' gets a backslash: in the pass "\\" gives "\", "\$" gives
// "$" (and the "{...}" after it stays text), and every other byte is copied;
// the escaped text always triggers the pass, because it holds either "\\" or
// "\$" before a "{".
func escapeForExpansion(s string) string {
	if !triggersExpansion(s) {
		return s
	}
	return backslashBefore(s, `\$`)
}

// backslashBefore puts a backslash before every byte of s that is in set.
func backslashBefore(s, set string) string {
	if !strings.ContainsAny(s, set) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := range len(s) {
		if strings.IndexByte(set, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ReferenceSafe returns the form of s to store in a channel variable so
// that one ${var} reference to it in the dialplan yields s, with nothing
// in it expanded or run: FreeSWITCH expands a variable's value once more
// when it substitutes it (switch_channel_expand_variables_check recurses
// into every substituted value), and this is the text that pass turns
// back into s. A further hop that expands the result again (set x=${var},
// then ${x}) sees s itself.
func ReferenceSafe(s string) string { return escapeForExpansion(s) }

// triggersExpansion reports whether FreeSWITCH's expansion pass would touch
// s (switch_string_var_check_const || switch_string_has_escaped_data).
func triggersExpansion(s string) bool {
	dollar := false
	for i := range len(s) {
		switch c := s[i]; {
		case c == '$':
			dollar = true
		case dollar && c == '{':
			return true
		case c != '\\':
			dollar = false
		}
	}
	for i := strings.IndexByte(s, '\\'); i >= 0 && i+1 < len(s); {
		switch s[i+1] {
		case '\\', 'n', 's', 't', '\'':
			return true
		}
		j := strings.IndexByte(s[i+1:], '\\')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// escapeField returns what must be written so that, as one part of a list
// that switch_separate_string splits on delim, the part comes out as s.
// The splitter does not split at an escaped delimiter, and its cleanup turns
// "\\" into "\", "\'" into "'" and "\<delim>" into the delimiter. s must
// not start or end with white space (the cleanup trims it) and must not hold
// control characters; callers check that.
func escapeField(s string, delim byte) string {
	return backslashBefore(s, `\'`+string(delim))
}

// UUIDSetVarArgs are the arguments of "api uuid_setvar UUID NAME VALUE"
// that store value verbatim on a channel eslapp does not control: the api
// runs no expansion, and uuid_setvar splits its argument with
// switch_separate_string on blanks into at most three parts, the last
// keeping the rest of the text, spaces included. value must not start or
// end with white space nor hold control characters (compact JSON holds
// neither).
func UUIDSetVarArgs(uuid, name, value string) (APIArgs, error) {
	switch {
	case !isChannelID(uuid):
		return APIArgs{}, &UnsafeValueError{Sink: "uuid_setvar", Reason: "not a channel UUID"}
	case !IsVarName(name):
		return APIArgs{}, &UnsafeValueError{Sink: "uuid_setvar", Reason: fmt.Sprintf("%q is not a variable name", name)}
	case value == "" || value != strings.TrimSpace(value) || hasControl(value):
		return APIArgs{}, &UnsafeValueError{Sink: "uuid_setvar", Reason: "an empty value, white space at an end, or a control character"}
	}
	// The last part is not split further, but the cleanup still drops the
	// backslash before \ ' and ", and a leading quote would open a quoted
	// part: a backslash before each of those three keeps them.
	return APIArgs{s: uuid + " " + name + " " + backslashBefore(value, `\'"`)}, nil
}

// SetArg is the argument of "set NAME=VALUE" that stores value verbatim,
// whatever it holds: quotes, braces, ${...}, backslashes, newlines, 32 KiB of
// JSON. set expands its value once itself (base_set), so the value is
// escaped for that pass here, and Session.Start escapes the whole argument
// for the expansion before the application runs.
//
// A NUL byte is refused: FreeSWITCH ends a command body at the first NUL,
// so the value would be stored cut short. An empty value unsets the
// variable, as in FreeSWITCH.
func SetArg(name, value string) (AppArg, error) {
	if !IsVarName(name) {
		return AppArg{}, &UnsafeValueError{Sink: "set variable name", Reason: fmt.Sprintf("%q is not a variable name", name)}
	}
	if strings.IndexByte(value, 0) >= 0 {
		return AppArg{}, &UnsafeValueError{Sink: "set value", Reason: "holds a NUL byte"}
	}
	return AppArg{s: name + "=" + escapeForExpansion(value)}, nil
}

// PlayItem is one element of a playback: a file or stream, or text to speak.
type PlayItem struct {
	file        string // path or URL, checked by File
	ttsEngine   string
	ttsVoice    string
	ttsText     string
	isTTS       bool
	description string
}

// File is an audio file path (absolute, or relative to FreeSWITCH's sound
// prefix) or a FreeSWITCH URL such as silence_stream://500. Control
// characters and surrounding white space are refused; '!', '\' and quotes
// are escaped for the file_string list.
func File(path string) (PlayItem, error) {
	if path == "" || path != strings.TrimSpace(path) || hasControl(path) || strings.HasPrefix(path, "^^") {
		return PlayItem{}, &UnsafeValueError{Sink: "playback file", Reason: fmt.Sprintf("%q is not a usable file name", path)}
	}
	return PlayItem{file: path}, nil
}

// TTS is text spoken with tts://ENGINE|VOICE|TEXT (mod_ssml). The text may
// come from anywhere: it is normalised for speech (control characters and
// line breaks become spaces, runs of spaces one space, invalid UTF-8
// dropped) and escaped for the '|' and '!' lists it travels in, so it can
// never split, reorder or add play items. Text that normalises to nothing
// is refused.
func TTS(engine, voice, text string) (PlayItem, error) {
	if !isWord(engine, "_-") || !isWord(voice, "_-.") {
		return PlayItem{}, &UnsafeValueError{Sink: "tts engine/voice", Reason: fmt.Sprintf("%q/%q are not names", engine, voice)}
	}
	text = NormalizeSpeech(text)
	if text == "" {
		return PlayItem{}, &UnsafeValueError{Sink: "tts text", Reason: "nothing to speak"}
	}
	return PlayItem{isTTS: true, ttsEngine: engine, ttsVoice: voice, ttsText: text}, nil
}

// String shows the item as FreeSWITCH names it, unescaped, for logs.
func (p PlayItem) String() string {
	if p.isTTS {
		return "tts://" + p.ttsEngine + "|" + p.ttsVoice + "|" + p.ttsText
	}
	return p.file
}

// element is the item as one file_string element before the '!' escaping.
func (p PlayItem) element() string {
	if p.isTTS {
		return "tts://" + p.ttsEngine + "|" + p.ttsVoice + "|" + escapeField(p.ttsText, '|')
	}
	return p.file
}

// PlaybackArg is the argument of a playback of one or more items. Several
// items become one file_string:// list, which FreeSWITCH plays as a single
// application: one Application-UUID, one break point (a uuid_break stops
// the whole list, where separate playbacks would need one break each).
func PlaybackArg(items ...PlayItem) (AppArg, error) {
	switch len(items) {
	case 0:
		return AppArg{}, &UnsafeValueError{Sink: "playback", Reason: "no items"}
	case 1:
		if !items[0].isTTS {
			return AppArg{s: items[0].file}, nil
		}
		return AppArg{s: items[0].element()}, nil
	}
	if len(items) > 128 {
		// file_string_file_open keeps at most 128 elements.
		return AppArg{}, &UnsafeValueError{Sink: "playback", Reason: fmt.Sprintf("%d items, FreeSWITCH plays at most 128 in one list", len(items))}
	}
	var b strings.Builder
	b.WriteString("file_string://")
	for i, it := range items {
		if i > 0 {
			b.WriteByte('!')
		}
		b.WriteString(escapeField(it.element(), '!'))
	}
	return AppArg{s: b.String()}, nil
}

// Say kinds and methods eslapp uses (mod_say_en).
const (
	SayCurrency = "currency"
	SayNumber   = "number"

	SayPronounced = "pronounced"
	SayIterated   = "iterated"
)

// SayArg is the argument of "say LANG TYPE METHOD VALUE". The value must be
// a number as mod_say reads it: digits with an optional sign, decimal point
// and thousands commas; anything else (mod_say_en says "abc" as "zero
// dollars") is refused.
func SayArg(lang, kind, method, value string) (AppArg, error) {
	if !isWord(lang, "_-:") || !isWord(kind, "_") || !isWord(method, "_") {
		return AppArg{}, &UnsafeValueError{Sink: "say", Reason: fmt.Sprintf("%q %q %q are not say words", lang, kind, method)}
	}
	if !isSayNumber(value) {
		return AppArg{}, &UnsafeValueError{Sink: "say value", Reason: fmt.Sprintf("%q is not a number", value)}
	}
	return AppArg{s: lang + " " + kind + " " + method + " " + value}, nil
}

func isSayNumber(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	digits, dot := 0, false
	for i := range len(s) {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		case c == ',':
		case (c == '-' || c == '+') && i == 0:
		default:
			return false
		}
	}
	return digits > 0
}

// TransferArg is the argument of "transfer EXTENSION DIALPLAN CONTEXT". The
// transfer application splits it on spaces, so each part must be one word of
// the characters extensions and contexts are made of; anything else is
// refused rather than escaped.
func TransferArg(extension, dialplan, context string) (AppArg, error) {
	if dialplan == "" {
		dialplan = "XML"
	}
	for _, w := range []string{extension, dialplan, context} {
		if !isTransferWord(w) {
			return AppArg{}, &UnsafeValueError{Sink: "transfer destination", Reason: fmt.Sprintf("%q is not an extension, dialplan or context name", w)}
		}
	}
	return AppArg{s: extension + " " + dialplan + " " + context}, nil
}

// NormalizeSpeech makes text fit for a TTS engine and for the lists it
// travels in: invalid UTF-8 and control characters (line breaks, tabs, NUL)
// become spaces, runs of white space one space, and the ends are trimmed.
// A leading '{' becomes '(': switch_core_speech_feed_tts reads text that
// starts with '{' as engine parameters ("{voice=rms}Hi" would change the
// voice, and reach an MRCP server as is).
func NormalizeSpeech(text string) string {
	var b strings.Builder
	b.Grow(len(text))
	space := true // drop leading white space
	for i, w := 0, 0; i < len(text); i += w {
		r, size := utf8.DecodeRuneInString(text[i:])
		w = size
		if r == utf8.RuneError && size == 1 || r < 0x20 || r == 0x7f || r == ' ' || r == 0x85 || r == 0xa0 || r == 0x2028 || r == 0x2029 {
			if !space {
				b.WriteByte(' ')
				space = true
			}
			continue
		}
		if r == '{' && b.Len() == 0 {
			r = '('
		}
		b.WriteRune(r)
		space = false
	}
	return strings.TrimRight(b.String(), " ")
}

func hasControl(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

// APIArgs are the arguments of an api command: words separated by single
// spaces. The zero value is "no arguments".
type APIArgs struct{ s string }

// String is the arguments as sent.
func (a APIArgs) String() string { return a.s }

// APIArg is a single api argument word; see APIArgsOf.
func APIArg(word string) APIArgs { return APIArgsOf(word) }

// APIArgsOf joins eslapp's own words (UUIDs, variable names, "all") as api
// arguments. An api command is one line that FreeSWITCH splits on spaces
// and unescapes, so a word holding white space, a quote, a backslash or a
// control character would change the command or end it: APIArgsOf panics on
// one, as it is a bug in eslapp. Use SafeAPIArgs for anything else.
func APIArgsOf(words ...string) APIArgs {
	a, err := SafeAPIArgs(words...)
	if err != nil {
		panic(err)
	}
	return a
}

// SafeAPIArgs is APIArgsOf that returns an *UnsafeValueError instead of
// panicking. No escaping makes a newline safe in an api argument (the line
// would end); the value is refused and the caller takes another way.
func SafeAPIArgs(words ...string) (APIArgs, error) {
	for _, w := range words {
		if w == "" || strings.ContainsAny(w, " \t'\"\\$") || hasControl(w) {
			return APIArgs{}, &UnsafeValueError{Sink: "api argument", Reason: fmt.Sprintf("%q is not a single plain word", w)}
		}
	}
	return APIArgs{s: strings.Join(words, " ")}, nil
}

// reservedEventHeaders change how FreeSWITCH routes the event (Unique-ID
// queues it to a channel instead of firing it) or frames the message.
var reservedEventHeaders = map[string]bool{
	"unique-id": true, "content-length": true, "content-type": true,
	"event-name": true, "event-subclass": true, "event-uuid": true, "command": true,
}

// CheckEventHeader reports whether SendEvent would refuse a header: a name
// eslapp may not set, or a value FreeSWITCH would not keep as it is.
func CheckEventHeader(name, value string) error {
	if !IsEventHeaderName(name) {
		return &UnsafeValueError{Sink: "event header", Reason: fmt.Sprintf("%q may not be set", name)}
	}
	return eventHeaderValue(name, value)
}

// eventHeaderValue checks a sendevent header value. read_packet takes it
// literally to the end of the line, drops an empty one, trims leading spaces
// and splits one starting with "ARRAY::" into an array; rather than send
// anything it would change, eslapp refuses it: free text belongs in the
// event body.
func eventHeaderValue(name, v string) error {
	if v == "" || hasControl(v) || v != strings.TrimLeft(v, " ") || strings.HasPrefix(v, "ARRAY::") || len(v) > 1024 {
		return &UnsafeValueError{Sink: "event header " + name, Reason: fmt.Sprintf("%.40q cannot be sent as a header value", v)}
	}
	return nil
}

// sendEventMessage builds "sendevent CUSTOM" with a subclass, headers and an
// optional body, with LF line ends throughout (see executeMessage).
func sendEventMessage(subclass string, headers []EventHeader, body []byte) (string, error) {
	if !IsEventSubclass(subclass) {
		return "", &UnsafeValueError{Sink: "event subclass", Reason: fmt.Sprintf("%q is not a subclass name", subclass)}
	}
	if len(body) > 0 && strings.IndexByte(string(body), 0) >= 0 {
		return "", &UnsafeValueError{Sink: "event body", Reason: "holds a NUL byte"}
	}
	var b strings.Builder
	b.WriteString("sendevent CUSTOM\nEvent-Subclass: ")
	b.WriteString(subclass)
	for _, h := range headers {
		if !IsEventHeaderName(h.Name) {
			return "", &UnsafeValueError{Sink: "event header", Reason: fmt.Sprintf("%q may not be set", h.Name)}
		}
		if err := eventHeaderValue(h.Name, h.Value); err != nil {
			return "", err
		}
		b.WriteString("\n")
		b.WriteString(h.Name)
		b.WriteString(": ")
		b.WriteString(h.Value)
	}
	if len(body) > 0 {
		b.WriteString("\nContent-Length: ")
		b.WriteString(strconv.Itoa(len(body)))
		b.WriteString("\n\n")
		b.Write(body)
	}
	return b.String(), nil
}

// Var is a channel variable to set.
type Var struct{ Name, Value string }

// multisetDelim separates the assignments of a multiset. Any byte would do:
// every occurrence inside an assignment is escaped.
const multisetDelim = '|'

// MultisetArg is the argument of one "multiset" application that sets all
// of vars: one application, so two events instead of two per variable.
// multiset (mod_dptools multiset_function) reads a leading "^^X" as its
// delimiter, splits with switch_separate_string, which unescapes each part
// and trims its trailing spaces, and runs set (base_set, which expands) on
// each part. A value that ends in white space would lose it there: such
// values, and any beyond multiset's 256 parts, are returned in rest, to be
// set one by one with SetArg.
func MultisetArg(vars []Var) (arg AppArg, rest []Var, err error) {
	var b strings.Builder
	b.WriteString("^^")
	b.WriteByte(multisetDelim)
	n := 0
	for _, v := range vars {
		if !IsVarName(v.Name) {
			return AppArg{}, nil, &UnsafeValueError{Sink: "set variable name", Reason: fmt.Sprintf("%q is not a variable name", v.Name)}
		}
		if strings.IndexByte(v.Value, 0) >= 0 {
			return AppArg{}, nil, &UnsafeValueError{Sink: "set value", Reason: "holds a NUL byte"}
		}
		if n == 256 || v.Value != strings.TrimRight(v.Value, " \t\r\n") {
			rest = append(rest, v)
			continue
		}
		if n > 0 {
			b.WriteByte(multisetDelim)
		}
		b.WriteString(escapeField(v.Name+"="+escapeForExpansion(v.Value), multisetDelim))
		n++
	}
	if n == 0 {
		return AppArg{}, rest, nil
	}
	return AppArg{s: b.String()}, rest, nil
}
