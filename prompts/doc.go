// Package prompts turns CXone prompt sequences into FreeSWITCH
// applications.
//
// A sequence is a list of double-quoted segments:
//
//	"%Your account balance is" "silence.wav" "${accountBalance}"
//
// The work is done in three steps, each usable on its own:
//
//   - Parse reads the text into a Sequence without variable values, so
//     `eslapp check` can validate sequences when the configuration loads
//     (Check) and list the variables they use (Sequence.Refs);
//   - Sequence.Resolve replaces {var} references through the caller's
//     Resolver;
//   - Renderer.Render builds the applications: consecutive files and TTS
//     in one playback (a file_string:// list), currency, numbers and digits
//     as say applications. Every argument is made by the esl builders
//     (esl.PlaybackArg, esl.File, esl.TTS, esl.SayArg), so a value holding
//     '!', '|', quotes, braces, newlines or ${...} stays one spoken item.
//
// The example above renders, with the sounds directory /snd, to
//
//	playback file_string://tts://flite|kal|Your account balance is!/snd/silence.wav
//	say en currency pronounced 12.50
//
// # Dialplan mode
//
// "${balance}" is also FreeSWITCH's variable syntax. A sequence set in
// dialplan XML is expanded by FreeSWITCH before eslapp reads it, so
// "${balance}" arrives as "12.50" and would be taken for a file name.
// FreeSWITCH expands only a '$' directly followed by '{' (backslashes
// between them allowed), and Parse allows white space after a prefix, so
// "$ {balance}" reaches eslapp intact and means currency of the variable
// balance. A prefix character other than '$' (TOML prompts.prefixes) is the
// other way. Segments that look expanded (a bare number as a file, an empty
// segment, a prefix with nothing after it) are errors wrapping
// ErrPreExpanded whose message shows the surviving form.
//
// # Sounds
//
// Catalog checks the files a configuration plays and knows their lengths.
// A relative name is joined to the sounds directory; FreeSWITCH's
// mod_sndfile then looks for DIR/RATE/NAME (the call's rate first, then
// 48000, 32000, 16000, 8000) before DIR/NAME, so eslapp ships its prompts
// as sounds/8000/NAME.wav and sounds/16000/NAME.wav and plays DIR/NAME.wav.
//
// It must not talk to FreeSWITCH or know about calls: it turns text into
// arguments (built with esl's escaping, never by hand) and files into
// facts; callflow plays them.
package prompts
