package esltest

// urlUnsafe is SWITCH_URL_UNSAFE (src/include/switch_utils.h): the printable
// characters switch_url_encode escapes. Characters below ' ' and above '~'
// are escaped too. Note what is NOT escaped: '/', ',', '!', '\”, '(', ')',
// '*', '$', '~', '-', '.', '_' (see "Wed,%2025%20Nov" and
// "RTP/AVP" in the transcripts).
const urlUnsafe = "\r\n #%&+:;<=>?@[\\]^`{|}\""

const upperHex = "0123456789ABCDEF"

// appendURLEncoded appends s encoded the way FreeSWITCH 1.10 serializes event
// header values: switch_url_encode (src/switch_utils.c), which is
// switch_url_encode_opt with double_encode false. That variant leaves an
// existing escape alone: a '%' followed by two UPPERCASE hex digits is copied
// as is ("50%20off" stays "50%20off", "%2a" becomes "%252a"), so a value
// that already looks URL-encoded is decoded once more by the reader. Like
// the C code it stops at a NUL byte.
func appendURLEncoded(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0 {
			break
		}
		if c == '%' && i+2 < len(s) && isUpperHex(s[i+1]) && isUpperHex(s[i+2]) {
			dst = append(dst, c)
			continue
		}
		if c < ' ' || c > '~' || indexByte(urlUnsafe, c) >= 0 {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&0x0f])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// URLEncode returns s encoded like FreeSWITCH's switch_url_encode (see
// appendURLEncoded).
func URLEncode(s string) string { return string(appendURLEncoded(nil, s)) }

func isUpperHex(c byte) bool { return ('0' <= c && c <= '9') || ('A' <= c && c <= 'F') }

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
