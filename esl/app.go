package esl

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// App is one application run on the channel (sendmsg execute), identified by
// the Application-UUID eslapp chose for it.
type App struct {
	Name string
	UUID string

	started   chan struct{}
	done      chan struct{}
	startOnce sync.Once
	doneOnce  sync.Once
	expiry    *time.Timer // fails the app when its bound passes; nil without one

	// The session's event dispatch and its failure paths (a lost
	// connection, a refused command) may reach an App from different
	// goroutines: mu guards what they write.
	mu              sync.Mutex
	startedAt       time.Time
	playbackStarted time.Time
	playbackStatus  string
	// result and err are written once, before done is closed; read after.
	result AppResult
	err    error
}

// AppResult is how an application ended.
type AppResult struct {
	// Response is FreeSWITCH's Application-Response: "FILE PLAYED",
	// "FILE NOT FOUND", "PLAYBACK ERROR", "_none_", ...
	Response string
	// PlaybackStatus is "done" or "break" for a playback that started, ""
	// otherwise. A playback stopped by uuid_break reports Response
	// "FILE PLAYED" and PlaybackStatus "break" (transcript s2).
	PlaybackStatus string
	// Started is when CHANNEL_EXECUTE arrived (zero if the app never
	// started), PlaybackStarted when PLAYBACK_START did, Ended when
	// CHANNEL_EXECUTE_COMPLETE did.
	Started, PlaybackStarted, Ended time.Time
}

func newApp(name, id string) *App {
	return &App{
		Name:    name,
		UUID:    id,
		started: make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// Started is closed when FreeSWITCH begins the application (CHANNEL_EXECUTE),
// or when it ends without having begun.
func (a *App) Started() <-chan struct{} { return a.started }

// Done is closed when the application has ended: CHANNEL_EXECUTE_COMPLETE,
// or the call or the connection ended first.
func (a *App) Done() <-chan struct{} { return a.done }

// Result is how the application ended; call it after Done is closed. The
// error is ErrHangup or ErrDisconnected (wrapped) when the call ended before
// or while the application ran.
func (a *App) Result() (AppResult, error) {
	<-a.done
	return a.result, a.err
}

// Wait waits for the application to end.
func (a *App) Wait(ctx context.Context) (AppResult, error) {
	select {
	case <-a.done:
		return a.result, a.err
	case <-ctx.Done():
		return AppResult{}, context.Cause(ctx)
	}
}

// markStarted records CHANNEL_EXECUTE.
func (a *App) markStarted(at time.Time) {
	a.startOnce.Do(func() {
		a.mu.Lock()
		a.startedAt = at
		a.mu.Unlock()
		close(a.started)
	})
}

// setPlayback records PLAYBACK_START (status "") or PLAYBACK_STOP.
func (a *App) setPlayback(at time.Time, status string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if status == "" {
		a.playbackStarted = at
	} else {
		a.playbackStatus = status
	}
}

// complete ends the application once; later calls do nothing.
func (a *App) complete(response string, at time.Time, err error) {
	a.doneOnce.Do(func() {
		if a.expiry != nil {
			a.expiry.Stop()
		}
		a.startOnce.Do(func() { close(a.started) })
		a.mu.Lock()
		a.result = AppResult{
			Response:        response,
			PlaybackStatus:  a.playbackStatus,
			Started:         a.startedAt,
			PlaybackStarted: a.playbackStarted,
			Ended:           at,
		}
		if err != nil {
			a.err = fmt.Errorf("%s: %w", a.Name, err)
		}
		a.mu.Unlock()
		close(a.done)
	})
}

// ExecOptions change how an application is queued.
type ExecOptions struct {
	// Loops runs the application this many times (sendmsg "loops"); 0 and 1
	// mean once, a negative number until it is broken. FreeSWITCH stops
	// looping early when one run lasts under half a second.
	Loops int
	// EventLock holds FreeSWITCH's message queue while this application
	// runs. Applications that play (playback, say, sleep) read the queue
	// while they run and would start the next queued message nested inside
	// themselves, on top of the prompt: they must be locked. Applications
	// that end at once (set, multiset, transfer) need no lock, and it costs
	// FreeSWITCH a header line per message; a queued message still waits
	// for a locked application before it.
	EventLock bool
	// Within bounds the time from queueing the application to its end; 0
	// means no bound. When it passes without CHANNEL_EXECUTE_COMPLETE the
	// application ends with ErrAppTimeout: no wait on FreeSWITCH is
	// endless, even when the peer acknowledges commands and then goes
	// quiet.
	Within time.Duration
}

// DefaultWithin bounds the applications eslapp runs for itself (set,
// multiset, transfer), which FreeSWITCH ends at once once they start.
const DefaultWithin = 10 * time.Second

// playsMedia reports whether an application reads the message queue while
// it runs and so needs ExecOptions.EventLock.
func playsMedia(app string) bool {
	switch app {
	case "set", "multiset", "unset", "export", "transfer", "hangup", "answer", "pre_answer", "log", "event":
		return false
	}
	return true
}

// executeMessage builds a sendmsg execute command. The argument travels as
// the message body (Content-Type: text/plain, no execute-app-arg header,
// which is how switch_ivr_parse_event takes a body as the argument): a
// header value cannot hold a newline and FreeSWITCH reads the body
// verbatim (transcript s1), so no argument can become another header or
// command. Lines end in a bare LF, like the blank line the session appends:
// FreeSWITCH reads a command's header block one byte per recv, at about
// 3 µs of its CPU per byte, so every byte of a header line counts (a CR
// each line, a UUID-long Event-UUID); and read_packet splits lines at the
// first '\r' it finds, so a block must not mix LF and CRLF lines.
//
// channel is "" on the call's own outbound socket, where sendmsg names no
// channel, and the channel's UUID on an inbound connection.
func executeMessage(channel, app, arg, appUUID string, opts ExecOptions) string {
	var b strings.Builder
	b.Grow(200 + len(arg))
	b.WriteString("sendmsg")
	if channel != "" {
		b.WriteByte(' ')
		b.WriteString(channel)
	}
	b.WriteString("\ncall-command: execute\nexecute-app-name: ")
	b.WriteString(app)
	b.WriteString("\nEvent-UUID: ")
	b.WriteString(appUUID)
	if opts.EventLock {
		b.WriteString("\nevent-lock: true")
	}
	if opts.Loops > 1 || opts.Loops < 0 {
		b.WriteString("\nloops: ")
		b.WriteString(strconv.Itoa(opts.Loops))
	}
	if arg != "" {
		b.WriteString("\nContent-Type: text/plain\nContent-Length: ")
		b.WriteString(strconv.Itoa(len(arg)))
		b.WriteString("\n\n")
		b.WriteString(arg)
	}
	return b.String()
}
