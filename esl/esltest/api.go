package esltest

import (
	"strconv"
	"strings"
	"time"
)

// apiCommand is "api CMD ARGS": api_exec runs the command and writes its
// api/response at once; what the command does to a channel (a break, a
// transfer, a hangup) shows up in events after the response, as in s2 and
// s9.
func (c *Call) apiCommand(line string) func() {
	return func() {
		body, effect := c.runAPI(line)
		c.sendAPIResponse(body)
		if effect != nil {
			effect()
		}
	}
}

// bgapi replies with a Job-UUID, runs the command, and fires
// BACKGROUND_JOB (which has no Unique-ID, so a myevents socket never gets it).
func (c *Call) bgapi(line string, cmd *Command) (string, func()) {
	job, ok := cmd.Header("job-uuid")
	if !ok || job == "" {
		job = NewUUID()
	}
	reply := "~Reply-Text: +OK Job-UUID: " + job + "\nJob-UUID: " + job + "\n\n"
	return reply, func() {
		body, effect := c.runAPI(line)
		name, arg, _ := strings.Cut(line, " ")
		id := eventIndex["BACKGROUND_JOB"]
		if c.sub.wantsName(id, "") {
			h := c.fs.appendCoreHeaders(nil, "BACKGROUND_JOB", time.Now(), locBackgroundJob)
			h = append(h, Header{"Job-UUID", job}, Header{"Job-Command", name}, Header{"Job-Owner-UUID", c.uuid})
			if arg != "" {
				h = append(h, Header{"Job-Command-Arg", arg})
			}
			if c.sub.delivers(h, c.uuid) {
				c.sendEvent(h, []byte(body))
			}
		}
		if effect != nil {
			effect()
		}
	}
}

// on runs f on the target call: inline for this call (after the reply),
// through its goroutine for another call of the same host.
func (c *Call) on(t *Call, f func()) func() {
	if t == c {
		return f
	}
	return func() {
		select {
		case t.ctrl <- f:
		default:
			go t.do(f)
		}
	}
}

const noSuchChannel = "-ERR No such channel!\n"

// runAPI runs the API commands of mod_commands.c that an ESL application
// uses on its channel. Output texts are FreeSWITCH's; an unknown command
// gives "-ERR NAME Command not found!\n" (s5).
func (c *Call) runAPI(line string) (string, func()) {
	name, arg, _ := strings.Cut(line, " ")
	// switch_api_execute strips blanks around the argument.
	arg = strings.TrimSpace(arg)
	switch name {
	case "uuid_break":
		argv := SeparateString(arg, ' ', 2)
		if len(argv) == 0 || argv[0] == "" {
			return "-USAGE: <uuid> [all]\n", nil
		}
		t := c.fs.locate(argv[0])
		if t == nil {
			return noSuchChannel, nil
		}
		// break_function: strstr(flag, "all").
		all := len(argv) > 1 && strings.Contains(argv[1], "all")
		return "+OK\n", c.on(t, func() { t.breakMedia(all) })
	case "uuid_getvar":
		argv := SeparateString(arg, ' ', 3)
		if len(argv) < 2 || argv[0] == "" {
			return "-USAGE: <uuid> <var> [index]\n", nil
		}
		t := c.fs.locate(argv[0])
		if t == nil {
			return noSuchChannel, nil
		}
		if argv[1] == "" {
			return "-ERR No variable name specified!\n", nil
		}
		if v, ok := t.lookupLocked(argv[1]); ok {
			return v, nil
		}
		return "_undef_", nil
	case "uuid_setvar":
		argv := SeparateString(arg, ' ', 3)
		if len(argv) < 2 || argv[0] == "" {
			return "-USAGE: <uuid> <var> [value]\n", nil
		}
		t := c.fs.locate(argv[0])
		if t == nil {
			return noSuchChannel, nil
		}
		if argv[1] == "" {
			return "-ERR No variable specified\n", nil
		}
		val := ""
		if len(argv) == 3 {
			val = argv[2]
		}
		c.setOn(t, argv[1], val)
		return "+OK\n", nil
	case "uuid_setvar_multi":
		uuid, vars, ok := strings.Cut(arg, " ")
		if !ok {
			return "-USAGE: <uuid> <var>=<value>;<var>=<value>...\n", nil
		}
		t := c.fs.locate(uuid)
		if t == nil {
			return noSuchChannel, nil
		}
		out, n := "", 0
		for _, kv := range SeparateString(vars, ';', 64) {
			k, v, _ := strings.Cut(kv, "=")
			if k == "" {
				out += "-ERR No variable specified\n"
				continue
			}
			c.setOn(t, k, v)
			n++
		}
		if n > 0 {
			return out + "+OK\n", nil
		}
		return out + "-USAGE: <uuid> <var>=<value>;<var>=<value>...\n", nil
	case "uuid_transfer":
		argv := SeparateString(arg, ' ', 5)
		if len(argv) > 1 && (argv[1] == "-bleg" || argv[1] == "-both") {
			argv = append(argv[:1], argv[2:]...)
		}
		if len(argv) < 2 || argv[0] == "" || argv[1] == "" {
			return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n", nil
		}
		t := c.fs.locate(argv[0])
		if t == nil {
			return noSuchChannel, nil
		}
		dest := argv[1:]
		return "+OK\n", c.on(t, func() { t.transfer(dest) })
	case "uuid_kill":
		argv := SeparateString(arg, ' ', 2)
		if len(argv) == 0 || argv[0] == "" {
			return "-USAGE: <uuid> [cause]\n", nil
		}
		t := c.fs.locate(argv[0])
		if t == nil {
			return noSuchChannel, nil
		}
		cause := "NORMAL_CLEARING"
		if len(argv) > 1 && argv[1] != "" {
			cause = strings.ToUpper(argv[1])
		}
		return "+OK\n", c.on(t, func() { t.hangupChannel(cause, "send_bye") })
	case "sched_del":
		// sched_del_function: a task id, or a group (sched_transfer's group
		// is the channel's UUID).
		if arg == "" {
			return "-ERR Invalid syntax\n", nil
		}
		return "+OK Deleted: " + strconv.Itoa(c.fs.sched.del(arg)) + "\n", nil
	case "sched_api":
		return c.fs.schedAPI(arg), nil
	case "echo":
		return arg, nil
	case "uuid_exists":
		if c.fs.locate(strings.TrimSpace(arg)) != nil {
			return "true", nil
		}
		return "false", nil
	}
	return "-ERR " + name + " Command not found!\n", nil
}

// setOn is uuid_setvar's switch_channel_add_variable_var_check(channel,
// name, value, SWITCH_FALSE, SWITCH_STACK_BOTTOM): no expansion and no
// check, an empty value unsets. On this call it takes effect before the
// api/response is written; another call's goroutine applies it right after.
func (c *Call) setOn(t *Call, name, val string) {
	if t == c {
		c.setVar(name, val)
		return
	}
	c.on(t, func() { t.setVar(name, val) })()
}
