package esl

import (
	"math/rand/v2"
	"net/textproto"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/percipia/eslgo"
)

func seqEvent(seq int) *eslgo.Event {
	h := textproto.MIMEHeader{}
	h.Set("Event-Name", "CHANNEL_EXECUTE")
	h.Set("Event-Sequence", strconv.Itoa(seq))
	return &eslgo.Event{Headers: h}
}

// Events handed on in order but delivered by racing goroutines (as eslgo
// does) come out in Event-Sequence order, with the notices in their place.
func TestSequencerRestoresOrder(t *testing.T) {
	for round := range 200 {
		var handed atomic.Uint64
		var mu sync.Mutex
		var got []string
		q := &sequencer{handed: &handed, release: func(ev *eslgo.Event) {
			mu.Lock()
			got = append(got, ev.Headers.Get("Event-Sequence"))
			mu.Unlock()
		}}
		const n = 20
		// Sequence numbers are global to FreeSWITCH: gaps are normal.
		seqs := make([]int, n)
		for i := range seqs {
			seqs[i] = 1000 + 3*i + rand.IntN(3)
		}
		var wg sync.WaitGroup
		for i, s := range seqs {
			handed.Add(1)
			if i == 9 {
				// A disconnect notice read after the tenth event.
				q.at(func() {
					mu.Lock()
					got = append(got, "notice")
					mu.Unlock()
				})
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if rand.IntN(2) == 0 {
					time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
				}
				q.add(seqEvent(s))
			}()
		}
		wg.Wait()
		mu.Lock()
		if len(got) != n+1 {
			t.Fatalf("round %d: released %d of %d", round, len(got), n+1)
		}
		for i := range n + 1 {
			want := "notice"
			switch {
			case i < 10:
				want = strconv.Itoa(seqs[i])
			case i > 10:
				want = strconv.Itoa(seqs[i-1])
			}
			if got[i] != want {
				t.Fatalf("round %d: position %d = %s, want %s (all: %v)", round, i, got[i], want, got)
			}
		}
		mu.Unlock()
	}
}

// An event that eslgo read but dropped (it logs "Error parsing event")
// holds nothing back once it is reported lost.
func TestSequencerLostEvent(t *testing.T) {
	var handed atomic.Uint64
	released := make(chan string, 4)
	q := &sequencer{handed: &handed, release: func(ev *eslgo.Event) {
		released <- ev.Headers.Get("Event-Sequence")
	}}
	handed.Add(2) // the first of the two is dropped by eslgo
	q.add(seqEvent(2))
	select {
	case s := <-released:
		t.Fatalf("released %s while an earlier event was still expected", s)
	case <-time.After(20 * time.Millisecond):
	}
	q.lost()
	if s := <-released; s != "2" {
		t.Fatalf("released %s", s)
	}
}

// After eslapp closed eslgo's side, events eslgo will never deliver are
// given up after maxHold, and the actions waiting for them run.
func TestSequencerStopGivesUp(t *testing.T) {
	var handed atomic.Uint64
	q := &sequencer{handed: &handed, release: func(*eslgo.Event) {}}
	handed.Add(1)
	ran := make(chan struct{})
	q.at(func() { close(ran) })
	q.stop()
	select {
	case <-ran:
	case <-time.After(10 * maxHold):
		t.Fatal("action never ran")
	}
}

// An application can be ended from two goroutines at once (a command
// failing because the connection dropped, while the drop fails every
// application): it ends once, without a panic or a race.
func TestAppEndsOnce(t *testing.T) {
	for range 200 {
		a := newApp("playback", "id")
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch i {
				case 0:
					a.markStarted(time.Now())
				case 1:
					a.setPlayback(time.Now(), "break")
				default:
					a.complete("FILE PLAYED", time.Now(), nil)
				}
			}()
		}
		wg.Wait()
		if res, err := a.Result(); err != nil || res.Response != "FILE PLAYED" {
			t.Fatalf("%+v %v", res, err)
		}
	}
}
