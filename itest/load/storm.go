package main

import (
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A connect-and-close storm: what TCP health checks, port scanners,
// load-balancer probes and a FreeSWITCH dropping sockets at connect do to
// eslapp's listener, while real calls run. Workers connect and close at once
// (plainly, or with a reset), and silent holders connect and say nothing,
// keeping connections in eslapp's connecting state so that its bound
// ([server] max_connecting) fills up and new connections are refused.

type stormOptions struct {
	connects int           // connect-and-close connections in all
	workers  int           // in parallel
	silent   int           // silent holders
	hold     time.Duration // how long a silent holder stays, then as long away
}

type stormCounts struct {
	closed, reset, silent, failed atomic.Int64
}

// storm runs until connects connections were made and closed, or ctx ends;
// silent holders keep going until then too.
func storm(ctx context.Context, addr string, o stormOptions, counts *stormCounts) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var holders sync.WaitGroup
	for range o.silent {
		holders.Add(1)
		go func() {
			defer holders.Done()
			silentHolder(ctx, addr, o.hold, counts)
		}()
	}
	var left atomic.Int64
	left.Store(int64(o.connects))
	var workers sync.WaitGroup
	for range o.workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			d := net.Dialer{Timeout: 2 * time.Second}
			for left.Add(-1) >= 0 && ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					counts.failed.Add(1)
					time.Sleep(time.Millisecond) // the listener's backlog is full: let it drain
					continue
				}
				if rand.IntN(2) == 0 {
					_ = c.(*net.TCPConn).SetLinger(0) // close with RST
					counts.reset.Add(1)
				} else {
					counts.closed.Add(1)
				}
				_ = c.Close()
			}
		}()
	}
	workers.Wait()
	cancel()
	holders.Wait()
}

// silentHolder connects, reads until eslapp gives up on it or hold passes,
// stays away as long, and again.
func silentHolder(ctx context.Context, addr string, hold time.Duration, counts *stormCounts) {
	d := net.Dialer{Timeout: 2 * time.Second}
	buf := make([]byte, 512)
	for ctx.Err() == nil {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			counts.failed.Add(1)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		counts.silent.Add(1)
		_ = c.SetReadDeadline(time.Now().Add(hold))
		for {
			if _, err := c.Read(buf); err != nil {
				break // eslapp closed it, or hold passed
			}
		}
		_ = c.Close()
		select {
		case <-ctx.Done():
		case <-time.After(hold):
		}
	}
}
