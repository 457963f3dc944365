package esl

import (
	"fmt"
	"strings"
)

// This file is the one place where text becomes part of a FreeSWITCH
// command. Every argument eslapp sends is an AppArg or APIArgs, and those
// can only be made here, by functions that know what FreeSWITCH does to the
// text on its way (BRIEF §6): header parsing, the expansion of ${...} before
// an application runs, the second expansion inside set, the delimiters of
// file_string:// and tts://.

// AppArg is an application argument, ready to send. The zero AppArg is "no
// argument".
type AppArg struct{ s string }

// String is the argument as sent.
func (a AppArg) String() string { return a.s }

// Fixed is an argument that eslapp itself wrote, such as "en number
// pronounced": it is sent as it is and FreeSWITCH may expand it. Never pass
// outside data (CRM results, caller names, channel variables) to Fixed.
func Fixed(s string) AppArg { return AppArg{s: s} }

// APIArgs are the arguments of an api command: words separated by single
// spaces. The zero value is "no arguments".
type APIArgs struct{ s string }

// String is the arguments as sent.
func (a APIArgs) String() string { return a.s }

// APIArg is a single api argument word.
func APIArg(word string) APIArgs { return APIArgsOf(word) }

// APIArgsOf joins words as api arguments. A word that is empty or holds
// white space, a newline or a NUL would change the command's meaning or end
// it; APIArgsOf panics on such a word, because api arguments are eslapp's
// own words (UUIDs, variable names, "all"). Use SafeAPIArgs for anything
// else.
func APIArgsOf(words ...string) APIArgs {
	a, err := SafeAPIArgs(words...)
	if err != nil {
		panic(err)
	}
	return a
}

// SafeAPIArgs is APIArgsOf that returns an *UnsafeValueError instead of
// panicking.
func SafeAPIArgs(words ...string) (APIArgs, error) {
	for _, w := range words {
		if w == "" || strings.ContainsAny(w, " \t\r\n\x00") {
			return APIArgs{}, &UnsafeValueError{Sink: "api argument", Reason: fmt.Sprintf("%q is not a single word", w)}
		}
	}
	return APIArgs{s: strings.Join(words, " ")}, nil
}

// reservedEventHeaders are headers eslapp never lets a caller of SendEvent
// set: they change how FreeSWITCH routes the event (Unique-ID queues it to a
// channel instead of firing it) or how the message is framed.
var reservedEventHeaders = map[string]bool{
	"unique-id": true, "content-length": true, "content-type": true,
	"event-name": true, "event-subclass": true, "event-uuid": true,
}

// sendEventMessage builds "sendevent CUSTOM" with a subclass, headers and an
// optional body.
func sendEventMessage(subclass string, headers []EventHeader, body []byte) (string, error) {
	if !isEventName(subclass) {
		return "", &UnsafeValueError{Sink: "event subclass", Reason: fmt.Sprintf("%q is not a subclass name", subclass)}
	}
	var b strings.Builder
	b.WriteString("sendevent CUSTOM\nEvent-Subclass: ")
	b.WriteString(subclass)
	for _, h := range headers {
		if !isWord(h.Name, "-_") || reservedEventHeaders[strings.ToLower(h.Name)] {
			return "", &UnsafeValueError{Sink: "event header", Reason: fmt.Sprintf("%q may not be set", h.Name)}
		}
		b.WriteString("\n")
		b.WriteString(h.Name)
		b.WriteString(": ")
		b.WriteString(eventHeaderValue(h.Value))
	}
	if len(body) > 0 {
		b.WriteString("\nContent-Length: ")
		b.WriteString(fmt.Sprint(len(body)))
		b.WriteString("\n\n")
		b.Write(body)
	}
	return b.String(), nil
}

// eventHeaderValue makes a value safe as a sendevent header: one line.
func eventHeaderValue(v string) string {
	return strings.NewReplacer("\r", " ", "\n", " ", "\x00", "").Replace(v)
}
