package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// backfill runs DeliveryBackfill and fails the test on an error.
func (h *harness) backfill(p kapsel.DeliveryBackfillParams) *kapsel.DeliveryBackfillResult {
	h.t.Helper()
	res, err := h.s.DeliveryBackfill(h.ctx, &p)
	must(h.t, err, "DeliveryBackfill")
	return res
}

// wantBackfill requires a backfill's result.
func wantBackfill(t *testing.T, what string, got *kapsel.DeliveryBackfillResult, created int, more bool, next kapsel.EventID) {
	t.Helper()
	equal(t, what+": Created", got.Created, created)
	equal(t, what+": More", got.More, more)
	if more {
		equal(t, what+": Next", got.Next, next)
	}
}

// testBackfill checks DeliveryBackfill: the deliveries an endpoint would
// have had for past matching events, at most one per event.
func testBackfill(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("CreatesMissingDeliveries", func(t *testing.T) {
		h := setup(t, newStore)
		ten, other := h.tenant(), h.tenant()
		typed := func(ten *kapsel.Tenant, typ string) *kapsel.EventInsertParams {
			in := send(ten.ID, "", randomBytes(8))
			in.Type = typ
			return in
		}
		early := h.subscribed(ten, kapsel.Subscription{EventTypes: []string{"invoice.*"}})
		evs := h.insertNew(at(time.Minute),
			typed(ten, "invoice.paid"), typed(ten, "customer.created"), typed(ten, "invoice.failed"), typed(ten, ""))
		h.insertNew(at(time.Minute), typed(other, "invoice.paid"))
		late := h.subscribed(ten, kapsel.Subscription{EventTypes: []string{"invoice.*"}})
		h.setState(late, kapsel.EndpointPaused, "", at(2*time.Minute)) // a paused endpoint's wait

		res := h.backfill(kapsel.DeliveryBackfillParams{TenantID: ten.ID, EndpointID: late.ID, Now: at(time.Hour)})
		wantBackfill(t, "backfill", res, 2, false, "")
		ds := h.listDeliveries(kapsel.DeliveryListParams{EndpointID: late.ID})
		got := []kapsel.EventID{}
		for _, d := range ds {
			got = append(got, d.EventID)
			equal(t, "Status", d.Status, kapsel.DeliveryPending)
			equal(t, "NextTrigger", d.NextTrigger, kapsel.TriggerManual)
			equal(t, "Attempts", d.Attempts, 0)
			equal(t, "TenantID", d.TenantID, ten.ID)
			sameTime(t, "NextAttemptAt", d.NextAttemptAt, at(time.Hour))
			sameTime(t, "CreatedAt", d.CreatedAt, at(time.Hour))
		}
		slices.Sort(got)
		if want := []kapsel.EventID{evs[0].ID, evs[2].ID}; !slices.Equal(got, want) {
			t.Fatalf("backfilled events %v, want the matching past ones %v", got, want)
		}
		summary(t, "backfilled event", h.getEvent(evs[0].ID).Deliveries, kapsel.DeliverySummary{Total: 2, Pending: 2})
		summary(t, "event not matched", h.getEvent(evs[1].ID).Deliveries, kapsel.DeliverySummary{})

		// Again: nothing left to create, for it or for the endpoint that
		// had them from the start.
		wantBackfill(t, "repeated backfill", h.backfill(kapsel.DeliveryBackfillParams{EndpointID: late.ID, Now: at(2 * time.Hour)}), 0, false, "")
		wantBackfill(t, "backfill of the early endpoint", h.backfill(kapsel.DeliveryBackfillParams{EndpointID: early.ID, Now: at(2 * time.Hour)}), 0, false, "")
		equal(t, "deliveries after repeats", len(h.listDeliveries(kapsel.DeliveryListParams{TenantID: ten.ID})), 4)
		equal(t, "the other tenant's deliveries", len(h.listDeliveries(kapsel.DeliveryListParams{TenantID: other.ID})), 0)

		// A wider filter: only the events without a delivery to it get one.
		_, err := h.s.EndpointUpdate(h.ctx, &kapsel.EndpointUpdateParams{ID: early.ID, TenantID: ten.ID, Now: at(3 * time.Hour),
			Update: func(e *kapsel.Endpoint) error { e.Subscription = kapsel.Subscription{}; return nil }})
		must(t, err, "EndpointUpdate")
		before := h.deliveryOf(evs[0].ID, early.ID)
		wantBackfill(t, "backfill after widening", h.backfill(kapsel.DeliveryBackfillParams{TenantID: ten.ID, EndpointID: early.ID, Now: at(4 * time.Hour)}), 2, false, "")
		after := h.deliveryOf(evs[0].ID, early.ID)
		equal(t, "existing delivery kept", after.ID, before.ID)
		equal(t, "existing delivery's NextTrigger", after.NextTrigger, kapsel.TriggerScheduled)
		for _, ev := range evs {
			h.deliveryOf(ev.ID, early.ID)
		}

		// The backfilled deliveries are claimed and attempted like others,
		// by hand: their attempts are manual.
		h.setState(late, kapsel.EndpointActive, "", at(5*time.Hour))
		c := h.lease(h.deliveryOf(evs[2].ID, late.ID).ID, time.Minute, at(5*time.Hour))
		equal(t, "claimed NextTrigger", c.NextTrigger, kapsel.TriggerManual)
		must(t, h.complete(at(5*time.Hour), completion(c, 200, kapsel.DeliveryDelivered, at(5*time.Hour)))[0], "completion")
		equal(t, "Attempt.Trigger", h.attempts(c.ID)[0].Trigger, kapsel.TriggerManual)
	})

	// [Since, Until) of the events' CreatedAt.
	t.Run("Range", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		var evs []*kapsel.Event
		for i := range 5 {
			evs = append(evs, h.insertNew(at(time.Duration(i+1)*time.Hour), send(ten.ID, "", []byte(fmt.Sprint(i))))[0])
		}
		ep := h.endpoint(ten)
		res := h.backfill(kapsel.DeliveryBackfillParams{EndpointID: ep.ID, Since: at(2 * time.Hour), Until: at(4 * time.Hour), Now: at(10 * time.Hour)})
		wantBackfill(t, "backfill of [2h, 4h)", res, 2, false, "")
		var got []kapsel.EventID
		for _, d := range h.listDeliveries(kapsel.DeliveryListParams{EndpointID: ep.ID}) {
			got = append(got, d.EventID)
		}
		if want := []kapsel.EventID{evs[1].ID, evs[2].ID}; !slices.Equal(got, want) {
			t.Fatalf("backfilled %v, want the events at 2h and 3h %v", got, want)
		}
		res = h.backfill(kapsel.DeliveryBackfillParams{EndpointID: ep.ID, Until: at(2*time.Hour + time.Microsecond), Now: at(10 * time.Hour)})
		wantBackfill(t, "backfill with an open Since", res, 1, false, "") // the event at 1h
		res = h.backfill(kapsel.DeliveryBackfillParams{EndpointID: ep.ID, Since: at(5 * time.Hour), Now: at(10 * time.Hour)})
		wantBackfill(t, "backfill with an open Until", res, 1, false, "") // the event at 5h
		equal(t, "deliveries", len(h.listDeliveries(kapsel.DeliveryListParams{EndpointID: ep.ID})), 4)
		h.deliveryOf(evs[0].ID, ep.ID)
		h.deliveryOf(evs[4].ID, ep.ID)
	})

	// Limit bounds one call; More and Next say where to go on from.
	t.Run("Paging", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		// All in one instant: a page ends at an event id, not at a time,
		// so more than Limit events created at once are still paged past.
		ids := make([]kapsel.EventID, 5)
		for i := range ids {
			ids[i] = h.insertNew(at(time.Minute), send(ten.ID, "", []byte(fmt.Sprint(i))))[0].ID
		}
		slices.Sort(ids)
		ep := h.endpoint(ten)
		p := kapsel.DeliveryBackfillParams{TenantID: ten.ID, EndpointID: ep.ID, Limit: 2, Now: at(time.Hour)}
		wantBackfill(t, "first page", h.backfill(p), 2, true, ids[1])
		p.Cursor = ids[1]
		wantBackfill(t, "second page", h.backfill(p), 2, true, ids[3])
		p.Cursor = ids[3]
		wantBackfill(t, "last page", h.backfill(p), 1, false, "")
		equal(t, "deliveries", len(h.listDeliveries(kapsel.DeliveryListParams{EndpointID: ep.ID})), 5)

		// Exactly Limit events in range: nothing is left.
		other := h.endpoint(ten)
		wantBackfill(t, "exactly Limit events",
			h.backfill(kapsel.DeliveryBackfillParams{EndpointID: other.ID, Limit: 5, Now: at(time.Hour)}), 5, false, "")
		third := h.endpoint(ten)
		wantBackfill(t, "exactly Limit events after Cursor",
			h.backfill(kapsel.DeliveryBackfillParams{EndpointID: third.ID, Limit: 4, Cursor: ids[0], Now: at(time.Hour)}), 4, false, "")

		// Every event in range counts towards Limit, matched or not: Limit
		// bounds the work of a call whatever the endpoint's filter.
		picky := h.subscribed(ten, kapsel.Subscription{EventTypes: []string{"never.*"}})
		wantBackfill(t, "events not matched",
			h.backfill(kapsel.DeliveryBackfillParams{EndpointID: picky.ID, Limit: 2, Now: at(time.Hour)}), 0, true, ids[1])
	})

	t.Run("NotVisible", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		h.insertNew(Base, send(a.ID, "", []byte("x")))
		ep, gone := h.endpoint(a), h.endpoint(a)
		h.deleteEndpoint(gone, at(time.Minute))
		for name, p := range map[string]kapsel.DeliveryBackfillParams{
			"another tenant's": {TenantID: b.ID, EndpointID: ep.ID},
			"an unknown":       {EndpointID: kapsel.NewEndpointID()},
			"a deleted":        {TenantID: a.ID, EndpointID: gone.ID},
		} {
			p.Now = at(time.Hour)
			_, err := h.s.DeliveryBackfill(h.ctx, &p)
			mustIs(t, err, kapsel.ErrNotFound, "DeliveryBackfill of "+name+" endpoint")
		}
		equal(t, "deliveries", len(h.listDeliveries(kapsel.DeliveryListParams{TenantID: a.ID})), 0)
	})

	// Concurrent backfills of one endpoint, each paging with a small
	// Limit, together create each missing delivery once.
	t.Run("Concurrent", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		const events, backfillers = 40, 5
		in := make([]*kapsel.EventInsertParams, events)
		for i := range in {
			in[i] = send(ten.ID, "", []byte(fmt.Sprint(i)))
		}
		h.insertNew(Base, in...)
		ep := h.endpoint(ten)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			created int
			errs    = make([]error, backfillers)
		)
		for i := range backfillers {
			wg.Go(func() {
				p := kapsel.DeliveryBackfillParams{TenantID: ten.ID, EndpointID: ep.ID, Limit: 7, Now: at(time.Hour)}
				for range events { // bounded: each call moves Cursor on or ends
					res, err := h.s.DeliveryBackfill(h.ctx, &p)
					if err != nil {
						errs[i] = err
						return
					}
					mu.Lock()
					created += res.Created
					mu.Unlock()
					if !res.More {
						return
					}
					p.Cursor = res.Next
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			must(t, err, "concurrent DeliveryBackfill")
		}
		equal(t, "deliveries created by all backfills", created, events)
		ds := h.listDeliveries(kapsel.DeliveryListParams{EndpointID: ep.ID})
		equal(t, "deliveries", len(ds), events)
		seen := map[kapsel.EventID]bool{}
		for _, d := range ds {
			if seen[d.EventID] {
				t.Fatalf("event %s has two deliveries to the endpoint", d.EventID)
			}
			seen[d.EventID] = true
		}
	})
}
