package storetest

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Retention decisions (the root contract's RetentionStore):
//
//   - Retention works per event: an event's body is erased, and the event
//     removed with its deliveries and attempts, only once none of its
//     deliveries is in use (pending, delivering, or failed with a lease
//     that had not run out by Before). A blocked event is reported
//     (Blocked) so that the next pass comes back to it.
//   - An event is not removed while its idempotency key is taken, whatever
//     Before says.
//   - An erased body reads back empty (not nil-vs-empty sensitive), with
//     empty Headers, Size and BodyHash as stored, BodyErasure and
//     BodyErasedAt set; an erased event is still listed and its
//     deliveries and attempts stay readable.
//   - An expunge of an erased event changes nothing (the first erasure,
//     and its time, stay).
func testRetention(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	if _, ok := newStore(t).(kapsel.RetentionStore); !ok {
		t.Skip("the store does not implement kapsel.RetentionStore (optional): retention not tested")
	}
	day := 24 * time.Hour

	t.Run("Races", func(t *testing.T) { testRetentionRaces(t, newStore) })

	t.Run("EndedDeliveryExpires", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		d := h.delivery(ep, Base)
		c := h.claimOne(d.ID, time.Minute, Base)
		comp := completion(c, 200, kapsel.DeliveryDelivered, at(time.Second))
		comp.Attempt.ResponseBody = []byte("thanks")
		must(t, h.complete(at(2*time.Second), comp)[0], "completion")
		newer := h.event(ep, at(2*day)) // not yet expired: stays

		res := h.deleteEvents(kapsel.RetentionSweepParams{Before: at(day), Now: at(3 * day)})
		equal(t, "events removed", res.Events, 1)
		equal(t, "deliveries removed", res.Deliveries, 1)
		equal(t, "attempts removed", res.Attempts, 1)
		if res.Bytes < int64(len(`{"n":0}`)+len("thanks")) {
			t.Fatalf("Bytes = %d, want at least the body and the response body", res.Bytes)
		}
		equal(t, "Done", res.Done, true)
		equal(t, "Blocked", res.Blocked, "")

		_, err := h.s.EventGet(h.ctx, &kapsel.EventGetParams{ID: d.EventID})
		mustIs(t, err, kapsel.ErrNotFound, "EventGet of a removed event")
		_, err = h.s.DeliveryGet(h.ctx, &kapsel.DeliveryGetParams{ID: d.ID})
		mustIs(t, err, kapsel.ErrNotFound, "DeliveryGet of a removed delivery")
		_, err = h.s.AttemptList(h.ctx, &kapsel.AttemptListParams{DeliveryID: d.ID, Limit: 10})
		mustIs(t, err, kapsel.ErrNotFound, "AttemptList of a removed delivery")
		equal(t, "the newer event's body", string(h.getEvent(newer.ID).Body), `{"n":0}`)

		old, err := h.s.RetentionOldest(h.ctx)
		must(t, err, "RetentionOldest")
		sameTime(t, "oldest event", old.Events, at(2*day))
		sameTime(t, "oldest delivery", old.Deliveries, at(2*day))
		sameTime(t, "oldest attempt (none left)", old.Attempts, time.Time{})
	})

	t.Run("UnfinishedNeverExpires", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		a, b := h.endpoint(ten), h.endpoint(ten)
		ev := h.insertNew(Base, send(ten.ID, "", []byte(`{"fan":"out"}`)))[0] // to a and b
		// a's delivery is delivered, b's is pending; a second event's is delivering.
		da, db := h.deliveryOf(ev.ID, a.ID), h.deliveryOf(ev.ID, b.ID)
		cs := h.claim(10, time.Minute, Base, b.ID)
		equal(t, "claimed", len(cs), 1)
		must(t, h.complete(at(time.Second), completion(cs[0], 200, kapsel.DeliveryDelivered, at(time.Second)))[0], "completion")
		leased := h.event(a, at(time.Hour))
		if cs := h.claim(10, 1000*day, at(time.Hour), b.ID); len(cs) != 1 || cs[0].EventID != leased.ID {
			t.Fatalf("claimed %v, want the delivery of %s", ids(cs), leased.ID)
		}

		for _, now := range []time.Time{at(10 * day), at(10000 * day)} {
			p := kapsel.RetentionSweepParams{Before: now, Now: now}
			h.sweepsBlockedBy(p, ev.ID)
		}
		equal(t, "body", string(h.getEvent(ev.ID).Body), `{"fan":"out"}`)
		equal(t, "a's delivery", h.get(da.ID).Status, kapsel.DeliveryDelivered)
		equal(t, "b's delivery", h.get(db.ID).Status, kapsel.DeliveryPending)
		equal(t, "the leased event's body", string(h.getEvent(leased.ID).Body), `{"n":0}`)
	})

	// A delivery ended while its attempt was in flight (its endpoint
	// deleted) keeps its lease: its event is in use until the lease has
	// run out by Before, then removed.
	t.Run("FailedWithLeaseKept", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		d := h.delivery(ep, Base)
		c := h.lease(d.ID, 10*day, Base) // leased until 10 days
		h.deleteEndpoint(ep, at(time.Minute))
		got := h.get(d.ID)
		equal(t, "Status after the delete", got.Status, kapsel.DeliveryFailed)
		equal(t, "LeaseToken kept", got.LeaseToken, c.LeaseToken)

		p := kapsel.RetentionSweepParams{Before: at(5 * day), Now: at(20 * day)}
		h.sweepsBlockedBy(p, d.EventID)
		equal(t, "the body", string(h.getEvent(d.EventID).Body), `{"n":0}`)

		p.Before = at(11 * day) // the lease ran out by then
		equal(t, "bodies erased after the lease", h.eraseBodies(p).Events, 1)
		equal(t, "events removed after the lease", h.deleteEvents(p).Events, 1)
	})

	// An event whose delivery was due at or after Before (a replay last
	// week) is not removed with last week's attempts; its body may go.
	t.Run("DueAfterTheCutOff", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		d := h.delivery(ep, Base)
		h.finish(d.ID, kapsel.DeliveryDelivered, at(time.Minute))
		_, err := h.s.DeliveryRetry(h.ctx, &kapsel.DeliveryRetryParams{ID: d.ID, Now: at(10 * day)})
		must(t, err, "DeliveryRetry")
		h.finish(d.ID, kapsel.DeliveryDelivered, at(10*day))

		p := kapsel.RetentionSweepParams{Before: at(5 * day), Now: at(20 * day)}
		res := h.deleteEvents(p)
		equal(t, "events removed", res.Events, 0)
		equal(t, "Blocked", res.Blocked, d.EventID)
		equal(t, "attempts kept", len(h.attempts(d.ID)), 2)
		equal(t, "bodies erased", h.eraseBodies(p).Events, 1)
		p.Before = at(11 * day)
		equal(t, "events removed once the replay is older than Before", h.deleteEvents(p).Events, 1)
	})

	// Expunge ends a delivering delivery but keeps its lease: the attempt
	// in flight is still recorded, and the event stays until it ends.
	t.Run("ExpungeDelivering", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		ep := h.endpoint(ten)
		d := h.delivery(ep, Base)
		c := h.lease(d.ID, time.Hour, Base)
		res, err := h.s.EventExpunge(h.ctx, &kapsel.EventExpungeParams{TenantID: ten.ID, ID: d.EventID, Now: at(time.Minute)})
		must(t, err, "EventExpunge")
		equal(t, "deliveries ended", res.DeliveriesEnded, 1)
		got := h.get(d.ID)
		equal(t, "Status", got.Status, kapsel.DeliveryFailed)
		equal(t, "LastError", got.LastError, kapsel.LastErrorBodyExpunged)
		equal(t, "LeaseToken kept", got.LeaseToken, c.LeaseToken)
		if cs := h.claim(10, time.Minute, at(2*time.Hour)); len(cs) != 0 {
			t.Fatalf("claimed %v after the expunge", ids(cs))
		}
		blocked := h.deleteEvents(kapsel.RetentionSweepParams{Before: at(30 * time.Minute), Now: at(2 * time.Minute)})
		equal(t, "removed while the attempt is in flight", blocked.Events, 0)

		must(t, h.complete(at(2*time.Minute), completion(c, 200, kapsel.DeliveryDelivered, at(time.Minute)))[0],
			"completion of the attempt in flight")
		as := h.attempts(d.ID)
		if len(as) != 1 || as[0].StatusCode != 200 {
			t.Fatalf("attempts = %+v, want the one in flight", as)
		}
		equal(t, "LeaseToken after the completion", h.get(d.ID).LeaseToken, "")
	})

	t.Run("BodiesBeforeMetadata", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		d := h.delivery(ep, Base)
		c := h.claimOne(d.ID, time.Minute, Base)
		must(t, h.complete(at(time.Second), completion(c, 500, kapsel.DeliveryFailed, at(time.Second)))[0], "completion")
		before := h.getEvent(d.EventID)

		er := h.eraseBodies(kapsel.RetentionSweepParams{Before: at(7 * day), Now: at(8 * day)})
		equal(t, "bodies erased", er.Events, 1)
		equal(t, "bytes erased", er.Bytes, int64(len(`{"n":0}`)))
		got := h.getEvent(d.EventID)
		equal(t, "Body after erasure", len(got.Body), 0)
		equal(t, "Headers after erasure", len(got.Headers), 0)
		equal(t, "BodyErasure", got.BodyErasure, kapsel.BodyExpired)
		sameTime(t, "BodyErasedAt", got.BodyErasedAt, at(8*day))
		equal(t, "Size", got.Size, before.Size)
		equal(t, "BodyHash", string(got.BodyHash), string(before.BodyHash))
		summary(t, "erased event", got.Deliveries, kapsel.DeliverySummary{Total: 1, Failed: 1})
		equal(t, "attempts kept", len(h.attempts(d.ID)), 1)
		again := h.eraseBodies(kapsel.RetentionSweepParams{Before: at(7 * day), Now: at(9 * day)})
		equal(t, "bodies erased twice", again.Events, 0)
		sameTime(t, "BodyErasedAt after a second pass", h.getEvent(d.EventID).BodyErasedAt, at(8*day))

		// Metadata retention longer than the body's: the event stays until it passes.
		res := h.deleteEvents(kapsel.RetentionSweepParams{Before: Base, Now: at(8 * day)})
		equal(t, "removed before the metadata expired", res.Events, 0)
		res = h.deleteEvents(kapsel.RetentionSweepParams{Before: at(30 * day), Now: at(31 * day)})
		equal(t, "removed once the metadata expired", res.Events, 1)
		equal(t, "bytes of an erased event: its response bodies only", res.Bytes, int64(0))
	})

	t.Run("IdempotencyKeysDropAfterTheWindow", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		first := h.insertMany(Base, time.Hour, input(ep, "key-1", []byte("first")))[0]
		must(t, first.Err, "first insert")
		c := h.claimOne(h.deliveryOf(first.Event.ID, ep.ID).ID, time.Minute, Base)
		must(t, h.complete(at(time.Second), completion(c, 200, kapsel.DeliveryDelivered, at(time.Second)))[0], "completion")

		kr, err := h.s.RetentionDeleteIdempotencyKeys(h.ctx, &kapsel.RetentionKeysParams{Now: at(59 * time.Minute)})
		must(t, err, "RetentionDeleteIdempotencyKeys within the window")
		equal(t, "keys removed within the window", kr.Events, 0)
		// The event is not removed while its key is taken, whatever Before says.
		res := h.deleteEvents(kapsel.RetentionSweepParams{Before: at(30 * time.Minute), Now: at(59 * time.Minute)})
		equal(t, "events removed while the key is taken", res.Events, 0)
		equal(t, "Blocked by the key", res.Blocked, first.Event.ID)
		dup := h.insertMany(at(59*time.Minute), time.Hour, input(ep, "key-1", []byte("first")))[0]
		equal(t, "Duplicate within the window", dup.Duplicate, true)

		kr, err = h.s.RetentionDeleteIdempotencyKeys(h.ctx, &kapsel.RetentionKeysParams{Now: at(time.Hour)})
		must(t, err, "RetentionDeleteIdempotencyKeys after the window")
		equal(t, "keys removed after the window", kr.Events, 1)
		equal(t, "Done", kr.Done, true)
		res = h.deleteEvents(kapsel.RetentionSweepParams{Before: at(30 * time.Minute), Now: at(time.Hour)})
		equal(t, "events removed after the window", res.Events, 1)
		// The same key, another body: a new event, not a conflict.
		again := h.insertMany(at(time.Hour), time.Hour, input(ep, "key-1", []byte("second")))[0]
		must(t, again.Err, "the key reused after the window")
		equal(t, "Duplicate after the window", again.Duplicate, false)
		if again.Event.ID == first.Event.ID {
			t.Fatal("the reused key returned the first event")
		}
	})

	t.Run("Paging", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		var evs []*kapsel.Event
		for i := range 5 {
			evs = append(evs, h.event(ep, at(time.Duration(i)*time.Minute)))
		}
		h.deliverAll(at(time.Hour), len(evs))
		// Events 0–3 are older than the cut-off, event 4 is not.
		p := kapsel.RetentionSweepParams{Before: at(4 * time.Minute), Now: at(2 * day), Limit: 2}
		r1 := h.eraseBodies(p)
		equal(t, "first batch erased", r1.Events, 2)
		equal(t, "first batch Done", r1.Done, false)
		equal(t, "first batch Next", r1.Next, evs[2].ID)
		p.From = r1.Next
		r2 := h.eraseBodies(p)
		equal(t, "second batch erased", r2.Events, 2)
		p.From = r2.Next
		r3 := h.eraseBodies(p)
		equal(t, "third batch erased", r3.Events, 0)
		equal(t, "third batch Done (a newer event)", r3.Done, true)
		equal(t, "the newer event", h.getEvent(evs[4].ID).BodyErasure, kapsel.BodyKept)
		equal(t, "an older event", h.getEvent(evs[3].ID).BodyErasure, kapsel.BodyExpired)
	})

	t.Run("TenantScope", func(t *testing.T) {
		h := setup(t, newStore)
		t1, t2 := h.tenant(), h.tenant()
		e1, e2 := h.endpoint(t1), h.endpoint(t2)
		ev1 := h.event(e1, Base)
		ev2 := h.event(e2, at(time.Second))
		h.deliverAll(at(time.Minute), 2)
		p := kapsel.RetentionSweepParams{Before: at(day), Now: at(2 * day), ExcludeTenantIDs: []kapsel.TenantID{t1.ID}}
		equal(t, "erased without t1", h.eraseBodies(p).Events, 1)
		equal(t, "t1's body", h.getEvent(ev1.ID).BodyErasure, kapsel.BodyKept)
		equal(t, "t2's body", h.getEvent(ev2.ID).BodyErasure, kapsel.BodyExpired)
		p = kapsel.RetentionSweepParams{Before: at(day), Now: at(2 * day), TenantID: t1.ID}
		res := h.deleteEvents(p)
		equal(t, "removed of t1", res.Events, 1)
		_, err := h.s.EventGet(h.ctx, &kapsel.EventGetParams{ID: ev1.ID})
		mustIs(t, err, kapsel.ErrNotFound, "EventGet of t1's removed event")
		h.getEvent(ev2.ID) // t2's stays
	})

	t.Run("ExpungeOne", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		ep := h.endpoint(ten)
		d := h.delivery(ep, Base)
		other := h.event(ep, Base)
		res, err := h.s.EventExpunge(h.ctx, &kapsel.EventExpungeParams{TenantID: h.tenant().ID, ID: d.EventID, Now: at(time.Minute)})
		mustIs(t, err, kapsel.ErrNotFound, "EventExpunge of another tenant's event")
		if res != nil && res.Events != 0 {
			t.Fatalf("another tenant's expunge erased %d", res.Events)
		}
		res, err = h.s.EventExpunge(h.ctx, &kapsel.EventExpungeParams{TenantID: ten.ID, ID: d.EventID, Now: at(time.Minute)})
		must(t, err, "EventExpunge")
		equal(t, "erased", res.Events, 1)
		equal(t, "deliveries ended", res.DeliveriesEnded, 1)
		got := h.getEvent(d.EventID)
		equal(t, "Body", len(got.Body), 0)
		equal(t, "Headers", len(got.Headers), 0)
		equal(t, "BodyErasure", got.BodyErasure, kapsel.BodyExpunged)
		sameTime(t, "BodyErasedAt", got.BodyErasedAt, at(time.Minute))
		dd := h.get(d.ID)
		equal(t, "the pending delivery", dd.Status, kapsel.DeliveryFailed)
		equal(t, "its LastError", dd.LastError, kapsel.LastErrorBodyExpunged)
		// Only the other event's delivery is claimable.
		cs := h.claim(10, time.Minute, at(time.Hour))
		if len(cs) != 1 || cs[0].EventID != other.ID {
			t.Fatalf("claimed %v after the expunge, want only the other event's delivery", ids(cs))
		}
		equal(t, "the other event's body", string(cs[0].Event.Body), `{"n":0}`)
		res, err = h.s.EventExpunge(h.ctx, &kapsel.EventExpungeParams{TenantID: ten.ID, ID: d.EventID, Now: at(time.Hour)})
		must(t, err, "second EventExpunge")
		equal(t, "erased twice", res.Events, 0)
		sameTime(t, "BodyErasedAt after a second expunge", h.getEvent(d.EventID).BodyErasedAt, at(time.Minute))
		_, err = h.s.EventExpunge(h.ctx, &kapsel.EventExpungeParams{TenantID: ten.ID, ID: kapsel.NewEventID(), Now: at(time.Hour)})
		mustIs(t, err, kapsel.ErrNotFound, "EventExpunge of an unknown event")
	})

	t.Run("ExpungeTenant", func(t *testing.T) {
		h := setup(t, newStore)
		t1, t2 := h.tenant(), h.tenant()
		e1, e2 := h.endpoint(t1), h.endpoint(t2)
		evs1 := h.events(e1, 5, Base)
		evs2 := h.events(e2, 2, Base)
		p := &kapsel.EventExpungeParams{TenantID: t1.ID, Limit: 2, Now: at(time.Minute)}
		total := 0
		for range 10 {
			res, err := h.s.EventExpunge(h.ctx, p)
			must(t, err, "EventExpunge of a tenant")
			total += res.Events
			if res.Done {
				break
			}
			p.From = res.Next
		}
		equal(t, "erased", total, 5)
		for _, e := range evs1 {
			equal(t, "t1's erasure", h.getEvent(e.ID).BodyErasure, kapsel.BodyExpunged)
		}
		for _, e := range evs2 {
			equal(t, "t2's erasure", h.getEvent(e.ID).BodyErasure, kapsel.BodyKept)
		}
		_, err := h.s.EventExpunge(h.ctx, &kapsel.EventExpungeParams{Now: at(time.Minute)})
		mustIs(t, err, kapsel.ErrInvalid, "EventExpunge without a tenant")
	})
}

