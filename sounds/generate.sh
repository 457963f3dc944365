#!/bin/sh
# Regenerates the prompts eslapp ships, as 16-bit mono PCM wavs in
# sounds/8000/ and sounds/16000/ (FreeSWITCH's mod_sndfile picks
# DIR/RATE/NAME.wav for DIR/NAME.wav by the call's rate), and the hold
# music's copies in sounds/hold/8000/ and sounds/hold/16000/.
#
# Needs espeak-ng and sox (Debian: apt-get install -y espeak-ng sox).
# The output is deterministic for given tool versions: fixed voice, speed,
# pitch and gap; sox runs with -R (fixed random seed) and -D (no dither).
# Levels are peak-normalised: speech to -3 dBFS, music to -8 dBFS (so
# both have about the same loudness).
#
# Usage: sounds/generate.sh        (from anywhere)
set -eu

cd "$(dirname "$0")"
command -v espeak-ng >/dev/null || { echo "generate.sh: espeak-ng not found (apt-get install -y espeak-ng)" >&2; exit 1; }
command -v sox >/dev/null || { echo "generate.sh: sox not found (apt-get install -y sox)" >&2; exit 1; }

RATES="8000 16000"
VOICE=en-us   # espeak-ng's own American English voice (not mbrola)
SPEED=150     # words per minute
PITCH=45
LEVEL=-3      # peak level of speech, dBFS
MUSIC=-8      # peak level of the hold music: about the speech's loudness (RMS)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p 8000 16000

# speech NAME TEXT: a spoken prompt with 250 ms of silence before and
# 350 ms after, band-limited to telephone speech.
speech() {
	espeak-ng -v "$VOICE" -s "$SPEED" -p "$PITCH" -a 100 -g 2 -w "$tmp/$1.wav" "$2"
	for rate in $RATES; do
		sox -R -D "$tmp/$1.wav" -b 16 -e signed-integer -c 1 "$rate/$1.wav" \
			highpass 100 rate -v "$rate" gain -n "$LEVEL" pad 0.25 0.35
	done
}

speech hold "Please hold while we look up your account."
speech apology "We are sorry, we could not complete your request."
speech transferring "Please hold while we transfer your call."

# holdmusic: C, A minor, F, G major chords, 2.5 s each, strummed
# (plucked strings a few milliseconds apart) over a soft sine pad: a
# 10-second loop.
chord() { # NAME NOTE...
	name=$1
	shift
	plucks=""
	pads=""
	delays=""
	d=0
	for n in "$@"; do
		plucks="$plucks pluck $n"
		pads="$pads sine $n"
		delays="$delays $d"
		d=$(echo "$d + 0.045" | bc)
	done
	# shellcheck disable=SC2086 # word splitting of the lists is intended
	sox -R -D -n -r 16000 -b 16 -c 1 "$tmp/$name-pluck.wav" synth 2.5 $plucks delay $delays remix - fade q 0.005 2.5 0.25
	# shellcheck disable=SC2086
	sox -R -D -n -r 16000 -b 16 -c 1 "$tmp/$name-pad.wav" synth 2.5 $pads remix - fade h 0.4 2.5 0.6 vol 0.25
	sox -R -D -m "$tmp/$name-pluck.wav" "$tmp/$name-pad.wav" "$tmp/$name.wav"
}
chord c C3 G3 C4 E4 G4
chord am A2 E3 A3 C4 E4
chord f F2 C3 F3 A3 C4
chord g G2 D3 G3 B3 D4
sox -R -D "$tmp/c.wav" "$tmp/am.wav" "$tmp/f.wav" "$tmp/g.wav" "$tmp/holdmusic.wav"
for rate in $RATES; do
	sox -R -D "$tmp/holdmusic.wav" -b 16 -e signed-integer -c 1 "$rate/holdmusic.wav" rate -v "$rate" gain -n "$MUSIC"
done

# The hold-music stream of conf/freeswitch (local_stream.conf.xml's
# eslapp_hold) plays every file of its directory in turn, and pauses 1 s
# (silence to every listener) each time it starts the directory again: so
# hold/RATE/ holds the music six times over (60 s, one pause a minute) and
# nothing else.
for rate in $RATES; do
	mkdir -p "hold/$rate"
	sox -R -D "$rate/holdmusic.wav" "hold/$rate/holdmusic.wav" repeat 5
done

echo "generate.sh: wrote $(ls 8000/*.wav 16000/*.wav hold/*/*.wav | wc -l) files:"
for f in 8000/*.wav 16000/*.wav hold/*/*.wav; do
	printf '  %s  %s s\n' "$f" "$(soxi -D "$f")"
done
