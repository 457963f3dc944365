// Package esl is eslapp's side of FreeSWITCH's Event Socket: the frame
// reader (FrameReader, fuzzed and checked against captured transcripts),
// the escaping of every value eslapp sends (escape.go), one per-call core
// (Call), and the two ways a call reaches eslapp:
//
//   - Server accepts the outbound socket FreeSWITCH opens for a call
//     ("socket ADDR async full"); the Session is that call's leg.
//   - Inbound holds a long-lived connection to FreeSWITCH's inbound event
//     socket and takes the calls the dialplan announces with a CUSTOM
//     event before it parks them (socket-less); their commands name them
//     by UUID on that shared connection.
//
// What differs between the two is the leg (leg.go): how a command is
// addressed and sent, how the call's events are subscribed (its claim),
// how it is handed back, transferred or hung up, and what is released when
// it is over. Everything else — applications and their completion, api,
// uuid_break, sendevent, outputs, the hangup — is written once, in Call.
// A Runner drives every way in with one life cycle: admission (max_calls,
// draining), claim, the handler or a refusal, panic recovery, release,
// and the two-stage drain.
//
// It must not know what a call is for: no CRM, no prompts, no flows (those
// are callflow's, which reaches a call through a small interface of its
// own), no configuration files (cmd/eslapp gives it values), and no
// package-level state. Every value it sends from outside is escaped here,
// so that FreeSWITCH stores or speaks it verbatim and never evaluates it.
package esl
