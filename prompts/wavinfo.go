package prompts

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/go-audio/wav"
)

// wavRates are the sample rates of FreeSWITCH's codecs and of its sound
// directories (mod_sndfile tries DIR/RATE/NAME for these rates).
var wavRates = [...]int{8000, 16000, 32000, 48000}

func isWAVRate(r int) bool {
	for _, w := range wavRates {
		if w == r {
			return true
		}
	}
	return false
}

// maxFmtChunk bounds the fmt chunk size the catalog hands to go-audio/wav,
// which allocates a chunk's declared size before reading it.
const maxFmtChunk = 1024

// inspectWAV checks one wav file: a RIFF/WAVE file holding 16-bit mono
// linear PCM at 8, 16, 32 or 48 kHz (in DIR/RATE/ at that rate), with a
// data chunk as long as its header says. The length is computed from the
// data chunk length: bytes / (rate × channels × bytes per sample).
func inspectWAV(file string, rateDir int) (Variant, []*SoundError) {
	v := Variant{File: file, RateDir: rateDir}
	problem := func(r Reason, format string, args ...any) []*SoundError {
		return []*SoundError{{Path: file, Reason: r, Detail: fmt.Sprintf(format, args...)}}
	}
	f, err := os.Open(file)
	if err != nil {
		return v, problem(ReasonUnreadable, "%v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return v, problem(ReasonUnreadable, "%v", err)
	}
	size := st.Size()
	if size == 0 {
		return v, problem(ReasonEmpty, "the file is empty (0 bytes)")
	}
	if p := scanRIFF(f, size); p != nil {
		p.Path = file
		return v, []*SoundError{p}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return v, problem(ReasonUnreadable, "%v", err)
	}
	d := wav.NewDecoder(f)
	d.ReadInfo()
	if err := d.Err(); err != nil || d.NumChans == 0 {
		return v, problem(ReasonNotWAV, "no readable fmt chunk")
	}
	v.Rate, v.Channels, v.Bits = int(d.SampleRate), int(d.NumChans), int(d.BitDepth)

	var probs []*SoundError
	add := func(r Reason, format string, args ...any) {
		probs = append(probs, &SoundError{Path: file, Reason: r, Detail: fmt.Sprintf(format, args...)})
	}
	if d.WavAudioFormat != 1 {
		add(ReasonNotPCM, "audio format %s; FreeSWITCH prompts should be 16-bit linear PCM", wavFormatName(d.WavAudioFormat))
	}
	if v.Channels != 1 {
		add(ReasonChannels, "%d channels; telephone audio is mono (sox IN -c 1 OUT)", v.Channels)
	}
	if v.Bits != 16 {
		add(ReasonBitDepth, "%d-bit samples; FreeSWITCH plays 16-bit (sox IN -b 16 OUT)", v.Bits)
	}
	if !isWAVRate(v.Rate) {
		add(ReasonRate, "%d Hz; use 8000, 16000, 32000 or 48000 Hz so FreeSWITCH need not resample from an odd rate", v.Rate)
	} else if rateDir != 0 && v.Rate != rateDir {
		add(ReasonRateDir, "%d Hz audio in the %d directory; FreeSWITCH picks this file for %d Hz calls", v.Rate, rateDir, rateDir)
	}

	if err := d.FwdToPCM(); err != nil || d.PCMChunk == nil {
		add(ReasonTruncated, "no data chunk")
		return v, probs
	}
	pos, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		add(ReasonUnreadable, "%v", err)
		return v, probs
	}
	// go-audio rounds an odd chunk size up to the padding byte: read the
	// declared size itself.
	var raw [4]byte
	if _, err := f.ReadAt(raw[:], pos-4); err != nil {
		add(ReasonUnreadable, "%v", err)
		return v, probs
	}
	declared := int64(binary.LittleEndian.Uint32(raw[:]))
	frame := int64(v.Channels) * int64((v.Bits+7)/8)
	switch {
	case declared > size-pos:
		add(ReasonTruncated, "the data chunk declares %d bytes, the file holds %d", declared, size-pos)
		return v, probs
	case declared == 0:
		add(ReasonEmpty, "no audio (the data chunk is empty)")
		return v, probs
	case frame > 0 && declared%frame != 0:
		add(ReasonTruncated, "the data chunk (%d bytes) is not a whole number of %d-byte sample frames", declared, frame)
	}
	if v.Rate > 0 && frame > 0 {
		v.Length = frameDuration(declared/frame, v.Rate)
	}
	return v, probs
}

// scanRIFF walks the chunk headers up to the data chunk, so that a
// malformed file is reported as such before go-audio/wav reads it (it
// trusts chunk sizes and allocates them). It returns nil when the layout
// is sound.
func scanRIFF(f *os.File, size int64) *SoundError {
	var hdr [12]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return &SoundError{Reason: ReasonNotWAV, Detail: fmt.Sprintf("%d bytes, shorter than a RIFF/WAVE header", size)}
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return &SoundError{Reason: ReasonNotWAV, Detail: fmt.Sprintf("no RIFF/WAVE header (starts with %q)", hdr[:4])}
	}
	fmtSeen := false
	for off := int64(12); ; {
		var ch [8]byte
		if off+8 > size {
			if !fmtSeen {
				return &SoundError{Reason: ReasonNotWAV, Detail: "no fmt chunk"}
			}
			return &SoundError{Reason: ReasonTruncated, Detail: "no data chunk"}
		}
		if _, err := f.ReadAt(ch[:], off); err != nil {
			return &SoundError{Reason: ReasonUnreadable, Detail: err.Error()}
		}
		id, n := string(ch[:4]), int64(binary.LittleEndian.Uint32(ch[4:]))
		switch id {
		case "data":
			if !fmtSeen {
				return &SoundError{Reason: ReasonNotWAV, Detail: "data chunk before the fmt chunk"}
			}
			return nil // its length is checked by inspectWAV
		case "fmt ":
			if n < 16 || n > maxFmtChunk {
				return &SoundError{Reason: ReasonNotWAV, Detail: fmt.Sprintf("malformed fmt chunk (%d bytes)", n)}
			}
			fmtSeen = true
		}
		if off+8+n > size {
			return &SoundError{Reason: ReasonTruncated, Detail: fmt.Sprintf("the %q chunk runs past the end of the file", id)}
		}
		off += 8 + n + n&1
	}
}

// frameDuration is the playing time of n sample frames at rate Hz, exact
// to the nanosecond (rounded down) and free of overflow.
func frameDuration(n int64, rate int) time.Duration {
	r := int64(rate)
	return time.Duration(n/r)*time.Second + time.Duration(n%r*int64(time.Second)/r)
}

func wavFormatName(code uint16) string {
	switch code {
	case 3:
		return "3 (IEEE float)"
	case 6:
		return "6 (A-law)"
	case 7:
		return "7 (µ-law)"
	case 0x11:
		return "0x11 (IMA ADPCM)"
	case 0xfffe:
		return "0xFFFE (WAVE_FORMAT_EXTENSIBLE)"
	}
	return fmt.Sprintf("%#x", code)
}

// errIsNotExist is os.IsNotExist for wrapped errors.
func errIsNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }
