package esl

import (
	"math"
	"strings"
)

// Checks for the words eslapp puts into commands: names that FreeSWITCH
// takes as they are, so they may only contain what such names are made of.

func isAppName(s string) bool { return isWord(s, "_") }

// isTransferWord accepts an extension, dialplan or context name, the words
// of a transfer destination.
func isTransferWord(s string) bool { return isWord(s, "_-.+*#@") }
func isAPIName(s string) bool      { return isWord(s, "_") }

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

// IsTrue is FreeSWITCH's switch_true, exactly: how it reads a boolean
// variable. Call.Start relies on it to know whether FreeSWITCH expands
// an argument (app_disable_expand_variables); reading a value as true where
// FreeSWITCH does not would send outside data unescaped.
func IsTrue(v string) bool {
	switch strings.ToLower(v) {
	case "yes", "on", "true", "t", "enabled", "active", "allow":
		return true
	}
	// switch_is_number: one optional sign, then digits and dots.
	p := v
	if p != "" && (p[0] == '+' || p[0] == '-') {
		p = p[1:]
	}
	if p == "" {
		return false
	}
	for i := range len(p) {
		if p[i] != '.' && (p[i] < '0' || p[i] > '9') {
			return false
		}
	}
	// atoi: strtol saturates at the range of long, and the cast to int keeps
	// the low 32 bits.
	neg := v[0] == '-'
	var n int64
	for i := len(v) - len(p); i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		d := int64(v[i] - '0')
		switch {
		case neg && n < (math.MinInt64+d)/10:
			n = math.MinInt64
		case !neg && n > (math.MaxInt64-d)/10:
			n = math.MaxInt64
		case neg:
			n = n*10 - d
		default:
			n = n*10 + d
		}
	}
	return int32(n) != 0
}
