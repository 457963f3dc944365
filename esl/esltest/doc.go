// Package esltest is a fake FreeSWITCH for tests and load generators: it
// speaks the real Event Socket wire protocol over TCP, both ways a call
// reaches eslapp: it dials the application's outbound-socket listener the
// way the dialplan action "socket 127.0.0.1:8084 async full" does, one
// connection per call (Dial), and it serves an inbound event socket
// (ListenInbound) on which socket-less calls are announced with a CUSTOM
// event and parked (Socketless), their commands naming them by UUID.
//
// It must not import eslapp's own packages' internals or testing, and must
// never run what it is sent: ${api(...)} is recorded, not executed. When
// it and a transcript or the real FreeSWITCH disagree, they win: fix the
// double.
//
// # Model
//
// A FreeSWITCH (New) is one host: a Core-UUID, a hostname, global
// variables and one Event-Sequence counter shared by its calls. Dial starts
// a Call; FreeSWITCH waits for "connect", answers with the CHANNEL_DATA
// reply, and then serves mod_event_socket's parse_command with FreeSWITCH
// 1.10.12's reply texts (myevents, event, nixevent, noevents, filter,
// linger, nolinger, sendmsg, sendevent, api, bgapi, getvar, resume, exit,
// ...). Commands are framed by ReadCommand exactly as read_packet frames
// them. Each call has a channel: caller profile, state and ordered channel
// variables, started from the variables of transcript s1 so that events
// have the real header names, order and size (about 6 KB each). Events go
// out only when subscribed, with mod_event_socket's rules (after myevents,
// only events whose Unique-ID is the call's), each with a fresh global
// Event-Sequence.
//
// sendmsg queues a message on the channel. The channel runs one application
// at a time, in the order of the transcripts: CHANNEL_EXECUTE,
// PLAYBACK_START/STOP (playback), CHANNEL_EXECUTE_COMPLETE with its
// Application-Response, matched by Application-UUID (the Event-UUID sent).
// A message that arrives while a media app (playback, say, speak, sleep)
// runs without event-lock is executed nested inside it, as FreeSWITCH does;
// with event-lock it waits. Application arguments are expanded like
// switch_channel_expand_variables (see Expander), and set, export and
// multiset expand their value once more; ${api(...)} is recorded, never run
// (Call.APIExecutions), and Call.Played shows what the caller would hear.
// uuid_break (with and without "all"), uuid_transfer, uuid_kill,
// uuid_getvar, uuid_setvar (no expansion, backslash escapes and paired
// quotes stripped by switch_separate_string), uuid_setvar_multi and
// uuid_exists act on any call of the host. Hangup, PressDTMF, CutTCP and
// StallReplies drive a call from the test; Commands (with the api commands
// that name the call, socket-less), WaitFor, Var, Played, Sent and Outcome
// observe it.
//
// The transcripts in testdata/transcripts, captured from FreeSWITCH 1.10.12
// (see the README next to the originals), are the reference: s1 full
// session, s2 uuid_break then transfer, s3/s4/s4b caller hangup without and
// with linger, s5 errors, s6 say and speak, s7 resume, s8 socket without
// "full", s9 uuid_transfer. TestConformance replays their commands to the
// double and compares every frame.
//
// The package does not import testing: a load generator can run thousands
// of calls (two goroutines and about 10 KB each, with
// Options.NoRecordFrames).
//
// # Approximations
//
// Media is timers: CallOptions decide how long files, say and TTS take. The
// extension a transfer leads to is "hangup NORMAL_CLEARING" after
// CallOptions.AfterTransfer. Events of other calls are never delivered
// (there is no host-wide "event plain ALL"); event formats other than plain
// are accepted but events stay plain; log lines are never sent. Only the
// applications in apps.go (knownApps) exist: another one hangs the call up
// with DESTINATION_OUT_OF_ORDER, as FreeSWITCH does for an unloaded app;
// API commands other than those above answer "-ERR NAME Command not
// found!". Once the channel has hung up, api commands that name it answer
// "-ERR No such channel!" and sendmsg is accepted and ignored. StallReplies
// holds command processing only: events keep flowing, which real
// FreeSWITCH (one thread per socket) would not do.
package esltest
