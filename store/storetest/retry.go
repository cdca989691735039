package storetest

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// lease claims the delivery at now among all due deliveries and gives the
// others back unchanged, for tests that need one particular delivery
// leased.
func (h *harness) lease(id kapsel.DeliveryID, lease time.Duration, now time.Time) *kapsel.Delivery {
	h.t.Helper()
	var target *kapsel.Delivery
	var back []kapsel.DeliveryRelease
	for _, d := range h.claim(kapsel.MaxPageLimit, lease, now) {
		if d.ID == id {
			target = d
			continue
		}
		back = append(back, kapsel.DeliveryRelease{DeliveryID: d.ID, LeaseToken: d.LeaseToken, NextAttemptAt: d.NextAttemptAt})
	}
	if target == nil {
		h.t.Fatalf("delivery %s is not claimable at %v", id, now)
	}
	equal(h.t, "released", h.release(now, back...), len(back))
	return target
}

// finish leases the delivery at now and completes it with status.
func (h *harness) finish(id kapsel.DeliveryID, status kapsel.DeliveryStatus, now time.Time) {
	h.t.Helper()
	c := h.lease(id, time.Minute, now)
	code := 200
	if status != kapsel.DeliveryDelivered {
		code = 500
	}
	must(h.t, h.complete(now, completion(c, code, status, now))[0], "completion")
}

