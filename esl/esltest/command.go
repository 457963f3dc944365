package esltest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Header is one header line, name and value as they were on the wire (not
// URL-decoded).
type Header struct {
	Name, Value string
}

// Command is one command the application sent to the double, as FreeSWITCH's
// read_packet and parse_command see it.
type Command struct {
	// At is when the double finished reading the command.
	At time.Time
	// Raw holds the bytes of the command: its header block (after the
	// CR/LF bytes read_packet skips before a command) and its body.
	Raw []byte
	// Name is the command FreeSWITCH's parse_command selects for it:
	// connect, myevents, event, nixevent, noevents, linger, nolinger,
	// sendmsg, sendevent, api, bgapi, resume, exit, getvar, filter,
	// divert_events, log, nolog, auth, userauth; otherwise the first word in
	// lower case.
	Name string
	// Line is the command line: the header block up to strip_cr's cut.
	Line string
	// Headers are the header lines after the command line, in order, raw.
	Headers []Header
	// Body is the Content-Length body, up to its first NUL byte (FreeSWITCH
	// stores it with "%s").
	Body []byte

	// For sendmsg: the fields FreeSWITCH's switch_ivr_parse_event reads.

	// CallCommand is the call-command header (execute, hangup, ...).
	CallCommand string
	// App and AppArg are execute-app-name and execute-app-arg, or the body
	// when execute-app-arg is empty and Content-Type is text/plain.
	App, AppArg string
	// EventUUID is the Event-UUID header: the Application-UUID of the events.
	EventUUID string
	// EventLock is switch_true(event-lock).
	EventLock bool
	// Loops is the loops header (default 1).
	Loops int
}

// Header returns the first header with this name (case-insensitive), the
// way switch_event_get_header finds it.
func (c *Command) Header(name string) (string, bool) {
	for _, h := range c.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

func (c *Command) header(name string) string {
	v, _ := c.Header(name)
	return v
}

// Arg returns the command line after the command word and its spaces.
func (c *Command) Arg() string {
	_, arg, _ := strings.Cut(c.Line, " ")
	return strings.TrimLeft(arg, " ")
}

// maxCommandBlock is read_packet's max_len: a header block that reaches it
// is cut and parsed as is.
const maxCommandBlock = 10485760

// MaxCommandBody bounds a command's Content-Length. FreeSWITCH has no such
// limit (it mallocs what the header says); the double refuses larger bodies
// with an error so that garbage input cannot make it allocate gigabytes.
const MaxCommandBody = 16 << 20

// ErrBodyTooLarge is returned by ReadCommand for a Content-Length above
// MaxCommandBody.
var ErrBodyTooLarge = errors.New("esltest: command body exceeds MaxCommandBody")

// ReadCommand reads one command from r exactly as FreeSWITCH 1.10's
// read_packet (src/mod/event_handlers/mod_event_socket/mod_event_socket.c)
// does:
//
//   - CR and LF bytes before the first byte of a command are skipped (the
//     "bah" branch). This is what happens to the "\r\n\r\n" eslapp writes
//     after every command, also after a Content-Length body: those bytes are
//     read as the start of the next packet and dropped, never as a body.
//   - the header block ends at the second LF counted with CRs ignored and
//     any other byte resetting the count: "\n\n", "\r\n\r\n" and "\n\r\n"
//     all end it.
//   - lines are split at the first CR in the rest of the block, or, when
//     there is none, at the first LF (strchr order), so a block mixing "\n"
//     lines with a later "\r" loses the lines in between, as in FreeSWITCH.
//   - a line "Name: value" gives a header; spaces after the colon are
//     skipped, the name is kept as is; a line without a colon is ignored.
//   - each Content-Length header (any case) with a value above zero makes it
//     read that many bytes right away as the body; the last one wins, and
//     the body is cut at its first NUL.
//
// At EOF before any byte of a command it returns io.EOF; inside a command,
// io.ErrUnexpectedEOF.
func ReadCommand(r *bufio.Reader) (*Command, error) {
	var block []byte
	crcount := 0
	for crcount < 2 {
		c, err := r.ReadByte()
		if err != nil {
			if len(block) == 0 && errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(block) == 0 && (c == '\r' || c == '\n') {
			continue
		}
		block = append(block, c)
		if c == '\n' {
			crcount++
		} else if c != '\r' {
			crcount = 0
		}
		if len(block) >= maxCommandBlock {
			crcount = 2
		}
	}
	cmd := &Command{Raw: block}
	text := string(block)
	if i := strings.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	cmd.Line = stripCR(text)
	for cur, count := 0, 0; cur >= 0; {
		next := -1
		if i := strings.IndexByte(text[cur:], '\r'); i >= 0 {
			next = cur + i
		} else if i := strings.IndexByte(text[cur:], '\n'); i >= 0 {
			next = cur + i
		}
		if next >= 0 {
			for next < len(text) && (text[next] == '\r' || text[next] == '\n') {
				next++
			}
		}
		count++
		if count > 1 {
			if err := cmd.addLine(r, stripCR(text[cur:])); err != nil {
				return nil, err
			}
		}
		cur = next
	}
	cmd.Name = commandName(cmd.Line)
	cmd.fillSendmsg()
	return cmd, nil
}

func (cmd *Command) addLine(r *bufio.Reader, line string) error {
	if line == "" {
		return nil
	}
	name, val, ok := strings.Cut(line, ":")
	if !ok {
		return nil
	}
	val = strings.TrimLeft(val, " ")
	if val == "" {
		// switch_event_base_add_header: an empty value deletes the header.
		kept := cmd.Headers[:0]
		for _, h := range cmd.Headers {
			if !strings.EqualFold(h.Name, name) {
				kept = append(kept, h)
			}
		}
		cmd.Headers = kept
		return nil
	}
	cmd.Headers = append(cmd.Headers, Header{Name: name, Value: val})
	if !strings.EqualFold(name, "content-length") {
		return nil
	}
	n := atoi(val)
	if n <= 0 {
		return nil
	}
	if n > MaxCommandBody {
		return ErrBodyTooLarge
	}
	body, err := readN(r, n)
	if err != nil {
		return fmt.Errorf("esltest: reading %d-byte command body: %w", n, err)
	}
	cmd.Raw = append(cmd.Raw, body...)
	if i := bytes.IndexByte(body, 0); i >= 0 {
		body = body[:i]
	}
	cmd.Body = body
	return nil
}

func (cmd *Command) fillSendmsg() {
	if cmd.Name != "sendmsg" {
		return
	}
	cmd.CallCommand = cmd.header("call-command")
	cmd.App = cmd.header("execute-app-name")
	cmd.AppArg = cmd.header("execute-app-arg")
	if ct := cmd.header("content-type"); cmd.AppArg == "" && strings.EqualFold(ct, "text/plain") {
		cmd.AppArg = string(cmd.Body)
	}
	cmd.EventUUID = cmd.header("event-uuid")
	cmd.EventLock = switchTrue(cmd.header("event-lock"))
	cmd.Loops = 1
	if l, ok := cmd.Header("loops"); ok {
		cmd.Loops = atoi(l)
	}
}

// stripCR is mod_event_socket's strip_cr: cut at the first CR, or, when
// there is none, at the first LF.
func stripCR(s string) string {
	if i := strings.IndexByte(s, '\r'); i >= 0 {
		return s[:i]
	}
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// commandPrefixes lists parse_command's tests in its order, with the
// strncasecmp prefix each one uses.
var commandPrefixes = []struct{ prefix, name string }{
	{"exit", "exit"},
	{"...", "exit"},
	{"auth ", "auth"},
	{"userauth ", "userauth"},
	{"filter ", "filter"},
	{"resume", "resume"},
	{"connect", "connect"},
	{"getvar", "getvar"},
	{"myevents", "myevents"},
	{"divert_events", "divert_events"},
	{"sendmsg", "sendmsg"},
	{"sendevent", "sendevent"},
	{"api ", "api"},
	{"bgapi ", "bgapi"},
	{"log", "log"},
	{"linger", "linger"},
	{"nolinger", "nolinger"},
	{"nolog", "nolog"},
	{"event", "event"},
	{"nixevent", "nixevent"},
	{"noevents", "noevents"},
}

func commandName(line string) string {
	for _, p := range commandPrefixes {
		if hasPrefixFold(line, p.prefix) {
			return p.name
		}
	}
	w, _, _ := strings.Cut(line, " ")
	return strings.ToLower(w)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// switchTrue is FreeSWITCH's switch_true (src/include/switch_utils.h):
// "enable" is not in its list, and a number is atoi's int, 32 bits.
func switchTrue(s string) bool {
	switch strings.ToLower(s) {
	case "yes", "on", "true", "t", "enabled", "active", "allow":
		return true
	}
	return isNumber(s) && atoi32(s) != 0
}

// atoi32 is glibc's atoi: strtol (saturating at 64 bits) cast to int.
func atoi32(s string) int32 {
	neg := strings.HasPrefix(s, "-")
	i := 0
	if i < len(s) && (s[0] == '-' || s[0] == '+') {
		i++
	}
	var n int64
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := int64(s[i] - '0')
		switch {
		case neg && n < (-1<<63+d)/10:
			n = -1 << 63
		case !neg && n > (1<<63-1-d)/10:
			n = 1<<63 - 1
		case neg:
			n = n*10 - d
		default:
			n = n*10 + d
		}
	}
	return int32(n)
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && c != '.' && !(i == 0 && (c == '-' || c == '+')) {
			return false
		}
	}
	return true
}

// readN reads exactly n bytes, growing the buffer as data arrives so that
// a bogus length on a short input costs nothing.
func readN(r io.Reader, n int) ([]byte, error) {
	var buf bytes.Buffer
	if n <= 64<<10 {
		buf.Grow(n)
	}
	got, err := io.CopyN(&buf, r, int64(n))
	if got < int64(n) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf.Bytes(), nil
}
