package prompts

import (
	"fmt"
	"path"
	"strings"

	"github.com/eslapp/eslapp/esl"
)

// Limits of mod_say_en (FreeSWITCH 1.10, verified on 1.10.12) and of
// esl.SayArg.
const (
	maxSayNumberDigits = 9  // en_say_general_count: more than 9 digits is a parse error
	maxSayDigits       = 32 // esl.SayArg accepts at most 32 characters
	maxCurrencyLen     = 15 // en_say_money: input longer than 15 characters is a parse error
)

// checkValue validates and normalises a value of kind k. It returns the
// value to use, or a reason why it cannot be played. TTS text is returned
// normalised; an empty result is reported, callers decide what that means.
func checkValue(k Kind, v string) (string, string) {
	switch k {
	case KindFile:
		return checkFileName(v)
	case KindTTS:
		if t := esl.NormalizeSpeech(v); t != "" {
			return t, ""
		}
		return "", "nothing to speak"
	case KindCurrency:
		return normalizeCurrency(v)
	case KindNumber:
		return normalizeNumber(v)
	case KindDigits:
		return normalizeDigits(v)
	}
	return "", fmt.Sprintf("no renderer for kind %d", k)
}

// normalizeCurrency turns an amount into what "say en currency pronounced"
// reads correctly: "12.50", "$12.50", "-$3", "$-3", "+7", "1,234.56",
// ".5" are accepted; the dollar sign, thousands commas, a plus sign and
// leading zeros are dropped, and cents are written with two digits
// ("12.5" becomes "12.50": mod_say_en would read the cents "5" as five
// cents). Cents beyond two places must be zeros. Thousands commas must
// group by three ("12,50" is refused, not read as 1250 dollars). At most 9
// digits of dollars (mod_say_en's limit).
func normalizeCurrency(v string) (string, string) {
	s := strings.TrimSpace(v)
	neg := false
	sign := func() {
		if s != "" && (s[0] == '-' || s[0] == '+') {
			neg = s[0] == '-'
			s = s[1:]
		}
	}
	sign()
	if strings.HasPrefix(s, "$") {
		s = s[1:]
		if !neg {
			sign()
		}
	}
	whole, cents, hasDot := strings.Cut(s, ".")
	if !hasDot && whole == "" || hasDot && whole == "" && cents == "" {
		return "", "not an amount"
	}
	whole, ok := stripGrouping(whole, true)
	if !ok || !allDigits(cents) {
		return "", "not an amount (digits, thousands commas, one decimal point, an optional sign and $)"
	}
	if len(cents) > 2 {
		if strings.Trim(cents[2:], "0") != "" {
			return "", "more than two decimal places"
		}
		cents = cents[:2]
	}
	if hasDot && cents != "" {
		cents += strings.Repeat("0", 2-len(cents))
	}
	whole = strings.TrimLeft(whole, "0")
	if whole == "" {
		whole = "0"
	}
	if len(whole) > maxSayNumberDigits {
		return "", fmt.Sprintf("more than %d digits of dollars (mod_say_en's limit)", maxSayNumberDigits)
	}
	out := whole
	if cents != "" {
		out += "." + cents
	}
	if neg && strings.Trim(out, "0.") != "" {
		out = "-" + out
	}
	if len(out) > maxCurrencyLen {
		return "", fmt.Sprintf("longer than %d characters (mod_say_en's limit)", maxCurrencyLen)
	}
	return out, ""
}

// normalizeNumber accepts a whole number from 0 to 999,999,999 (digits,
// optionally with thousands commas grouped by three) and returns it
// without commas and leading zeros. Signs and fractions are refused:
// mod_say_en fails on them.
func normalizeNumber(v string) (string, string) {
	s, ok := stripGrouping(strings.TrimSpace(v), false)
	if !ok {
		return "", "not a whole number (digits, optionally with thousands commas)"
	}
	s = strings.TrimLeft(s, "0")
	if s == "" {
		s = "0"
	}
	if len(s) > maxSayNumberDigits {
		return "", fmt.Sprintf("more than %d digits (mod_say_en's limit)", maxSayNumberDigits)
	}
	return s, ""
}