func testRetry(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("Retry", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		d := h.delivery(h.endpoint(a), Base)
		h.finish(d.ID, kapsel.DeliveryFailed, Base)

		_, err := h.s.DeliveryRetry(h.ctx, &kapsel.DeliveryRetryParams{ID: d.ID, TenantID: b.ID, Now: at(time.Minute)})
		mustIs(t, err, kapsel.ErrNotFound, "DeliveryRetry by another tenant")
		equal(t, "Status after a foreign retry", h.get(d.ID).Status, kapsel.DeliveryFailed)
		_, err = h.s.DeliveryRetry(h.ctx, &kapsel.DeliveryRetryParams{ID: kapsel.NewDeliveryID(), Now: at(time.Minute)})
		mustIs(t, err, kapsel.ErrNotFound, "DeliveryRetry of an unknown delivery")

		got, err := h.s.DeliveryRetry(h.ctx, &kapsel.DeliveryRetryParams{ID: d.ID, TenantID: a.ID, Now: at(time.Hour)})
		must(t, err, "DeliveryRetry")
		for _, d := range []*kapsel.Delivery{got, h.get(d.ID)} {
			equal(t, "Status", d.Status, kapsel.DeliveryPending)
			equal(t, "NextTrigger", d.NextTrigger, kapsel.TriggerManual)
			equal(t, "LastError kept", d.LastError, "status 500")
			equal(t, "Attempts kept", d.Attempts, 1)
			sameTime(t, "NextAttemptAt", d.NextAttemptAt, at(time.Hour))
		}

		_, err = h.s.DeliveryRetry(h.ctx, &kapsel.DeliveryRetryParams{ID: d.ID, Now: at(time.Hour)})
		mustIs(t, err, kapsel.ErrIllegalTransition, "DeliveryRetry of a pending delivery")
		c := h.claimOne(d.ID, time.Minute, at(time.Hour))
		equal(t, "claimed NextTrigger", c.NextTrigger, kapsel.TriggerManual)
		_, err = h.s.DeliveryRetry(h.ctx, &kapsel.DeliveryRetryParams{ID: d.ID, Now: at(time.Hour)})
		mustIs(t, err, kapsel.ErrIllegalTransition, "DeliveryRetry of a delivering delivery")

		must(t, h.complete(at(time.Hour), completion(c, 200, kapsel.DeliveryDelivered, at(time.Hour)))[0], "manual completion")
		as := h.attempts(d.ID)
		equal(t, "attempts recorded", len(as), 2)
		equal(t, "manual Attempt.Trigger", as[1].Trigger, kapsel.TriggerManual)
		equal(t, "manual Attempt.Number", as[1].Number, 2)
		equal(t, "NextTrigger after the attempt", h.get(d.ID).NextTrigger, kapsel.TriggerScheduled)

		_, err = h.s.DeliveryRetry(h.ctx, &kapsel.DeliveryRetryParams{ID: d.ID, Now: at(2 * time.Hour)})
		must(t, err, "DeliveryRetry of a delivered delivery")
		equal(t, "Status", h.get(d.ID).Status, kapsel.DeliveryPending)
	})

	t.Run("Replay", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		ep, other := h.endpoint(a), h.endpoint(a)
		failedEarly := h.delivery(ep, Base)
		failedMid := h.delivery(ep, at(time.Hour))
		failedLate := h.delivery(ep, at(2*time.Hour))
		delivered := h.delivery(ep, at(time.Hour))
		pending := h.delivery(ep, at(3*time.Hour))
		otherFailed := h.delivery(other, at(time.Hour))
		now := at(2 * time.Hour)
		for _, id := range []kapsel.DeliveryID{failedEarly.ID, failedMid.ID, failedLate.ID, otherFailed.ID} {
			h.finish(id, kapsel.DeliveryFailed, now)
		}
		h.finish(delivered.ID, kapsel.DeliveryDelivered, now)

		replay := func(p kapsel.DeliveryReplayParams) (int, error) {
			p.Now = at(4 * time.Hour)
			return h.s.DeliveryReplay(h.ctx, &p)
		}
		_, err := replay(kapsel.DeliveryReplayParams{TenantID: b.ID, EndpointID: ep.ID, Status: kapsel.DeliveryFailed})
		mustIs(t, err, kapsel.ErrNotFound, "DeliveryReplay by another tenant")
		_, err = replay(kapsel.DeliveryReplayParams{EndpointID: kapsel.NewEndpointID(), Status: kapsel.DeliveryFailed})
		mustIs(t, err, kapsel.ErrNotFound, "DeliveryReplay of an unknown endpoint")
		_, err = replay(kapsel.DeliveryReplayParams{TenantID: a.ID, EndpointID: ep.ID, Status: kapsel.DeliveryPending})
		mustIs(t, err, kapsel.ErrInvalid, "DeliveryReplay of pending deliveries")
		equal(t, "Status after refused replays", h.get(failedMid.ID).Status, kapsel.DeliveryFailed)

		// [Since, Until) of the event's CreatedAt: the bound at Until is
		// excluded.
		n, err := replay(kapsel.DeliveryReplayParams{TenantID: a.ID, EndpointID: ep.ID, Status: kapsel.DeliveryFailed,
			Since: at(30 * time.Minute), Until: at(2 * time.Hour)})
		must(t, err, "DeliveryReplay")
		equal(t, "replayed in [Since, Until)", n, 1)
		got := h.get(failedMid.ID)
		equal(t, "replayed Status", got.Status, kapsel.DeliveryPending)
		equal(t, "replayed NextTrigger", got.NextTrigger, kapsel.TriggerManual)
		sameTime(t, "replayed NextAttemptAt", got.NextAttemptAt, at(4*time.Hour))

		n, err = replay(kapsel.DeliveryReplayParams{EndpointID: ep.ID, Status: kapsel.DeliveryFailed, Since: at(time.Hour)})
		must(t, err, "DeliveryReplay with an open Until")
		equal(t, "replayed since", n, 1) // failedLate; failedMid is pending now

		n, err = replay(kapsel.DeliveryReplayParams{EndpointID: ep.ID, Status: kapsel.DeliveryFailed})
		must(t, err, "DeliveryReplay unbounded")
		equal(t, "replayed unbounded", n, 1) // failedEarly

		n, err = replay(kapsel.DeliveryReplayParams{EndpointID: ep.ID, Status: kapsel.DeliveryDelivered})
		must(t, err, "DeliveryReplay of delivered")
		equal(t, "replayed delivered", n, 1)

		equal(t, "pending delivery untouched", h.get(pending.ID).NextTrigger, kapsel.TriggerScheduled)
		equal(t, "other endpoint untouched", h.get(otherFailed.ID).Status, kapsel.DeliveryFailed)
	})

	// Replay acts on the endpoint's deliveries only: the deliveries of the
	// same events to other endpoints are left as they are.
	t.Run("ReplayPerEndpoint", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		ep, other := h.endpoint(ten), h.endpoint(ten)
		ev := h.insertNew(Base, send(ten.ID, "", []byte(`{}`)))[0]
		mine, theirs := h.deliveryOf(ev.ID, ep.ID), h.deliveryOf(ev.ID, other.ID)
		h.finish(mine.ID, kapsel.DeliveryFailed, at(time.Minute))
		h.finish(theirs.ID, kapsel.DeliveryFailed, at(time.Minute))
		n, err := h.s.DeliveryReplay(h.ctx, &kapsel.DeliveryReplayParams{
			TenantID: ten.ID, EndpointID: ep.ID, Status: kapsel.DeliveryFailed, Now: at(time.Hour),
		})
		must(t, err, "DeliveryReplay")
		equal(t, "replayed", n, 1)
		equal(t, "replayed delivery Status", h.get(mine.ID).Status, kapsel.DeliveryPending)
		equal(t, "the other endpoint's delivery Status", h.get(theirs.ID).Status, kapsel.DeliveryFailed)
		h.claimOne(mine.ID, time.Minute, at(time.Hour))
	})

	t.Run("RetryEvent", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		delivered, failed, pending, delivering, gone := h.endpoint(a), h.endpoint(a), h.endpoint(a), h.endpoint(a), h.endpoint(a)
		ev := h.insertNew(Base, send(a.ID, "", []byte(`{"n":1}`)))[0]
		summary(t, "new event", ev.Deliveries, kapsel.DeliverySummary{Total: 5, Pending: 5})
		dlv := map[*kapsel.Endpoint]*kapsel.Delivery{}
		for _, ep := range []*kapsel.Endpoint{delivered, failed, pending, delivering, gone} {
			dlv[ep] = h.deliveryOf(ev.ID, ep.ID)
		}
		h.finish(dlv[delivered].ID, kapsel.DeliveryDelivered, at(time.Minute))
		h.finish(dlv[failed].ID, kapsel.DeliveryFailed, at(time.Minute))
		h.finish(dlv[gone].ID, kapsel.DeliveryFailed, at(time.Minute))
		h.deleteEndpoint(gone, at(2*time.Minute))
		h.lease(dlv[delivering].ID, time.Hour, at(3*time.Minute))
		summary(t, "event before the retry", h.getEvent(ev.ID).Deliveries,
			kapsel.DeliverySummary{Total: 5, Pending: 1, Delivering: 1, Delivered: 1, Failed: 2})

		retry := func(p kapsel.DeliveryRetryEventParams) (int, error) {
			p.Now = at(time.Hour)
			return h.s.DeliveryRetryEvent(h.ctx, &p)
		}
		_, err := retry(kapsel.DeliveryRetryEventParams{EventID: ev.ID, TenantID: b.ID})
		mustIs(t, err, kapsel.ErrNotFound, "DeliveryRetryEvent by another tenant")
		_, err = retry(kapsel.DeliveryRetryEventParams{EventID: kapsel.NewEventID()})
		mustIs(t, err, kapsel.ErrNotFound, "DeliveryRetryEvent of an unknown event")
		equal(t, "Status after refused retries", h.get(dlv[failed].ID).Status, kapsel.DeliveryFailed)

		n, err := retry(kapsel.DeliveryRetryEventParams{EventID: ev.ID, TenantID: a.ID})
		must(t, err, "DeliveryRetryEvent")
		equal(t, "retried (the delivered and the failed one)", n, 2)
		for _, ep := range []*kapsel.Endpoint{delivered, failed} {
			got := h.get(dlv[ep].ID)
			equal(t, "retried Status", got.Status, kapsel.DeliveryPending)
			equal(t, "retried NextTrigger", got.NextTrigger, kapsel.TriggerManual)
			sameTime(t, "retried NextAttemptAt", got.NextAttemptAt, at(time.Hour))
			equal(t, "Attempts kept", got.Attempts, 1)
		}
		equal(t, "pending delivery NextTrigger", h.get(dlv[pending].ID).NextTrigger, kapsel.TriggerScheduled)
		equal(t, "delivering delivery Status", h.get(dlv[delivering].ID).Status, kapsel.DeliveryDelivering)
		equal(t, "deleted endpoint's delivery Status", h.get(dlv[gone].ID).Status, kapsel.DeliveryFailed)
		summary(t, "event after the retry", h.getEvent(ev.ID).Deliveries,
			kapsel.DeliverySummary{Total: 5, Pending: 3, Delivering: 1, Failed: 1})

		// Nothing left to retry: zero, no error.
		n, err = retry(kapsel.DeliveryRetryEventParams{EventID: ev.ID})
		must(t, err, "second DeliveryRetryEvent")
		equal(t, "retried again", n, 0)
		_, err = h.s.DeliveryRetry(h.ctx, &kapsel.DeliveryRetryParams{ID: dlv[gone].ID, Now: at(time.Hour)})
		mustIs(t, err, kapsel.ErrNotFound, "DeliveryRetry of a deleted endpoint's delivery")
		equal(t, "deleted endpoint's delivery Status", h.get(dlv[gone].ID).Status, kapsel.DeliveryFailed)

		// An event that matched no endpoint has nothing to retry.
		lonely := h.insertNew(Base, send(b.ID, "", []byte(`{}`)))[0]
		n, err = retry(kapsel.DeliveryRetryEventParams{EventID: lonely.ID, TenantID: b.ID})
		must(t, err, "DeliveryRetryEvent of an event without deliveries")
		equal(t, "retried without deliveries", n, 0)
	})
}
