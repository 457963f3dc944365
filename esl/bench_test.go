package esl_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eslapp/eslapp/esl"
	"github.com/eslapp/eslapp/esl/esltest"
)

// The idle-call benchmark runs the fake FreeSWITCH in a child process (this
// test binary, started again with ESLAPP_BENCH_PEER set), so that the
// memory and goroutines measured are eslapp's alone.
func TestMain(m *testing.M) {
	if os.Getenv("ESLAPP_BENCH_PEER") != "" {
		os.Exit(benchPeer())
	}
	os.Exit(m.Run())
}

// benchPeer dials ESLAPP_BENCH_CALLS calls to ESLAPP_BENCH_ADDR, reports
// "dialed" on stdout and holds them until stdin closes.
func benchPeer() int {
	n, _ := strconv.Atoi(os.Getenv("ESLAPP_BENCH_CALLS"))
	addr := os.Getenv("ESLAPP_BENCH_ADDR")
	fs := esltest.New(esltest.Options{NoRecordFrames: true, Logf: func(string, ...any) {}})
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := fs.Dial(ctx, addr, esltest.CallOptions{})
		cancel()
		if err != nil {
			fmt.Printf("dial %d: %v\n", i, err)
			return 1
		}
	}
	fmt.Println("dialed")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// BenchmarkIdleCall holds b.N calls that are connected, subscribed
// (myevents + PLAYBACK_START/STOP) and lingering, as a call waiting in the
// step is, and reports eslapp's heap and stack and goroutines per call.
// Run it with a fixed count: go test -run XXX -bench IdleCall -benchtime 2000x ./esl
func BenchmarkIdleCall(b *testing.B) {
	var ready atomic.Int64
	r, addr := startServer(b, esl.RunnerConfig{
		Handler: onSession(func(ctx context.Context, s *esl.Session) {
			if s.Subscribe(ctx, "PLAYBACK_START", "PLAYBACK_STOP") == nil && s.Linger(ctx) == nil {
				ready.Add(1)
			}
			<-ctx.Done()
		}),
	}, esl.ServerConfig{})
	defer r.Close()
	before := memNow()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ESLAPP_BENCH_PEER=1", "ESLAPP_BENCH_ADDR="+addr, "ESLAPP_BENCH_CALLS="+strconv.Itoa(b.N))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "dialed" {
		b.Fatalf("peer: %q", line)
	}
	for deadline := time.Now().Add(time.Minute); ready.Load() < int64(b.N); {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d calls ready", ready.Load(), b.N)
		}
		time.Sleep(10 * time.Millisecond)
	}
	after := memNow()
	n := float64(b.N)
	b.ReportMetric(float64(after.heap-before.heap)/n, "heap-B/call")
	b.ReportMetric(float64(after.stack-before.stack)/n, "stack-B/call")
	b.ReportMetric(float64(after.goroutines-before.goroutines)/n, "goroutines/call")
	b.ReportMetric(float64(after.rss-before.rss)/n, "rss-B/call")
}

type memSample struct{ heap, stack, rss, goroutines int64 }

func memNow() memSample {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{heap: int64(ms.HeapInuse), stack: int64(ms.StackInuse), rss: rssBytes(), goroutines: int64(runtime.NumGoroutine())}
}

// rssBytes reads the resident set size from /proc (Linux); 0 elsewhere.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// BenchmarkExecuteRoundTrip runs "set" applications one after the other on
// one call and waits for each completion: sendmsg, +OK, CHANNEL_EXECUTE,
// CHANNEL_EXECUTE_COMPLETE (each event about 6 KB) through the session's
// read loop. The fake FreeSWITCH runs in the same process, so the time
// includes its work too.
func BenchmarkExecuteRoundTrip(b *testing.B) {
	benchOnCall(b, func(ctx context.Context, s *esl.Session) error {
		arg, _ := esl.SetArg("bench", `{"n":1}`)
		_, err := s.Execute(ctx, "set", arg)
		return err
	})
}

// BenchmarkAPIRoundTrip measures one api command (uuid_getvar) and its reply.
func BenchmarkAPIRoundTrip(b *testing.B) {
	benchOnCall(b, func(ctx context.Context, s *esl.Session) error {
		_, err := s.API(ctx, "uuid_getvar", esl.APIArgsOf(s.UUID(), "uuid"))
		return err
	})
}

func benchOnCall(b *testing.B, op func(ctx context.Context, s *esl.Session) error) {
	done := make(chan struct{})
	_, addr := startServer(b, esl.RunnerConfig{
		Handler: onSession(func(ctx context.Context, s *esl.Session) {
			defer close(done)
			if err := s.Subscribe(ctx); err != nil {
				b.Error(err)
				return
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := op(ctx, s); err != nil {
					b.Error(err)
					return
				}
			}
			b.StopTimer()
		}),
	}, esl.ServerConfig{})
	fs := esltest.New(esltest.Options{NoRecordFrames: true, Logf: func(string, ...any) {}})
	if _, err := fs.Dial(context.Background(), addr, esltest.CallOptions{}); err != nil {
		b.Fatal(err)
	}
	<-done
}
