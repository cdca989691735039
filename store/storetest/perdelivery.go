package storetest

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// fanned inserts one event sent to the subscribers of ten at now and
// returns its deliveries to the endpoints, in their order.
func (h *harness) fanned(ten *kapsel.Tenant, now time.Time, eps ...*kapsel.Endpoint) (*kapsel.Event, []*kapsel.Delivery) {
	h.t.Helper()
	ev := h.insertNew(now, send(ten.ID, "", randomBytes(8)))[0]
	out := make([]*kapsel.Delivery, len(eps))
	for i, ep := range eps {
		out[i] = h.deliveryOf(ev.ID, ep.ID)
	}
	return ev, out
}

// testPerDelivery checks that leases, fencing, outcomes, holding and
// retries act on each delivery of an event alone: one endpoint's trouble
// is not its neighbours'.
func testPerDelivery(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("Outcomes", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		a, b := h.endpoint(ten), h.endpoint(ten)
		ev, ds := h.fanned(ten, Base, a, b)
		claimed := h.claim(10, time.Minute, Base)
		equal(t, "claimed", len(claimed), 2)
		byEndpoint := map[kapsel.EndpointID]*kapsel.Delivery{}
		for _, c := range claimed {
			byEndpoint[c.EndpointID] = c
			equal(t, "claimed EventID", c.EventID, ev.ID)
		}
		ca, cb := byEndpoint[a.ID], byEndpoint[b.ID]
		if ca == nil || cb == nil || ca.LeaseToken == cb.LeaseToken {
			t.Fatalf("claimed %v: want one delivery per endpoint, each with its own token", claimed)
		}
		retry := completion(cb, 503, kapsel.DeliveryPending, at(time.Second))
		retry.NextAttemptAt = at(10 * time.Second)
		errs := h.complete(at(2*time.Second), completion(ca, 200, kapsel.DeliveryDelivered, at(time.Second)), retry)
		must(t, errs[0], "a's completion")
		must(t, errs[1], "b's completion")

		da, db := h.get(ds[0].ID), h.get(ds[1].ID)
		equal(t, "a's Status", da.Status, kapsel.DeliveryDelivered)
		sameTime(t, "a's DeliveredAt", da.DeliveredAt, at(2*time.Second))
		equal(t, "b's Status", db.Status, kapsel.DeliveryPending)
		equal(t, "b's LastError", db.LastError, "status 503")
		sameTime(t, "b's NextAttemptAt", db.NextAttemptAt, at(10*time.Second))
		for _, d := range []*kapsel.Delivery{da, db} {
			equal(t, "Attempts", d.Attempts, 1)
			as := h.attempts(d.ID)
			if len(as) != 1 || as[0].DeliveryID != d.ID || as[0].EndpointID != d.EndpointID {
				t.Fatalf("attempts of %s = %+v, want its one attempt", d.ID, as)
			}
		}
		summary(t, "event", h.getEvent(ev.ID).Deliveries, kapsel.DeliverySummary{Total: 2, Pending: 1, Delivered: 1})

		c := h.claimOne(ds[1].ID, time.Minute, at(10*time.Second))
		equal(t, "b's Attempts on its second claim", c.Attempts, 1)
		must(t, h.complete(at(11*time.Second), completion(c, 500, kapsel.DeliveryFailed, at(10*time.Second)))[0], "b's second completion")
		summary(t, "event", h.getEvent(ev.ID).Deliveries, kapsel.DeliverySummary{Total: 2, Delivered: 1, Failed: 1})

		// A retry of one delivery leaves the other as it is.
		_, err := h.s.DeliveryRetry(h.ctx, &kapsel.DeliveryRetryParams{ID: ds[1].ID, TenantID: ten.ID, Now: at(time.Minute)})
		must(t, err, "DeliveryRetry")
		equal(t, "a's Status after b's retry", h.get(ds[0].ID).Status, kapsel.DeliveryDelivered)
		summary(t, "event", h.getEvent(ev.ID).Deliveries, kapsel.DeliverySummary{Total: 2, Pending: 1, Delivered: 1})
		h.claimOne(ds[1].ID, time.Minute, at(time.Minute))
	})

	// A lease token owns the delivery it was issued for, and no other —
	// not even another delivery of the same event.
	t.Run("TokenOwnsItsDeliveryOnly", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		a, b := h.endpoint(ten), h.endpoint(ten)
		_, ds := h.fanned(ten, Base, a, b)
		ca, cb := h.lease(ds[0].ID, time.Minute, Base), h.lease(ds[1].ID, time.Minute, Base)
		crossed := completion(ca, 200, kapsel.DeliveryDelivered, Base)
		crossed.LeaseToken = cb.LeaseToken
		mustIs(t, h.complete(Base, crossed)[0], kapsel.ErrLeaseLost, "completing a with b's token")
		equal(t, "released with another delivery's token",
			h.release(Base, kapsel.DeliveryRelease{DeliveryID: ds[1].ID, LeaseToken: ca.LeaseToken, NextAttemptAt: Base}), 0)
		for _, c := range []*kapsel.Delivery{ca, cb} {
			got := h.get(c.ID)
			equal(t, "Status", got.Status, kapsel.DeliveryDelivering)
			equal(t, "LeaseToken", got.LeaseToken, c.LeaseToken)
			equal(t, "attempts recorded", len(h.attempts(c.ID)), 0)
		}
		errs := h.complete(Base, completion(ca, 200, kapsel.DeliveryDelivered, Base), completion(cb, 200, kapsel.DeliveryDelivered, Base))
		must(t, errs[0], "a's completion with its token")
		must(t, errs[1], "b's completion with its token")
	})

	// One delivery's lease taken over fences that delivery's old worker
	// only; the other delivery's late completion, not taken over, applies.
	t.Run("Fencing", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		a, b := h.endpoint(ten), h.endpoint(ten)
		_, ds := h.fanned(ten, Base, a, b)
		claimed := h.claim(10, 30*time.Second, Base)
		equal(t, "claimed", len(claimed), 2)
		// Both leases run out; a claim that skips b's endpoint takes a's
		// delivery over.
		taken := h.claim(10, time.Minute, at(time.Minute), b.ID)
		if len(taken) != 1 || taken[0].ID != ds[0].ID {
			t.Fatalf("claim excluding b = %v, want a's delivery %s", ids(taken), ds[0].ID)
		}
		fresh := taken[0]
		var staleA, staleB *kapsel.Delivery
		for _, c := range claimed {
			if c.ID == ds[0].ID {
				staleA = c
			} else {
				staleB = c
			}
		}
		errs := h.complete(at(time.Minute),
			completion(staleA, 200, kapsel.DeliveryDelivered, Base), completion(staleB, 200, kapsel.DeliveryDelivered, Base))
		mustIs(t, errs[0], kapsel.ErrLeaseLost, "a's stale completion")
		equal(t, "a's Status", h.get(ds[0].ID).Status, kapsel.DeliveryDelivering)
		equal(t, "a's LeaseToken", h.get(ds[0].ID).LeaseToken, fresh.LeaseToken)
		equal(t, "a's attempts", len(h.attempts(ds[0].ID)), 0)
		// b's lease ran out too, but nobody took it over: its worker's
		// completion applies.
		must(t, errs[1], "b's late completion")
		equal(t, "b's Status", h.get(ds[1].ID).Status, kapsel.DeliveryDelivered)
		equal(t, "b's attempts", len(h.attempts(ds[1].ID)), 1)
	})

	// One endpoint's deliveries wait while it is paused, disabled or its
	// breaker is open; the same event's other deliveries go on.
	t.Run("HoldPerEndpoint", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		active, paused, disabled, open := h.endpoint(ten), h.endpoint(ten), h.endpoint(ten), h.endpoint(ten)
		h.setState(paused, kapsel.EndpointPaused, "", Base)
		h.setState(disabled, kapsel.EndpointDisabled, kapsel.DisabledGone, Base)
		h.saveBreaker(open.ID, kapsel.BreakerOpen, at(time.Hour))
		ev, ds := h.fanned(ten, Base, active, paused, disabled, open)
		summary(t, "event", ev.Deliveries, kapsel.DeliverySummary{Total: 4, Pending: 4})
		h.claimOne(ds[0].ID, 2*time.Hour, at(time.Minute))
		wantCounts(t, h.stats(0, at(time.Minute)), 3, 1, false, false)

		h.setState(paused, kapsel.EndpointActive, "", at(2*time.Minute))
		h.claimOne(ds[1].ID, 2*time.Hour, at(2*time.Minute))
		h.setState(disabled, kapsel.EndpointActive, "", at(3*time.Minute))
		h.claimOne(ds[2].ID, 2*time.Hour, at(3*time.Minute))
		if got := h.claim(10, time.Minute, at(time.Hour-time.Microsecond)); len(got) != 0 {
			t.Fatalf("claimed %v while the breaker is open", ids(got))
		}
		h.claimOne(ds[3].ID, time.Minute, at(time.Hour))
		summary(t, "event", h.getEvent(ev.ID).Deliveries, kapsel.DeliverySummary{Total: 4, Delivering: 4})
	})
}
