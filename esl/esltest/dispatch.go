package esltest

import (
	"strconv"
	"strings"
	"time"
)

// process runs one command the way listener_run and parse_command
// (mod_event_socket.c) do, and sends the reply.
func (c *Call) process(cmd *Command) {
	first := !c.gotFirst
	c.gotFirst = true
	reply, after := c.parse(cmd)
	// listener_run parses the first packet of an outbound session but never
	// sends its reply (only "connect" writes, by itself).
	if reply != "" && !first {
		c.sendReply(reply)
	}
	if after != nil {
		after()
	}
	if !c.running && !c.closed {
		c.exitClose()
	}
}

// parse is parse_command for an outbound, authenticated listener: the
// reply text ("" for none, "~..." for raw headers) and what to do after
// the reply is on the wire.
func (c *Call) parse(cmd *Command) (string, func()) {
	line := cmd.Line
	switch cmd.Name {
	case "exit":
		c.running = false
		return "+OK bye", nil
	case "filter":
		return c.filter(line[len("filter "):]), nil
	case "resume":
		c.resume = true
		c.setVar("socket_resume", "true")
		c.mu.Lock()
		c.outcome.ResumeReceived = true
		c.mu.Unlock()
		return "+OK", nil
	case "connect":
		c.sendConnect()
		return "", nil
	case "getvar":
		// switch_channel_get_variable: channel variable, profile field or
		// global; an unset or empty value ends as "-ERR command not found".
		val := ""
		if _, arg, ok := strings.Cut(line, " "); ok {
			val, _ = c.lookup(arg, -1)
		}
		return orNotFound(val), nil
	case "myevents":
		// parse_command looks for the format with strstr on the whole block.
		return c.myevents(string(cmd.Raw)), nil
	case "divert_events":
		onoff := strings.TrimLeft(line[len("divert_events"):], " ")
		if onoff == "" {
			return "-ERR missing value.", nil
		}
		if strings.EqualFold(onoff, "on") {
			return "+OK events diverted", nil
		}
		return "+OK events not diverted", nil
	case "sendmsg":
		return c.sendmsg(cmd)
	}
	if c.opts.NotFull {
		return "-ERR command not found", nil
	}
	switch cmd.Name {
	case "sendevent":
		return c.sendevent(cmd), nil
	case "api":
		return "", c.apiCommand(line[len("api "):])
	case "bgapi":
		return c.bgapi(line[len("bgapi "):], cmd)
	case "log":
		level := strings.TrimPrefix(line[len("log"):], " ")
		if level == "" {
			c.logOn = true
			return "+OK log level  [7]", nil
		}
		n, ok := logLevels[strings.ToLower(level)]
		if !ok {
			return "-ERR invalid log level", nil
		}
		c.logOn = true
		return "+OK log level " + level + " [" + strconv.Itoa(n) + "]", nil
	case "linger":
		// parse_command looks at the unstripped block: "linger N" lingers N
		// seconds, plain "linger" forever (Linger-Time -1).
		c.linger = true
		c.lingerSecs = -1
		if raw := cmd.Raw; len(raw) > 7 && raw[6] == ' ' && raw[7] != 0 {
			c.lingerSecs = atoi(string(raw[7:]))
			return "+OK will linger " + strconv.Itoa(c.lingerSecs) + " seconds", nil
		}
		return "+OK will linger", nil
	case "nolinger":
		c.linger = false
		return "+OK will not linger", nil
	case "nolog":
		if !c.logOn {
			return "-ERR not loging", nil
		}
		c.logOn = false
		return "+OK no longer logging", nil
	case "event":
		return c.event(line), nil
	case "nixevent":
		return c.nixevent(line), nil
	case "noevents":
		if !c.sub.on {
			return "-ERR not listening for events", nil
		}
		c.sub.on = false
		c.sub.list = [len(c.sub.list)]bool{}
		c.sub.custom = nil
		return "+OK no longer listening for events", nil
	}
	return "-ERR command not found", nil
}

func orNotFound(s string) string {
	if s == "" {
		return "-ERR command not found"
	}
	return s
}

var logLevels = map[string]int{
	"console": 0, "alert": 1, "crit": 2, "err": 3, "error": 3, "warning": 4,
	"notice": 5, "info": 6, "debug": 7,
}

func (c *Call) myevents(line string) string {
	if c.sub.myevents {
		return "-ERR aready enabled."
	}
	for _, n := range myEvents {
		c.sub.list[eventIndex[n]] = true
	}
	c.sub.myevents = true
	c.sub.on = true
	switch {
	case strings.Contains(line, "xml") || strings.Contains(line, "XML"):
		c.sub.format = "xml"
	case strings.Contains(line, "json") || strings.Contains(line, "JSON"):
		c.sub.format = "json"
	}
	if c.sub.format != "" && c.sub.format != "plain" {
		c.logf("event format %s is not modelled: events stay plain", c.sub.format)
	}
	return "+OK Events Enabled"
}

// event is parse_command's "event": the first word may choose the format;
// names are events; after CUSTOM every word is a subclass.
func (c *Call) event(line string) string {
	i := strings.IndexByte(line[min(5, len(line)):], ' ')
	if i < 0 {
		return "-ERR no keywords supplied"
	}
	words := strings.Split(line[5+i+1:], " ")
	keys, custom := 0, false
	for n, w := range words {
		if n == 0 {
			switch strings.ToLower(w) {
			case "xml", "plain", "json":
				c.sub.format = strings.ToLower(w)
				continue
			}
		}
		if custom {
			if c.sub.custom == nil {
				c.sub.custom = make(map[string]bool)
			}
			c.sub.custom[w] = true
			continue
		}
		id, ok := nameEvent(w)
		if !ok {
			continue
		}
		keys++
		if id == evAll {
			for x := range evAll {
				c.sub.list[x] = true
			}
		}
		c.sub.list[id] = true
		if id == evCustom {
			custom = true
		}
	}
	if keys == 0 {
		return "-ERR no keywords supplied"
	}
	c.sub.on = true
	format := c.sub.format
	if format == "" {
		format = "plain"
	}
	return "+OK event listener enabled " + format
}

