package storetest

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// stats reads DeliveryStats at now with the given limit (0: the default).
func (h *harness) stats(limit int, now time.Time) *kapsel.DeliveryStats {
	h.t.Helper()
	st, err := h.s.DeliveryStats(h.ctx, &kapsel.DeliveryStatsParams{Limit: limit, Now: now})
	must(h.t, err, "DeliveryStats")
	if st.Count == nil || st.Capped == nil {
		h.t.Fatalf("DeliveryStats = %+v: Count and Capped must be non-nil", st)
	}
	return st
}

// wantCounts checks st's counts and capped flags against the pending and
// delivering numbers given.
func wantCounts(t *testing.T, st *kapsel.DeliveryStats, pending, delivering int64, pendingCapped, deliveringCapped bool) {
	t.Helper()
	equal(t, "Count[pending]", st.Count[kapsel.DeliveryPending], pending)
	equal(t, "Count[delivering]", st.Count[kapsel.DeliveryDelivering], delivering)
	equal(t, "Capped[pending]", st.Capped[kapsel.DeliveryPending], pendingCapped)
	equal(t, "Capped[delivering]", st.Capped[kapsel.DeliveryDelivering], deliveringCapped)
}

func testStats(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("DeliveryStatsCountsTheLiveQueue", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		ds := h.deliveries(ep, 3, at(time.Minute))
		h.delivery(ep, at(2*time.Minute))
		h.delivery(ep, at(time.Hour)) // not due yet
		h.finish(ds[0].ID, kapsel.DeliveryDelivered, at(10*time.Minute))
		h.finish(ds[1].ID, kapsel.DeliveryFailed, at(10*time.Minute))
		h.lease(ds[2].ID, time.Minute, at(10*time.Minute))

		st := h.stats(0, at(10*time.Minute))
		wantCounts(t, st, 2, 1, false, false)
		// The history is not counted: a read that did would cost O(history).
		for _, s := range []kapsel.DeliveryStatus{kapsel.DeliveryDelivered, kapsel.DeliveryFailed} {
			if n, ok := st.Count[s]; ok {
				t.Fatalf("Count[%s] = %d: terminal statuses are not counted", s, n)
			}
		}
		sameTime(t, "OldestDue", st.OldestDue, at(2*time.Minute))

		if st := h.stats(0, at(time.Minute)); !st.OldestDue.IsZero() {
			t.Fatalf("OldestDue = %v with nothing pending due", st.OldestDue)
		}
	})

	t.Run("DeliveryStatsSkipsDeletedEndpoints", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		gone, kept := h.endpoint(ten), h.endpoint(ten)
		h.delivery(gone, at(time.Minute))
		h.delivery(kept, at(3*time.Minute))
		h.deleteEndpoint(gone, at(5*time.Minute))
		// The deleted endpoint's delivery will never be attempted: it is not
		// queue depth, and it must not age the oldest due delivery forever.
		st := h.stats(0, at(10*time.Minute))
		wantCounts(t, st, 1, 0, false, false)
		sameTime(t, "OldestDue", st.OldestDue, at(3*time.Minute))
	})

	// OldestDue is the delivery a claim would take first: the deliveries of a
	// paused or disabled endpoint, or of one whose breaker is open, wait
	// visibly in Count but do not age the queue (a long pause is not a
	// dispatcher falling behind), whether or not a claim has met them yet.
	t.Run("DeliveryStatsOldestDueIsClaimable", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		paused, disabled, open, reopened, active := h.endpoint(ten), h.endpoint(ten), h.endpoint(ten), h.endpoint(ten), h.endpoint(ten)
		h.setState(paused, kapsel.EndpointPaused, kapsel.DisabledNone, Base)
		h.setState(disabled, kapsel.EndpointDisabled, kapsel.DisabledManual, Base)
		h.saveBreaker(open.ID, kapsel.BreakerOpen, at(20*time.Minute))
		h.saveBreaker(reopened.ID, kapsel.BreakerOpen, at(8*time.Minute))
		h.delivery(paused, at(time.Minute))
		h.delivery(disabled, at(time.Minute))
		h.delivery(open, at(2*time.Minute))
		first := h.delivery(reopened, at(3*time.Minute)) // its breaker lets deliveries through from 8 min
		h.delivery(active, at(5*time.Minute))

		st := h.stats(0, at(10*time.Minute))
		wantCounts(t, st, 5, 0, false, false)
		sameTime(t, "OldestDue", st.OldestDue, at(3*time.Minute))
		if st := h.stats(0, at(7*time.Minute)); !st.OldestDue.Equal(at(5 * time.Minute)) {
			t.Fatalf("OldestDue at 7 min = %v, want %v (the breaker still holds the 3 min delivery)", st.OldestDue, at(5*time.Minute))
		}

		// After a claim met the blocked deliveries (a store may move them out of
		// its way then), the answer is the same; the leased delivery is no
		// longer due.
		h.lease(first.ID, time.Minute, at(10*time.Minute))
		st = h.stats(0, at(10*time.Minute))
		wantCounts(t, st, 4, 1, false, false)
		sameTime(t, "OldestDue after a claim", st.OldestDue, at(5*time.Minute))
	})

	// Limit bounds the work: a count stops at Limit and says it did, so a
	// backlog of any size costs a bounded read.
	t.Run("DeliveryStatsLimit", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		h.deliveries(ep, 6, Base)
		equal(t, "claimed", len(h.claim(2, time.Minute, Base)), 2)

		for _, c := range []struct {
			limit               int
			pending, delivering int64
			pCapped, dCapped    bool
			name                string
		}{
			{0, 4, 2, false, false, "default"},
			{4, 4, 2, false, false, "limit equal to the count"},
			{3, 3, 2, true, false, "pending over the limit"},
			{1, 1, 1, true, true, "both over the limit"},
		} {
			st := h.stats(c.limit, at(time.Minute))
			t.Logf("%s: %+v", c.name, st)
			wantCounts(t, st, c.pending, c.delivering, c.pCapped, c.dCapped)
			sameTime(t, c.name+": OldestDue", st.OldestDue, Base)
		}
	})
	// The queue is deliveries: one event fanned out to three endpoints is
	// three deep.
	t.Run("DeliveryStatsCountsDeliveries", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		a, b, c := h.endpoint(ten), h.endpoint(ten), h.endpoint(ten)
		ev := h.insertNew(at(time.Minute), send(ten.ID, "", []byte(`{}`)))[0]
		wantCounts(t, h.stats(0, at(2*time.Minute)), 3, 0, false, false)
		h.finish(h.deliveryOf(ev.ID, a.ID).ID, kapsel.DeliveryDelivered, at(2*time.Minute))
		h.lease(h.deliveryOf(ev.ID, b.ID).ID, time.Hour, at(2*time.Minute))
		st := h.stats(0, at(3*time.Minute))
		wantCounts(t, st, 1, 1, false, false)
		sameTime(t, "OldestDue", st.OldestDue, at(time.Minute))
		h.setState(c, kapsel.EndpointPaused, "", at(3*time.Minute))
		st = h.stats(0, at(4*time.Minute))
		wantCounts(t, st, 1, 1, false, false)
		sameTime(t, "OldestDue with the last endpoint paused", st.OldestDue, time.Time{})
	})
}
