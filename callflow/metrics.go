package callflow

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eslapp/eslapp/crm"
)

// Metrics are the engine's Prometheus metrics. A nil *Metrics records
// nothing, so the engine needs no checks.
type Metrics struct {
	steps       *prometheus.CounterVec
	crmSeconds  *prometheus.HistogramVec
	decisionSec prometheus.Histogram
	activeCalls prometheus.Gauge
	calls       prometheus.Counter
	refusals    prometheus.Counter
	hangups     prometheus.Counter
	rebreaks    prometheus.Counter
	shutdowns   prometheus.Counter
	mappings    *prometheus.CounterVec
	late        *prometheus.CounterVec
	breaker     *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eslapp_steps_total", Help: "Workflow Execute steps by outcome.",
		}, []string{"outcome"}),
		crmSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "eslapp_crm_latency_seconds", Help: "Time from a step's inputs to its CRM outcome.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2, 4, 6, 10, 30},
		}, []string{"outcome"}),
		decisionSec: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eslapp_decision_latency_seconds", Help: "Time from a step's outcome to the uuid_break that stops its prompt.",
			Buckets: []float64{.0001, .00025, .0005, .001, .002, .005, .01, .025, .1},
		}),
		activeCalls: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eslapp_active_calls", Help: "Calls eslapp is running now."}),
		calls:       prometheus.NewCounter(prometheus.CounterOpts{Name: "eslapp_calls_total", Help: "Calls run."}),
		refusals:    prometheus.NewCounter(prometheus.CounterOpts{Name: "eslapp_calls_refused_total", Help: "Calls handed back to the dialplan unrun (capacity, shutdown, failure)."}),
		hangups:     prometheus.NewCounter(prometheus.CounterOpts{Name: "eslapp_step_hangups_total", Help: "Steps ended by the caller hanging up."}),
		rebreaks:    prometheus.NewCounter(prometheus.CounterOpts{Name: "eslapp_prompt_rebreaks_total", Help: "Prompt applications broken again because they started after their prompt was stopped."}),
		shutdowns:   prometheus.NewCounter(prometheus.CounterOpts{Name: "eslapp_shutdown_handbacks_total", Help: "Calls still running when the drain ended, handed back OnError."}),
		mappings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eslapp_mapping_rejected_total", Help: "Mapped values not stored because they did not match their mapping's type.",
		}, []string{"type"}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eslapp_late_results_total", Help: "Steps with a late-result window that timed out, by what came of it: delivered, expired (no answer in the window), undelivered.",
		}, []string{"result"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eslapp_crm_breaker_open", Help: "1 while a workflow's circuit breaker is open or half-open.",
		}, []string{"config_id", "workflow_id"}),
	}
	reg.MustRegister(m.steps, m.crmSeconds, m.decisionSec, m.activeCalls, m.calls, m.refusals, m.hangups, m.rebreaks, m.shutdowns, m.mappings, m.late, m.breaker)
	return m
}

func (m *Metrics) callStarted() {
	if m != nil {
		m.activeCalls.Inc()
		m.calls.Inc()
	}
}

func (m *Metrics) callEnded() {
	if m != nil {
		m.activeCalls.Dec()
	}
}

func (m *Metrics) refused() {
	if m != nil {
		m.refusals.Inc()
	}
}

func (m *Metrics) hangup() {
	if m != nil {
		m.hangups.Inc()
	}
}

func (m *Metrics) lateResult(what string) {
	if m != nil {
		m.late.WithLabelValues(what).Inc()
	}
}

func (m *Metrics) mappingRejected(typ string) {
	if m != nil {
		m.mappings.WithLabelValues(typ).Inc()
	}
}

func (m *Metrics) shutdownHandback() {
	if m != nil {
		m.shutdowns.Inc()
	}
}

func (m *Metrics) rebreak() {
	if m != nil {
		m.rebreaks.Inc()
	}
}

func (m *Metrics) step(b crm.Branch) {
	if m != nil {
		m.steps.WithLabelValues(string(b)).Inc()
	}
}

func (m *Metrics) crmLatency(res crm.Result) {
	if m != nil {
		m.crmSeconds.WithLabelValues(string(res.Branch)).Observe(res.Latency.Seconds())
	}
}

func (m *Metrics) decision(d time.Duration) {
	if m != nil {
		m.decisionSec.Observe(d.Seconds())
	}
}

// ResetBreakers clears the breaker gauges: a reloaded configuration's
// breakers start closed.
func (m *Metrics) ResetBreakers() {
	if m != nil {
		m.breaker.Reset()
	}
}

// BreakerChanged is crm.Options.OnBreakerChange for these metrics.
func (m *Metrics) BreakerChanged(configID, workflowID string, _, to crm.BreakerState) {
	if m == nil {
		return
	}
	v := 0.0
	if to != crm.BreakerClosed {
		v = 1
	}
	m.breaker.WithLabelValues(configID, workflowID).Set(v)
}