// nixevent mirrors parse_command, which starts scanning at cmd+5.
func (c *Call) nixevent(line string) string {
	i := strings.IndexByte(line[min(5, len(line)):], ' ')
	if i < 0 {
		return "-ERR no keywords supplied"
	}
	keys, custom := 0, false
	for _, w := range strings.Split(line[5+i+1:], " ") {
		if custom {
			delete(c.sub.custom, w)
			continue
		}
		id, ok := nameEvent(w)
		if !ok {
			continue
		}
		keys++
		switch {
		case id == evCustom:
			custom = true
		case id == evAll:
			c.sub.list = [len(c.sub.list)]bool{}
		default:
			if c.sub.list[evAll] {
				c.sub.list[evAll] = false
				for x := range evAll {
					c.sub.list[x] = true
				}
			}
			c.sub.list[id] = false
		}
	}
	if keys == 0 {
		return "-ERR no keywords supplied"
	}
	c.sub.on = true
	return "+OK events nixed"
}

// filter is parse_command's "filter".
func (c *Call) filter(arg string) string {
	arg = strings.TrimLeft(arg, " ")
	name, val, hasVal := strings.Cut(arg, " ")
	if strings.EqualFold(name, "delete") && hasVal {
		name, val, hasVal = strings.Cut(val, " ")
		if strings.EqualFold(name, "all") {
			c.sub.filters = nil
		} else {
			kept := c.sub.filters[:0]
			for _, f := range c.sub.filters {
				if strings.EqualFold(f.Name, name) && (!hasVal || f.Value == val) {
					continue
				}
				kept = append(kept, f)
			}
			c.sub.filters = kept
		}
		return "+OK filter deleted. [" + name + "][" + val + "]"
	}
	if !hasVal {
		return "-ERR invalid syntax"
	}
	if strings.EqualFold(name, "add") {
		name, val, _ = strings.Cut(val, " ")
	}
	c.sub.filters = append(c.sub.filters, Header{name, val})
	return "+OK filter added. [" + name + "]=[" + val + "]"
}

// sendmsg queues the message on the addressed channel
// (switch_core_session_queue_private_event) and replies +OK at once.
func (c *Call) sendmsg(cmd *Command) (string, func()) {
	uuid := strings.TrimLeft(cmd.Line[len("sendmsg"):], " ")
	if uuid == "" {
		uuid = cmd.header("session-id")
	}
	if uuid == c.uuid {
		uuid = ""
	}
	if uuid == "" {
		return "+OK", func() {
			c.queue = append(c.queue, cmd)
			c.pump()
		}
	}
	target := c.fs.locate(uuid)
	if target == nil {
		return "-ERR invalid session id [" + uuid + "]", nil
	}
	c.on(target, func() {
		target.queue = append(target.queue, cmd)
		target.pump()
	})()
	return "+OK", nil
}

// sendevent fires an event built from the command, or queues it to the
// channel its Unique-ID names. A fired event reaches this socket only if it
// passes the subscription, which with myevents requires this channel's
// Unique-ID: that is why s1's CUSTOM event never came back.
func (c *Call) sendevent(cmd *Command) string {
	evUUID := NewUUID()
	ename := strings.TrimLeft(cmd.Line[len("sendevent"):], " \t")
	id, ok := nameEvent(ename)
	name := "CLONE"
	if ok {
		name = eventNames[id]
	} else {
		id = eventIndex["CLONE"]
	}
	h := make([]Header, 0, len(cmd.Headers)+16)
	subclass, _ := cmd.Header("Event-Subclass")
	if id == evCustom && subclass != "" {
		h = append(h, Header{"Event-Subclass", subclass})
	}
	h = append(h, Header{"Command", cmd.Line})
	for _, x := range cmd.Headers {
		if id == evCustom && subclass != "" && strings.EqualFold(x.Name, "Event-Subclass") {
			continue
		}
		h = append(h, x)
	}
	h = append(h, Header{"Event-UUID", evUUID})
	fired := FiredEvent{At: time.Now(), From: c.uuid, Name: name, Subclass: subclass, Body: cmd.Body}
	if target, _ := cmd.Header("unique-id"); target != "" {
		if t := c.fs.locate(target); t != nil {
			fired.QueuedTo = target
			fired.Headers = h
			c.fs.addFired(fired)
			// switch_core_session_queue_event: the channel's park loop
			// parses queued events like sendmsg messages.
			msg := &Command{At: cmd.At, Name: "sendmsg", Line: "sendmsg", Headers: cmd.Headers, Body: cmd.Body}
			msg.fillSendmsg()
			c.on(t, func() { t.queue = append(t.queue, msg); t.pump() })()
			return "+OK " + evUUID
		}
	}
	h = c.fs.appendCoreHeaders(h, name, time.Now(), locSendEvent)
	fired.Headers = h
	c.fs.addFired(fired)
	if c.sub.wantsName(id, subclass) && c.sub.delivers(h, c.uuid) {
		var body []byte
		if len(cmd.Body) > 0 {
			body = cmd.Body
		}
		c.sendEvent(h, body)
	}
	return "+OK " + evUUID
}
