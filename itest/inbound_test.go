package itest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eslapp/eslapp/esl/esltest"
)

// plainEvent frames an event the way mod_event_socket sends it in plain
// format: URL-encoded header values, and the event's own Content-Length
// and body when it has one.
func plainEvent(headers [][2]string, body string) string {
	var ev strings.Builder
	for _, h := range headers {
		fmt.Fprintf(&ev, "%s: %s\n", h[0], h[1])
	}
	if body != "" {
		fmt.Fprintf(&ev, "Content-Length: %d\n\n%s", len(body), body)
	} else {
		ev.WriteString("\n")
	}
	return fmt.Sprintf("Content-Length: %d\nContent-Type: text/event-plain\n\n%s", ev.Len(), ev.String())
}

// The client's events: URL-decoded values, names with the subclass, the
// sequence and FreeSWITCH's time.
func TestInboundEvents(t *testing.T) {
	stream := "Content-Type: command/reply\nReply-Text: +OK accepted\n\n" +
		plainEvent([][2]string{
			{"Event-Name", "CHANNEL_HANGUP_COMPLETE"},
			{"Unique-ID", "7f4de4ba-1c5e-4b2c-9f5b-2f1e0c6a9d10"},
			{"Caller-Caller-ID-Number", "5512345678"},
			{"Event-Date-Timestamp", "1700000000123456"},
			{"Event-Sequence", "4711"},
			{"variable_wfe_branch", "OnSuccess"},
			{"variable_workflowResultOutput", "%7B%22name%22%3A%22Ada%20%2B%20Bob%22%7D"},
		}, "") +
		plainEvent([][2]string{
			{"Event-Name", "CUSTOM"},
			{"Event-Subclass", "eslapp%3A%3Aworkflow_result"},
			{"Call-UUID", "7f4de4ba-1c5e-4b2c-9f5b-2f1e0c6a9d10"},
		}, "{\"found\":true}\n")
	r := bufio.NewReader(strings.NewReader(stream))

	f, err := esltest.ReadFrame(r)
	if err != nil || f.Get("Content-Type") != "command/reply" || f.Get("Reply-Text") != "+OK accepted" {
		t.Fatalf("reply frame: %+v, %v", f, err)
	}

	f, err = esltest.ReadFrame(r)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := newEvent(f.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.Get("variable_workflowResultOutput"); got != `{"name":"Ada + Bob"}` {
		t.Errorf("URL-decoded value: %q (a '+' must stay a '+')", got)
	}
	if ev.Name() != "CHANNEL_HANGUP_COMPLETE" || ev.Sequence() != 4711 || ev.Time().UnixMicro() != 1700000000123456 {
		t.Errorf("event: %q %d %v", ev.Name(), ev.Sequence(), ev.Time())
	}

	f, err = esltest.ReadFrame(r)
	if err != nil {
		t.Fatal(err)
	}
	ev, err = newEvent(f.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Name() != "CUSTOM eslapp::workflow_result" || ev.Body != "{\"found\":true}\n" {
		t.Errorf("custom event: %q body %q", ev.Name(), ev.Body)
	}

	if _, err := esltest.ReadFrame(r); err != io.EOF {
		t.Errorf("at the end: %v, want io.EOF", err)
	}
	if _, err := newEvent([]byte("Unique-ID: x\n\n")); err == nil {
		t.Error("an event without Event-Name: no error")
	}
}

// fakeInbound plays FreeSWITCH's side of an inbound connection: the
// greeting, the password check, one api command, then the given frames.
func fakeInbound(t *testing.T, password string, after ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		io.WriteString(conn, "Content-Type: auth/request\n\n")
		for {
			line, err := readCommand(r)
			if err != nil {
				return
			}
			switch {
			case line == "auth "+password:
				io.WriteString(conn, "Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
			case strings.HasPrefix(line, "auth"):
				io.WriteString(conn, "Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
				return
			case strings.HasPrefix(line, "api"):
				body := "true\n"
				fmt.Fprintf(conn, "Content-Type: api/response\nContent-Length: %d\n\n%s", len(body), body)
			case strings.HasPrefix(line, "event"):
				io.WriteString(conn, "Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n")
				for _, f := range after {
					io.WriteString(conn, f)
				}
				return
			}
		}
	}()
	return ln.Addr().String()
}

// readCommand reads a command block as FreeSWITCH does: lines up to an
// empty line; the first is the command.
func readCommand(r *bufio.Reader) (string, error) {
	first := ""
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if first == "" {
				continue
			}
			return first, nil
		}
		if first == "" {
			first = line
		}
	}
}

func TestInboundConn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr := fakeInbound(t, "s3cret",
		plainEvent([][2]string{{"Event-Name", "DTMF"}, {"DTMF-Digit", "1"}}, ""),
		"Content-Type: text/disconnect-notice\nContent-Length: 0\n\n")
	c, err := DialInbound(ctx, addr, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if out, err := c.API("module_exists mod_ssml"); err != nil || out != "true" {
		t.Fatalf("api: %q, %v", out, err)
	}
	if _, err := c.Command("event plain DTMF"); err != nil {
		t.Fatal(err)
	}
	ev, err := c.Next()
	if err != nil || ev.Get("DTMF-Digit") != "1" {
		t.Fatalf("event: %+v, %v", ev, err)
	}
	if _, err := c.Next(); !errors.Is(err, errDisconnected) {
		t.Fatalf("after the notice: %v", err)
	}

	if _, err := DialInbound(ctx, fakeInbound(t, "right"), "wrong"); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if _, err := DialInbound(ctx, addr, "pass\nword"); err == nil {
		t.Fatal("a password with a line break was sent")
	}
}
