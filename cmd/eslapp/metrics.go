package main

import (
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/eslapp/eslapp/callflow"
	"github.com/eslapp/eslapp/esl"
)

// newMetrics makes the registry and the engine's metrics when
// metrics_listen is set; both nil otherwise (the services report to
// nothing).
func newMetrics(listen string) (*prometheus.Registry, *callflow.Metrics) {
	if listen == "" {
		return nil, nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg, callflow.NewMetrics(reg)
}

// serveMetrics serves /metrics (and /debug/pprof/ with pprof) on
// metrics_listen; stop closes it. Without a registry it serves nothing.
func serveMetrics(reg *prometheus.Registry, s *Settings, log *slog.Logger) (stop func(), err error) {
	if reg == nil {
		return func() {}, nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if s.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	srv := newMetricsServer(mux, s.Pprof)
	ln, err := net.Listen("tcp", s.MetricsListen)
	if err != nil {
		log.Error("cannot listen for metrics", "addr", s.MetricsListen, "err", err)
		return nil, err
	}
	go func() { _ = srv.Serve(newBoundedListener(ln, maxMetricsConns)) }()
	log.Info("metrics", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// The metrics listener shares the process's descriptors with every call's
// socket: idle scrapers must not pile up. A connection is closed after
// metricsIdle without a request, a request must arrive within
// metricsRead, and at most maxMetricsConns are open at once — one more is
// closed as soon as it is accepted.
const (
	maxMetricsConns = 32
	metricsRead     = 10 * time.Second
	metricsIdle     = 30 * time.Second
	metricsWrite    = 30 * time.Second
	// pprof's CPU profile streams for ?seconds= (30 by default).
	pprofWrite = 120 * time.Second
)

// newMetricsServer is the /metrics (and /debug/pprof/) server, with its
// timeouts.
func newMetricsServer(h http.Handler, pprof bool) *http.Server {
	write := metricsWrite
	if pprof {
		write = pprofWrite
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       metricsRead,
		WriteTimeout:      write,
		IdleTimeout:       metricsIdle,
		MaxHeaderBytes:    16 << 10,
	}
}

// boundedListener closes connections accepted over its bound at once.
type boundedListener struct {
	net.Listener
	mu   sync.Mutex
	open int
	max  int
}

func newBoundedListener(ln net.Listener, max int) *boundedListener {
	return &boundedListener{Listener: ln, max: max}
}

func (l *boundedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.open >= l.max {
			l.mu.Unlock()
			_ = c.Close()
			continue
		}
		l.open++
		l.mu.Unlock()
		return &boundedConn{Conn: c, l: l}, nil
	}
}

type boundedConn struct {
	net.Conn
	l    *boundedListener
	once sync.Once
}

func (c *boundedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.open--
		c.l.mu.Unlock()
	})
	return err
}

// registerWayInMetrics exports what the ways in saw: connections refused
// before a call started, the traffic with FreeSWITCH, and the socket-less
// connection's state. Nothing without a registry.
func registerWayInMetrics(reg *prometheus.Registry, srv *esl.Server, inbounds []*esl.Inbound) {
	if reg == nil {
		return
	}
	refused := func(reason string, f func(esl.ServerStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "eslapp_connections_refused_total",
			Help:        "Connections closed before a call started: source not allowed, too many connecting, no valid connect reply.",
			ConstLabels: prometheus.Labels{"reason": reason},
		}, func() float64 { return float64(f(srv.Stats())) })
	}
	reg.MustRegister(
		refused("source", func(st esl.ServerStats) uint64 { return st.RefusedSource }),
		refused("max_connecting", func(st esl.ServerStats) uint64 { return st.RefusedConnecting }),
		refused("connect_failed", func(st esl.ServerStats) uint64 { return st.ConnectFailed }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eslapp_connections_connecting", Help: "Connections accepted that have not completed connect.",
		}, func() float64 { return float64(srv.Stats().Connecting) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "eslapp_socket_calls_net_fired_total",
			Help: "Held-socket calls left alone because the dialplan's pick-up net had moved them to OnError before eslapp took them up (it stood still, or was slower than the net).",
		}, func() float64 { return float64(srv.Stats().CallsNetFired) }),
	)
	// The wire counters add the calls' sockets and the shared inbound
	// connection: what FreeSWITCH reads and writes for eslapp in all.
	wire := func(name, help string, f func(esl.WireStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 {
				n := f(srv.Stats().Wire)
				for _, in := range inbounds {
					n += f(in.Stats().Wire)
				}
				return float64(n)
			})
	}
	reg.MustRegister(
		wire("eslapp_esl_commands_total", "Commands written to FreeSWITCH.", func(w esl.WireStats) uint64 { return w.Commands }),
		wire("eslapp_esl_command_bytes_total", "Bytes of those commands (FreeSWITCH reads a command's headers a byte at a time).", func(w esl.WireStats) uint64 { return w.CommandBytes }),
		wire("eslapp_esl_events_total", "Events read from FreeSWITCH (each one it serialised for eslapp).", func(w esl.WireStats) uint64 { return w.Events }),
		wire("eslapp_esl_event_bytes_total", "Bytes of those events.", func(w esl.WireStats) uint64 { return w.EventBytes }),
		wire("eslapp_esl_replies_total", "Command replies read from FreeSWITCH.", func(w esl.WireStats) uint64 { return w.Replies }),
	)
	for _, in := range inbounds {
		registerInboundMetrics(reg, in)
	}
}

