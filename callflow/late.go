package callflow

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/eslapp/eslapp/crm"
	"github.com/eslapp/eslapp/esl"
)

// Late results: a step whose CRM did not answer before its timeout takes
// OnTimeout as always, but with a late-result window (late_result_ms in a
// flow, wfe_late_result_ms in dialplan mode; off by default) its request
// stays open that long, also past the caller's hangup, and an answer that
// comes within it goes to the agent: a CUSTOM eslapp::workflow_late_result
// event over the shared inbound connection, and the channel variable
// late_result_var on the call if it still exists (uuid_setvar, verbatim).

// LateSubclass is the CUSTOM event of a late result.
const LateSubclass = "eslapp::workflow_late_result"

// DefaultLateResultVar is the channel variable a late result is stored in
// when the step names none.
const DefaultLateResultVar = "workflowLateResultOutput"

// LateSink delivers late results: the inbound connection to the call's
// FreeSWITCH (*esl.Inbound), which outlives the call's own socket.
type LateSink interface {
	SendEvent(ctx context.Context, subclass string, headers []esl.EventHeader, body []byte) error
	SetVar(ctx context.Context, uuid, name, value string) error
}

var _ LateSink = (*esl.Inbound)(nil)

// lateDeliveryTimeout bounds the delivery of one late result.
const lateDeliveryTimeout = 10 * time.Second

// lateResult is the step's window and the callback that delivers.
func (c *call) lateResult(spec *StepSpec, configID, workflowID string) (time.Duration, func(crm.Result)) {
	if spec.LateResultMs <= 0 {
		return 0, nil
	}
	e, uuid, log := c.e, c.ch.UUID(), c.log
	varName := spec.LateResultVar
	if varName == "" {
		varName = DefaultLateResultVar
	}
	sink := c.ch.Late()
	if sink == nil {
		sink = e.cfg.Late
	}
	return time.Duration(spec.LateResultMs) * time.Millisecond, func(res crm.Result) {
		e.deliverLate(sink, log, uuid, configID, workflowID, varName, res)
	}
}

// deliverLate sends one late result over sink, the connection to the
// call's FreeSWITCH (on a goroutine of the CRM request's, after the call's
// step has ended).
func (e *Engine) deliverLate(sink LateSink, log *slog.Logger, uuid, configID, workflowID, varName string, res crm.Result) {
	if res.Branch == crm.OnTimeout || res.Hangup {
		e.metrics.lateResult("expired")
		log.Info("late result: none within the window", "config_id", configID, "workflow_id", workflowID)
		return
	}
	if sink == nil {
		e.metrics.lateResult("undelivered")
		log.Warn("late result not delivered: it needs an inbound connection to the call's FreeSWITCH ([socketless] enabled, the host named)", "config_id", configID, "workflow_id", workflowID, "branch", string(res.Branch))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), lateDeliveryTimeout)
	defer cancel()
	headers, body := resultEvent(uuid, configID, workflowID, res, headerLatencyMs, strconv.FormatInt(res.Latency.Milliseconds(), 10))
	if err := sink.SendEvent(ctx, LateSubclass, headers, body); err != nil {
		e.metrics.lateResult("undelivered")
		log.Warn("late result event not sent", "err", err)
		return
	}
	e.metrics.lateResult("delivered")
	log.Info("late result delivered", "config_id", configID, "workflow_id", workflowID, "branch", string(res.Branch), "latency_ms", res.Latency.Milliseconds())
	if len(body) == 0 {
		return
	}
	switch err := sink.SetVar(ctx, uuid, varName, string(body)); {
	case errors.Is(err, esl.ErrHangup):
		log.Info("late result: the call has ended; the event carried it", "var", varName)
	case err != nil:
		log.Warn("late result not stored on the channel", "var", varName, "err", err)
	}
}
