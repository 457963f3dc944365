package esl

import "strings"

// Checks for the words eslapp puts into commands: names that FreeSWITCH
// takes as they are, so they may only contain what such names are made of.

func isAppName(s string) bool { return isWord(s, "_") }
func isAPIName(s string) bool { return isWord(s, "_") }

// isEventName accepts what "event plain ..." and "nixevent" take: event
// names (CHANNEL_EXECUTE) and CUSTOM subclasses.
func isEventName(s string) bool { return IsEventSubclass(s) }

// IsEventSubclass reports whether s can be a CUSTOM event's subclass that
// eslapp fires and subscribes to: letters, digits and "_:-.", at most 128
// bytes (eslapp::workflow_result, acme.crm-events). The rule sendevent
// applies, and the one a flow's custom_event subclass is checked against.
func IsEventSubclass(s string) bool { return isWord(s, "_:-.") }

// IsEventHeaderName reports whether eslapp may set a header of that name on
// an event it fires: a plain name, and not one that frames the message or
// routes the event (Unique-ID queues it to a channel instead of firing it).
func IsEventHeaderName(s string) bool {
	return isWord(s, "-_") && !reservedEventHeaders[strings.ToLower(s)]
}

// IsHangupCause reports whether s can be a hangup cause eslapp sends:
// FreeSWITCH cause names (NORMAL_CLEARING) and Q.850 numbers (16).
func IsHangupCause(s string) bool { return isHangupCause(s) }

// isChannelID accepts a channel's Unique-ID: FreeSWITCH's UUIDs, and the
// plain words an origination_uuid may be.
func isChannelID(s string) bool { return isWord(s, "-_.:@+") }

// isHangupCause accepts FreeSWITCH cause names (NORMAL_CLEARING) and Q.850
// numbers (16).
func isHangupCause(s string) bool { return isWord(s, "_") }

// IsVarName reports whether s can name a channel variable that eslapp sets:
// letters, digits, '_', '-' and '.', starting with a letter or '_'. This
// excludes '=' (which ends the name in "set NAME=VALUE"), spaces, '$', '{'
// and every other character FreeSWITCH treats specially.
func IsVarName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	c := s[0]
	if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
		return false
	}
	return isWord(s, "_-.")
}

func isWord(s, extra string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		default:
			ok := false
			for j := range len(extra) {
				if c == extra[j] {
					ok = true
					break
				}
			}
			if !ok {
				return false
			}
		}
	}
	return true
}