const claimsHelp = "Claims of contended socket-less calls, by result: won, or lost (another eslapp, or the dialplan's pick-up net, was first)."

// registerInboundMetrics exports one socket-less connection's state and
// calls, labelled with its FreeSWITCH's address.
func registerInboundMetrics(reg prometheus.Registerer, in *esl.Inbound) {
	host := prometheus.Labels{"freeswitch": in.Address()}
	gauge := func(name, help string, f func(esl.InboundStats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: host},
			func() float64 { return f(in.Stats()) })
	}
	counter := func(name, help string, labels prometheus.Labels, f func(esl.InboundStats) uint64) prometheus.Collector {
		l := prometheus.Labels{}
		maps.Copy(l, host)
		maps.Copy(l, labels)
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: l},
			func() float64 { return float64(f(in.Stats())) })
	}
	reg.MustRegister(
		gauge("eslapp_socketless_connected", "1 while the inbound connection to this FreeSWITCH is up and subscribed.",
			func(st esl.InboundStats) float64 {
				if st.State == esl.InboundConnected {
					return 1
				}
				return 0
			}),
		gauge("eslapp_socketless_state_seconds", "Seconds since the connection entered its current state (connected or not).",
			func(st esl.InboundStats) float64 { return time.Since(st.Since).Seconds() }),
		counter("eslapp_socketless_connects_total", "Connections established (the first one and every reconnection).", nil,
			func(st esl.InboundStats) uint64 { return st.Connects }),
		counter("eslapp_socketless_failures_total", "Connection attempts that failed and connections lost.", nil,
			func(st esl.InboundStats) uint64 { return st.Failures }),
		gauge("eslapp_socketless_peers_claiming", "1 while another eslapp has won a claim on this FreeSWITCH within the last 30 s: claims then wait their turn by load (claim_stagger); 0: alone, claims do not wait.",
			func(st esl.InboundStats) float64 {
				if st.PeersClaiming(time.Now()) {
					return 1
				}
				return 0
			}),
		gauge("eslapp_socketless_calls", "Socket-less calls of this FreeSWITCH eslapp runs now.",
			func(st esl.InboundStats) float64 { return float64(st.Calls) }),
		counter("eslapp_socketless_calls_taken_total", "Socket-less calls taken and run.", nil,
			func(st esl.InboundStats) uint64 { return st.Started }),
		counter("eslapp_socketless_calls_refused_total", "Socket-less calls handed back unrun (an older dialplan, at max_calls or draining).", nil,
			func(st esl.InboundStats) uint64 { return st.Refused }),
		counter("eslapp_socketless_claims_total", claimsHelp, prometheus.Labels{"result": "won"},
			func(st esl.InboundStats) uint64 { return st.ClaimsWon }),
		counter("eslapp_socketless_claims_total", claimsHelp, prometheus.Labels{"result": "lost"},
			func(st esl.InboundStats) uint64 { return st.ClaimsLost }),
		counter("eslapp_socketless_calls_left_total", "Contended calls this eslapp did not claim (draining, at max_calls, or FreeSWITCH lagging): left to another eslapp or the dialplan's pick-up net.", nil,
			func(st esl.InboundStats) uint64 { return st.Declined }),
		counter("eslapp_socketless_calls_left_lagging_total", "Of those, the calls not claimed because FreeSWITCH answered this eslapp's commands late (a reply over 2 s, or half command_timeout, within the last 2 s): its listener thread was behind.", nil,
			func(st esl.InboundStats) uint64 { return st.Lagging }),
		counter("eslapp_socketless_nets_fired_total", "Calls whose safety net FreeSWITCH fired while this eslapp had them (it had stood still past their bound).", nil,
			func(st esl.InboundStats) uint64 { return st.NetsFired }),
	)
}
