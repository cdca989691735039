package storetest

import (
	"errors"
	"fmt"
	"sync"
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
	// Giving back a delivery the delete ended while it was leased releases
	// nothing: it stays failed and keeps its token, which still owns it, so
	// a completion with that token is recorded, as after no release.
	t.Run("InFlightReleaseSkipped", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		d := h.delivery(ep, Base)
		c := h.claimOne(d.ID, time.Minute, Base)
		h.deleteEndpoint(ep, at(time.Second))
		n := h.release(at(2*time.Second), kapsel.DeliveryRelease{DeliveryID: c.ID, LeaseToken: c.LeaseToken, NextAttemptAt: at(time.Hour)})
		equal(t, "released", n, 0)
		got := h.get(d.ID)
		equal(t, "Status after the release", got.Status, kapsel.DeliveryFailed)
		equal(t, "LastError after the release", got.LastError, kapsel.LastErrorEndpointDeleted)
		equal(t, "LeaseToken after the release", got.LeaseToken, c.LeaseToken)
		must(t, h.complete(at(3*time.Second), completion(c, 200, kapsel.DeliveryDelivered, at(time.Second)))[0],
			"completion with the token after the release")
		got = h.get(d.ID)
		equal(t, "Status after the completion", got.Status, kapsel.DeliveryDelivered)
		equal(t, "attempts recorded", len(h.attempts(d.ID)), 1)
	})

	// What creates or requeues deliveries — inserts fanning out or naming
	// the endpoint, backfill, retry, retry of the event, replay — racing
	// the endpoint's delete never leaves one of its deliveries waiting:
	// each either happens before the delete, which then ends it, or finds
	// the endpoint gone. Round after round, all at once.
	t.Run("ConcurrentWithDelete", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		past := make([]*kapsel.EventInsertParams, 10)
		for i := range past {
			past[i] = send(ten.ID, "", []byte(fmt.Sprint("past ", i)))
		}
		h.insertNew(Base, past...) // for backfills: nobody is subscribed yet
		// Each round has its endpoint, with three failed deliveries to
		// retry and replay; all set up at once.
		const rounds = 8
		eps := make([]*kapsel.Endpoint, rounds)
		failed := make([][]kapsel.DeliveryID, rounds)
		var in []*kapsel.EventInsertParams
		for i := range eps {
			eps[i] = h.endpoint(ten)
			for j := range 3 {
				in = append(in, input(eps[i], "", []byte(fmt.Sprint(i, " ", j))))
			}
		}
		h.insertNew(at(time.Minute), in...)
		claimed := h.claim(kapsel.MaxPageLimit, time.Minute, at(time.Minute))
		equal(t, "claimed", len(claimed), 3*rounds)
		comps := make([]kapsel.DeliveryCompletion, len(claimed))
		for i, c := range claimed {
			comps[i] = completion(c, 500, kapsel.DeliveryFailed, at(time.Minute))
		}
		for _, err := range h.complete(at(time.Minute), comps...) {
			must(t, err, "completion")
		}
		for i, ep := range eps {
			for _, d := range h.listDeliveries(kapsel.DeliveryListParams{EndpointID: ep.ID}) {
				failed[i] = append(failed[i], d.ID)
			}
		}
		for round, ep := range eps {
			now := at(time.Duration(round+2) * time.Minute)
			retried, event := failed[round][0], h.get(failed[round][1]).EventID
			ops := []func() error{
				func() error {
					_, err := h.s.DeliveryBackfill(h.ctx, &kapsel.DeliveryBackfillParams{TenantID: ten.ID, EndpointID: ep.ID, Now: now})
					return err
				},
				func() error {
					_, err := h.s.DeliveryRetry(h.ctx, &kapsel.DeliveryRetryParams{ID: retried, TenantID: ten.ID, Now: now})
					return err
				},
				func() error {
					_, err := h.s.DeliveryRetryEvent(h.ctx, &kapsel.DeliveryRetryEventParams{EventID: event, TenantID: ten.ID, Now: now})
					return err
				},
				func() error {
					_, err := h.s.DeliveryReplay(h.ctx, &kapsel.DeliveryReplayParams{TenantID: ten.ID, EndpointID: ep.ID, Status: kapsel.DeliveryFailed, Now: now})
					return err
				},
				func() error {
					res, err := h.s.EventInsertMany(h.ctx, &kapsel.EventInsertManyParams{Now: now,
						Events: []*kapsel.EventInsertParams{send(ten.ID, "", []byte("fan out")), input(ep, "", []byte("named"))}})
					if err == nil {
						err = errors.Join(res[0].Err, res[1].Err)
					}
					return err
				},
			}
			start := make(chan struct{})
			errs := make([]error, len(ops))
			var deleteErr error
			var wg sync.WaitGroup
			for i, op := range ops {
				wg.Go(func() { <-start; errs[i] = op() })
			}
			wg.Go(func() {
				<-start
				deleteErr = h.s.EndpointDelete(h.ctx, &kapsel.EndpointDeleteParams{ID: ep.ID, TenantID: ten.ID, Now: now})
			})
			close(start)
			wg.Wait()
			must(t, deleteErr, "EndpointDelete")
			for i, err := range errs {
				// (A retry may find its delivery requeued by the replay.)
				if err != nil && !errors.Is(err, kapsel.ErrNotFound) && !errors.Is(err, kapsel.ErrIllegalTransition) {
					t.Fatalf("round %d: operation %d racing the delete: %v, want nil or ErrNotFound", round, i, err)
				}
			}
			for _, d := range h.listDeliveries(kapsel.DeliveryListParams{EndpointID: ep.ID}) {
				if d.Status != kapsel.DeliveryFailed ||
					(d.LastError != kapsel.LastErrorEndpointDeleted && d.LastError != "status 500") {
					t.Fatalf("round %d: delivery %s of the deleted endpoint is %s (last error %q), want failed",
						round, d.ID, d.Status, d.LastError)
				}
			}
		}
	})
}
