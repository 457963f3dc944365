package esltest

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// scheduler is FreeSWITCH's core scheduler (switch_scheduler.c) as the
// double needs it: tasks with an id and a group, each run once at its time
// by a timer. A task is taken away under the scheduler's one lock, by its
// run or by a deletion, so of several sched_del of the same group or id
// exactly one gets "Deleted: 1" — the property socket-less claims rest on.
//
// FreeSWITCH counts whole seconds and looks at its tasks every 500 ms, so
// "+N" fires N−1 to N+0.5 s after it is set; the double fires at N times
// Options.Second exactly (tests shorten the second).
type scheduler struct {
	fs *FreeSWITCH

	mu    sync.Mutex
	last  uint32
	tasks map[uint32]*schedTask
}

type schedTask struct {
	id    uint32
	group string
	cmd   string // the api command, "uuid_transfer UUID OnError XML ctx"
	timer *time.Timer
}

// add schedules cmd after d in group and returns its task id.
func (s *scheduler) add(d time.Duration, group, cmd string) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tasks == nil {
		s.tasks = make(map[uint32]*schedTask)
	}
	s.last++
	t := &schedTask{id: s.last, group: group, cmd: cmd}
	s.tasks[t.id] = t
	t.timer = time.AfterFunc(d, func() { s.run(t.id) })
	return t.id
}

// del is sched_del_function: a digit string is a task id, anything else
// a group. It returns how many tasks it deleted.
func (s *scheduler) del(arg string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	if id, err := strconv.ParseUint(arg, 10, 32); err == nil && isDigits(arg) {
		if t := s.tasks[uint32(id)]; t != nil {
			t.timer.Stop()
			delete(s.tasks, t.id)
			n++
		}
		return n
	}
	for id, t := range s.tasks {
		if t.group == arg {
			t.timer.Stop()
			delete(s.tasks, id)
			n++
		}
	}
	return n
}

// pending reports the tasks of a group not yet run or deleted.
func (s *scheduler) pending(group string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.tasks {
		if t.group == group {
			n++
		}
	}
	return n
}

// run takes a task away and runs its command as the scheduler thread
// does (sch_api_callback: switch_api_execute, no session).
func (s *scheduler) run(id uint32) {
	s.mu.Lock()
	t := s.tasks[id]
	delete(s.tasks, id)
	s.mu.Unlock()
	if t == nil {
		return // deleted meanwhile
	}
	s.fs.runScheduled(t.group, t.cmd)
}

// runScheduled runs a scheduled api command. A uuid_transfer of a call is
// that call's net firing: its outcome says so, and which group fired. One
// for a call that is gone does nothing (FreeSWITCH answers "No such
// channel" to nobody).
func (fs *FreeSWITCH) runScheduled(group, cmd string) {
	name, arg, _ := strings.Cut(cmd, " ")
	if name == "uuid_transfer" {
		uuid, _, _ := strings.Cut(strings.TrimSpace(arg), " ")
		t := fs.locate(uuid)
		if t == nil {
			return
		}
		t.mu.Lock()
		t.outcome.NetFired = true
		t.outcome.NetGroup = group
		t.mu.Unlock()
	}
	body, effect := fs.sys.runAPI(cmd)
	if effect != nil {
		effect()
	}
	if strings.HasPrefix(body, "-") {
		fs.logf("scheduler: %s: %s", cmd, strings.TrimSpace(body))
	}
}

// schedAPI is sched_api_function: "+N GROUP COMMAND" (N seconds from now),
// "@N ..." (recurring: not modelled) or an absolute epoch. It answers
// "+OK Added: ID".
func (fs *FreeSWITCH) schedAPI(arg string) string {
	const usage = "-ERR Invalid syntax. USAGE: [+@]<time> <group_name> <command_string>[&]\n"
	tm, rest, ok := strings.Cut(arg, " ")
	if !ok {
		return usage
	}
	group, cmd, ok := strings.Cut(rest, " ")
	if !ok {
		return usage
	}
	cmd = strings.TrimSuffix(cmd, "&")
	var d time.Duration
	switch {
	case strings.HasPrefix(tm, "+"):
		d = time.Duration(atoi(tm[1:])) * fs.opts.Second
	case strings.HasPrefix(tm, "@"):
		fs.logf("sched_api: recurring tasks are not modelled: %q", arg)
		return usage
	default:
		d = time.Until(time.Unix(int64(atoi(tm)), 0))
	}
	return "+OK Added: " + strconv.FormatUint(uint64(fs.sched.add(max(d, 0), group, cmd)), 10) + "\n"
}

// ScheduledTasks is the number of tasks of a scheduler group not yet run
// or deleted (the socket-less nets: "eslapp-pick-UUID", "eslapp-net-UUID",
// or the call's UUID for a dialplan's sched_transfer).
func (fs *FreeSWITCH) ScheduledTasks(group string) int { return fs.sched.pending(group) }

func isDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// RunScheduled runs a scheduler group's tasks now, as if their time had
// come (a test standing in for a net that fires while eslapp stands
// still). It returns how many ran.
func (fs *FreeSWITCH) RunScheduled(group string) int {
	fs.sched.mu.Lock()
	var ids []uint32
	for id, t := range fs.sched.tasks {
		if t.group == group {
			ids = append(ids, id)
		}
	}
	fs.sched.mu.Unlock()
	n := 0
	for _, id := range ids {
		fs.sched.mu.Lock()
		t := fs.sched.tasks[id]
		fs.sched.mu.Unlock()
		if t != nil && t.timer.Stop() {
			fs.sched.run(id)
			n++
		}
	}
	return n
}

// Schedule adds a task as sched_api does, for a test: cmd runs after d in
// group. It returns the task's id.
func (fs *FreeSWITCH) Schedule(d time.Duration, group, cmd string) uint32 {
	return fs.sched.add(d, group, cmd)
}