// eraseBodies runs one RetentionEraseBodies batch.
func (h *harness) eraseBodies(p kapsel.RetentionSweepParams) *kapsel.RetentionSweepResult {
	h.t.Helper()
	res, err := h.s.RetentionEraseBodies(h.ctx, &p)
	must(h.t, err, "RetentionEraseBodies")
	return res
}

// deleteEvents runs one RetentionDeleteEvents batch.
func (h *harness) deleteEvents(p kapsel.RetentionSweepParams) *kapsel.RetentionSweepResult {
	h.t.Helper()
	res, err := h.s.RetentionDeleteEvents(h.ctx, &p)
	must(h.t, err, "RetentionDeleteEvents")
	return res
}

// sweepsBlockedBy runs both sweeps with p and requires that neither
// removed anything and both reported the event in use as Blocked.
func (h *harness) sweepsBlockedBy(p kapsel.RetentionSweepParams, id kapsel.EventID) {
	h.t.Helper()
	er := h.eraseBodies(p)
	equal(h.t, "bodies erased", er.Events, 0)
	equal(h.t, "Blocked (bodies)", er.Blocked, id)
	res := h.deleteEvents(p)
	equal(h.t, "events removed", res.Events, 0)
	equal(h.t, "Blocked", res.Blocked, id)
}

// deliverAll claims every due delivery at now, requires n of them, and
// completes them as delivered.
func (h *harness) deliverAll(now time.Time, n int) {
	h.t.Helper()
	cs := h.claim(100, time.Minute, now)
	equal(h.t, "deliveries claimed", len(cs), n)
	comps := make([]kapsel.DeliveryCompletion, len(cs))
	for i, c := range cs {
		comps[i] = completion(c, 200, kapsel.DeliveryDelivered, now)
	}
	for _, err := range h.complete(now, comps...) {
		must(h.t, err, "completion")
	}
}
