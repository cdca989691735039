package delivery

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// outcome is what a worker hands to the completer: a completion (an attempt
// was made) or a release (none was).
type outcome struct {
	completion *kapsel.DeliveryCompletion
	release    *kapsel.DeliveryRelease
	// For the hooks, once recorded.
	info      kapsel.AttemptInfo
	createdAt time.Time
	// giveUpAt is when the completer stops trying to record the completion
	// once the keep-alive no longer holds its lease: shortly before the
	// lease ends as last extended (giveUpAtOf).
	giveUpAt time.Time
	// Set by the completer.
	recordErr error
	givenUp   bool
}

// attempt makes one attempt of job j's delivery (its event in dl.Event) to
// its endpoint, unless the dispatcher is being stopped, the endpoint was
// deleted, paused or disabled since it was read (endpoints.go), too little
// of the lease is left, or the endpoint's breaker refuses it: then the
// delivery is released without an attempt, or, its endpoint deleted,
// attempt returns nil (the store already ended it).
func (d *Dispatcher) attempt(j *job) *outcome {
	dl := j.dl
	release := func(at time.Time) *outcome {
		return &outcome{release: &kapsel.DeliveryRelease{DeliveryID: dl.ID, LeaseToken: dl.LeaseToken, NextAttemptAt: at}}
	}
	if d.attemptCtx.Err() != nil {
		return release(d.cfg.Clock.Now())
	}
	ep, instead := d.current(j)
	if ep == nil {
		return instead
	}
	if now := d.cfg.Clock.Now(); !d.startable(dl, now) {
		// Its lease was lost, or the store missed its renewals while it
		// waited in its endpoint's queue (keepalive.go): give it back
		// rather than risk a duplicate.
		return release(now)
	}
	// permit is handed back to Record with the outcome: only the probe's
	// own outcome settles a half-open breaker.
	var permit kapsel.BreakerPermit
	if b := d.cfg.Breakers; b != nil {
		ctx, cancel := context.WithTimeout(d.attemptCtx, d.cfg.StoreTimeout)
		p, retryAt, err := b.Allow(ctx, ep.ID, d.cfg.Clock.Now())
		cancel()
		switch {
		case err != nil && d.attemptCtx.Err() != nil:
			return release(d.cfg.Clock.Now()) // cut short by Stop
		case err != nil:
			// The breaker protects destinations; it is not needed for
			// correctness, so a failing breaker store does not stop delivery.
			d.log.Warn("circuit breaker unavailable; attempting anyway", slog.String("endpoint_id", string(ep.ID)), slog.Any("error", err))
		case !p.Allowed:
			return release(retryAt)
		}
		permit = p
	}

	ev := dl.Event
	ok, expunged := d.begin(ep.ID, ev)
	if !ok {
		return nil // deleted meanwhile: the store ended the delivery
	}
	if expunged {
		// Expunged since the claim (expunge.go): send nothing.
		c := *ev
		c.Body, c.Headers, c.BodyErasure = nil, nil, kapsel.BodyExpunged
		ev = &c
	}
	number := dl.Attempts + 1
	trigger := cmp.Or(dl.NextTrigger, kapsel.TriggerScheduled)
	startedAt := d.cfg.Clock.Now()
	actx, trace := d.startAttempt(d.attemptCtx, kapsel.AttemptStart{EndpointID: ep.ID, EventID: ev.ID,
		DeliveryID: dl.ID, EventType: ev.Type, Number: number, Trigger: trigger, Trace: ev.Trace})
	var res *attemptResult
	if ev.BodyErasure != kapsel.BodyKept {
		// Retention or an expunge erased the body after the delivery was
		// queued again (a manual retry, replay or backfill of an old
		// event): nothing is sent, the delivery fails (recorded locally).
		res = &attemptResult{errorCode: kapsel.CodeInternal, local: true,
			errMsg: "the event's body was " + string(ev.BodyErasure) + ": nothing to send"}
	} else {
		ctx, cancel := context.WithTimeout(actx, d.cfg.attemptTimeout(ep))
		res = d.send(ctx, ev, ep, number, startedAt, trace)
		cancel()
	}
	if res.errorCode == kapsel.CodeShuttingDown && !res.sent {
		d.endAttempt(actx, kapsel.AttemptInfo{EndpointID: ep.ID, EventID: ev.ID, DeliveryID: dl.ID,
			EventType: ev.Type, Number: number, ErrorCode: res.errorCode})
		return release(d.cfg.Clock.Now())
	}
	now := d.cfg.Clock.Now()
	// A failure on Kapsel's side before anything was sent (the request could
	// not be built: an undecodable signing secret, an unusable URL) says
	// nothing about the destination, so the breaker is not told; the attempt
	// is still recorded and retried like any other failure.
	if b := d.cfg.Breakers; b != nil && res.errorCode != kapsel.CodeShuttingDown && !res.local {
		// The attempt's context's values (a tracer's span), not its end.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(actx), d.cfg.StoreTimeout)
		if err := b.Record(rctx, ep.ID, permit, res.errorCode == "", now); err != nil {
			d.log.Warn("recording circuit breaker outcome failed", slog.String("endpoint_id", string(ep.ID)), slog.Any("error", err))
		}
		rcancel()
	}
	dec := decide(ep.RetryPolicy, dl.CreatedAt, number, res, now, d.cfg.Rand())
	if ev.BodyErasure != kapsel.BodyKept {
		dec.status, dec.outcome, dec.disable = kapsel.DeliveryFailed, kapsel.OutcomeFailed, ""
	}
	c := &kapsel.DeliveryCompletion{
		DeliveryID: dl.ID,
		LeaseToken: dl.LeaseToken,
		Attempt: kapsel.Attempt{
			Number:       number,
			Trigger:      trigger,
			StartedAt:    startedAt,
			Duration:     res.duration,
			StatusCode:   res.statusCode,
			ResponseBody: res.body,
			ErrorCode:    res.errorCode,
			Error:        res.errMsg,
		},
		Status:          dec.status,
		NextAttemptAt:   dec.nextAttemptAt,
		DisableEndpoint: dec.disable,
	}
	if res.errorCode != "" {
		c.LastError = string(res.errorCode) + ": " + res.errMsg
	}
	o := &outcome{
		completion: c,
		createdAt:  dl.CreatedAt,
		giveUpAt:   d.cfg.giveUpAt(d.leaseEndOf(dl), now),
		info: kapsel.AttemptInfo{
			EndpointID: ep.ID,
			EventID:    ev.ID,
			DeliveryID: dl.ID,
			EventType:  ev.Type,
			Number:     number,
			Outcome:    dec.outcome,
			StatusCode: res.statusCode,
			ErrorCode:  res.errorCode,
			Duration:   res.duration,
		},
	}
	d.endAttempt(actx, o.info)
	return o
}

// send builds and sends the request of one attempt.
func (d *Dispatcher) send(ctx context.Context, ev *kapsel.Event, ep *kapsel.Endpoint, number int, now time.Time, trace kapsel.TraceContext) *attemptResult {
	req, err := NewRequest(ctx, ep, ev, number, now, d.cfg.UserAgent)
	if err != nil {
		// Nothing was sent; the attempt is recorded so that the audit trail
		// shows why the delivery cannot be made.
		code := kapsel.CodeOf(err)
		if errors.Is(err, ErrSigningSecret) {
			code = kapsel.CodeInternal
		}
		return &attemptResult{errorCode: code, errMsg: err.Error(), local: true}
	}
	setTraceHeaders(req.Header, trace)
	stopping := func() bool { return d.attemptCtx.Err() != nil }
	return send(d.client, req, stopping)
}
