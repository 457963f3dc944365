package itest

import (
	"path/filepath"
	"testing"
	"time"
)

// SIPp's statistics file: the last line's cumulative counts and mean call
// length (a file written by SIPp 3.6 under load, trimmed to the columns
// read and one more).
func TestSIPpCounts(t *testing.T) {
	ok, failed, length := sippCounts(filepath.Join("testdata", "sipp-stats.csv"))
	if ok != 1099 || failed != 1 || length != 6054*time.Millisecond {
		t.Errorf("sippCounts = %d, %d, %v; want 1099, 1, 6.054s", ok, failed, length)
	}
	if ok, failed, length := sippCounts(filepath.Join("testdata", "no-such-file.csv")); ok != -1 || failed != -1 || length != 0 {
		t.Errorf("a missing file: %d, %d, %v", ok, failed, length)
	}
}

func TestSIPpDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"00:00:05:299000": 5299 * time.Millisecond,
		"01:02:03:000004": time.Hour + 2*time.Minute + 3*time.Second + 4*time.Microsecond,
		"":                0,
		"00:00:05":        0,
		"00:00:-5:000000": 0,
		"00:00:x5:000000": 0,
	} {
		if got := sippDuration(in); got != want {
			t.Errorf("sippDuration(%q) = %v, want %v", in, got, want)
		}
	}
}