// normalizeDigits accepts digits, optionally grouped with spaces or
// hyphens ("555-0100", "4111 1111"), and returns the digits alone, at most
// 32 of them. '*' and '#' are refused: "say number iterated" reads only
// digits (mod_say_en fails on anything else).
func normalizeDigits(v string) (string, string) {
	var b strings.Builder
	for _, c := range strings.TrimSpace(v) {
		switch {
		case '0' <= c && c <= '9':
			b.WriteRune(c)
		case c == ' ' || c == '-':
		case c == '*' || c == '#':
			return "", "'*' and '#' cannot be said as digits"
		default:
			return "", "not digits"
		}
	}
	switch n := b.Len(); {
	case n == 0:
		return "", "no digits"
	case n > maxSayDigits:
		return "", fmt.Sprintf("%d digits; at most %d", n, maxSayDigits)
	}
	return b.String(), ""
}

// stripGrouping removes thousands commas from s after checking they group
// by three ("1,234,567"); s must hold digits only otherwise. An empty s is
// accepted when allowEmpty is set (the whole part of ".50").
func stripGrouping(s string, allowEmpty bool) (string, bool) {
	if s == "" {
		return "", allowEmpty
	}
	if !strings.Contains(s, ",") {
		return s, allDigits(s)
	}
	groups := strings.Split(s, ",")
	if len(groups[0]) == 0 || len(groups[0]) > 3 || !allDigits(groups[0]) {
		return "", false
	}
	for _, g := range groups[1:] {
		if len(g) != 3 || !allDigits(g) {
			return "", false
		}
	}
	return strings.Join(groups, ""), true
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isStreamScheme reports whether a file segment may name a URL with this
// scheme. FreeSWITCH plays each through a file-format module:
// mod_tone_stream (tone_stream, silence_stream) and mod_local_stream are
// in the default module set; http and https need mod_http_cache or
// mod_httapi, shout needs mod_shout.
func isStreamScheme(scheme string) bool {
	switch scheme {
	case "tone_stream", "silence_stream", "local_stream", "http", "https", "shout":
		return true
	}
	return false
}

// checkFileName checks a file segment's value (before the sounds
// directory is applied) and returns it trimmed:
//
//   - SCHEME://... passes through when SCHEME is a stream FreeSWITCH
//     plays (see isStreamScheme); other schemes (file_string://, tts://,
//     ...) are refused, they would nest play lists;
//   - an absolute path passes through;
//   - a relative name must stay inside the sounds directory (no ".."
//     escaping it), and may hold no ':' (FreeSWITCH reads "say:" and
//     "phrase:" as commands) and not start with '{' (file parameters).
//
// Control characters and a leading "^^" are refused (esl.File).
func checkFileName(v string) (string, string) {
	s := strings.TrimSpace(v)
	if s == "" {
		return "", "empty file name"
	}
	if _, err := esl.File(s); err != nil {
		return "", "not a usable file name (control characters)"
	}
	if scheme, _, ok := strings.Cut(s, "://"); ok {
		if !isStreamScheme(scheme) {
			return "", fmt.Sprintf("unsupported URL scheme %q (want a file, tone_stream, silence_stream, local_stream, http, https or shout)", scheme)
		}
		return s, ""
	}
	if strings.HasPrefix(s, "/") {
		return s, ""
	}
	switch {
	case strings.Contains(s, ":"):
		return "", "':' in a relative file name (FreeSWITCH reads say: and phrase: as commands)"
	case strings.HasPrefix(s, "{"):
		return "", "a file name starting with '{' (FreeSWITCH reads it as file parameters)"
	}
	clean := path.Clean(s)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", "a relative file name leading out of the sounds directory"
	}
	return clean, ""
}
