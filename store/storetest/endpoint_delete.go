package storetest

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// testEndpointDelete checks what EndpointDelete does to deliveries: its
// unfinished ones end as failed at once (they stay listed), no claim returns
// one, nothing new is made for it — and an attempt already in flight is
// still recorded when it completes (I5 of docs/guarantees.md).
func testEndpointDelete(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("FailsUnfinishedDeliveries", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		gone, kept := h.endpoint(ten), h.endpoint(ten)
		evs := make([]*kapsel.Event, 4)
		ds := make([]*kapsel.Delivery, 4) // gone's: pending, delivering, delivered, failed
		for i := range evs {
			var pair []*kapsel.Delivery
			evs[i], pair = h.fanned(ten, at(time.Duration(i)*time.Second), gone, kept)
			ds[i] = pair[0]
		}
		h.finish(ds[2].ID, kapsel.DeliveryDelivered, at(time.Minute))
		h.finish(ds[3].ID, kapsel.DeliveryFailed, at(time.Minute))
		h.lease(ds[1].ID, time.Hour, at(time.Minute))

		h.deleteEndpoint(gone, at(2*time.Minute))
		for i, want := range []struct {
			status    kapsel.DeliveryStatus
			lastError string
			attempts  int
		}{
			{kapsel.DeliveryFailed, kapsel.LastErrorEndpointDeleted, 0},
			{kapsel.DeliveryFailed, kapsel.LastErrorEndpointDeleted, 0},
			{kapsel.DeliveryDelivered, "", 1},
			{kapsel.DeliveryFailed, "status 500", 1},
		} {
			got := h.get(ds[i].ID) // still readable, as the audit trail
			equal(t, "Status", got.Status, want.status)
			equal(t, "LastError", got.LastError, want.lastError)
			equal(t, "Attempts", got.Attempts, want.attempts)
		}
		summary(t, "event with a pending delivery to it", h.getEvent(evs[0].ID).Deliveries,
			kapsel.DeliverySummary{Total: 2, Pending: 1, Failed: 1})
		equal(t, "deliveries listed", len(h.listDeliveries(kapsel.DeliveryListParams{EndpointID: gone.ID})), 4)
		equal(t, "failed deliveries listed", len(h.listDeliveries(kapsel.DeliveryListParams{EndpointID: gone.ID, Status: kapsel.DeliveryFailed})), 3)
		for _, d := range h.listDeliveries(kapsel.DeliveryListParams{EndpointID: kept.ID}) {
			equal(t, "the other endpoint's delivery Status", d.Status, kapsel.DeliveryPending)
		}

		// Nothing of it is claimed, counted, retried, replayed, backfilled
		// or made any more.
		for _, d := range h.claim(100, time.Minute, at(24*time.Hour)) {
			if d.EndpointID == gone.ID {
				t.Fatalf("claimed %s of the deleted endpoint", d.ID)
			}
		}
		wantCounts(t, h.stats(0, at(24*time.Hour)), 0, 4, false, false)
		_, err := h.s.DeliveryRetry(h.ctx, &kapsel.DeliveryRetryParams{ID: ds[0].ID, Now: at(25 * time.Hour)})
		mustIs(t, err, kapsel.ErrNotFound, "DeliveryRetry of the deleted endpoint's delivery")
		_, err = h.s.DeliveryReplay(h.ctx, &kapsel.DeliveryReplayParams{EndpointID: gone.ID, Status: kapsel.DeliveryFailed, Now: at(25 * time.Hour)})
		mustIs(t, err, kapsel.ErrNotFound, "DeliveryReplay of the deleted endpoint")
		_, err = h.s.DeliveryBackfill(h.ctx, &kapsel.DeliveryBackfillParams{EndpointID: gone.ID, Now: at(25 * time.Hour)})
		mustIs(t, err, kapsel.ErrNotFound, "DeliveryBackfill of the deleted endpoint")
		n, err := h.s.DeliveryRetryEvent(h.ctx, &kapsel.DeliveryRetryEventParams{EventID: evs[3].ID, Now: at(25 * time.Hour)})
		must(t, err, "DeliveryRetryEvent")
		equal(t, "retried of an event whose failed delivery's endpoint is deleted", n, 0)
		equal(t, "Status after retries", h.get(ds[3].ID).Status, kapsel.DeliveryFailed)
		ev := h.insertNew(at(25*time.Hour), send(ten.ID, "", []byte("later")))[0]
		summary(t, "event inserted after the delete", ev.Deliveries, kapsel.DeliverySummary{Total: 1, Pending: 1})
		res := h.insertMany(at(25*time.Hour), 0, input(gone, "", []byte("named")))[0]
		mustIs(t, res.Err, kapsel.ErrNotFound, "a send naming the deleted endpoint")
		equal(t, "deliveries listed", len(h.listDeliveries(kapsel.DeliveryListParams{EndpointID: gone.ID})), 4)
	})

	// The attempts in flight when the endpoint was deleted were made: their
	// completions are recorded, a success as delivered, anything else as
	// failed for the deletion. One endpoint per outcome, in one store.
	t.Run("InFlightCompletionRecorded", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		cases := []struct {
			name          string
			code          int
			status        kapsel.DeliveryStatus
			want          kapsel.DeliveryStatus
			wantLastError string
			ep            *kapsel.Endpoint
			d, claimed    *kapsel.Delivery
		}{
			{name: "delivered stays delivered", code: 200, status: kapsel.DeliveryDelivered, want: kapsel.DeliveryDelivered},
			{name: "a retry becomes failed", code: 503, status: kapsel.DeliveryPending, want: kapsel.DeliveryFailed, wantLastError: kapsel.LastErrorEndpointDeleted},
			{name: "failed stays failed", code: 400, status: kapsel.DeliveryFailed, want: kapsel.DeliveryFailed, wantLastError: kapsel.LastErrorEndpointDeleted},
		}
		for i := range cases {
			c := &cases[i]
			c.ep = h.endpoint(ten)
			c.d = h.delivery(c.ep, Base)
		}
		claimed := h.claim(10, 30*time.Second, at(time.Second))
		equal(t, "claimed", len(claimed), len(cases))
		for i := range cases {
			c := &cases[i]
			for _, d := range claimed {
				if d.ID == c.d.ID {
					c.claimed = d
				}
			}
			h.deleteEndpoint(c.ep, at(10*time.Second))
			got := h.get(c.d.ID)
			equal(t, c.name+": Status after the delete", got.Status, kapsel.DeliveryFailed)
			equal(t, c.name+": LastError after the delete", got.LastError, kapsel.LastErrorEndpointDeleted)
		}
		// The leases run out meanwhile: the deliveries are never claimed
		// again, so their workers still own them.
		if got := h.claim(10, time.Minute, at(time.Minute)); len(got) != 0 {
			t.Fatalf("claimed %v of deleted endpoints", ids(got))
		}
		comps := make([]kapsel.DeliveryCompletion, len(cases))
		for i, c := range cases {
			comps[i] = completion(c.claimed, c.code, c.status, at(time.Second))
			comps[i].NextAttemptAt = at(2 * time.Minute)
			if c.code == 400 {
				comps[i].DisableEndpoint = kapsel.DisabledGone // ignored: the endpoint is gone
			}
		}
		for i, err := range h.complete(at(90*time.Second), comps...) {
			must(t, err, cases[i].name+": completion of the attempt in flight")
		}
		for _, c := range cases {
			got := h.get(c.d.ID)
			equal(t, c.name+": Status", got.Status, c.want)
			equal(t, c.name+": LastError", got.LastError, c.wantLastError)
			equal(t, c.name+": Attempts", got.Attempts, 1)
			equal(t, c.name+": LeaseToken", got.LeaseToken, "")
			if c.want == kapsel.DeliveryDelivered {
				sameTime(t, c.name+": DeliveredAt", got.DeliveredAt, at(90*time.Second))
			}
			as := h.attempts(c.d.ID)
			if len(as) != 1 || as[0].StatusCode != c.code || as[0].DeliveryID != c.d.ID || as[0].EndpointID != c.ep.ID {
				t.Fatalf("%s: attempts = %+v, want the one in flight, answered %d", c.name, as, c.code)
			}
		}
		for i, err := range h.complete(at(2*time.Minute), comps...) {
			mustIs(t, err, kapsel.ErrLeaseLost, cases[i].name+": second completion with the token")
		}
		if got := h.claim(10, time.Minute, at(time.Hour)); len(got) != 0 {
			t.Fatalf("claimed %v of deleted endpoints", ids(got))
		}
		for _, c := range cases {
			equal(t, c.name+": attempts recorded", len(h.attempts(c.d.ID)), 1)
		}
	})
}
