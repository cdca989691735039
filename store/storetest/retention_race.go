package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// retentionRaceRounds bounds RetentionRaces: each round races one
// retention pass of a tenant with requeues and a backfill of its events.
const retentionRaceRounds = 25

// testRetentionRaces races a retention pass (erase, then delete) of a
// tenant's expired events with DeliveryRetry, DeliveryRetryEvent,
// DeliveryReplay and DeliveryBackfill of the same events. Whatever the
// interleaving, what a requeue or backfill answered must hold afterwards:
// a delivery answered as requeued or created still exists, pending, its
// event still exists; no delivery is left without its event (an orphan);
// a body still there once a requeue had answered is not erased under the
// pending delivery afterwards. (A requeue that comes after the erasure is
// accepted; the dispatcher fails it without a request, docs/storage.md.)
func testRetentionRaces(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	day := 24 * time.Hour
	h := setup(t, newStore)
	const perGroup = 40 // events retried one by one, per event, replayed, backfilled
	for round := range retentionRaceRounds {
		ten := h.tenant()
		ep := h.endpoint(ten)
		// Four groups of events, told apart by creation time.
		groupAt := func(g int) time.Time { return at(time.Duration(g) * time.Hour) }
		var groups [4][]*kapsel.Event
		for g := range groups {
			in := make([]*kapsel.EventInsertParams, perGroup)
			for i := range in {
				in[i] = send(ten.ID, "", []byte(fmt.Sprintf(`{"r":%d,"g":%d,"i":%d}`, round, g, i)))
			}
			groups[g] = h.insertNew(groupAt(g), in...)
		}
		// Deliver them all (earlier rounds' requeued deliveries are due only
		// at 2 days, so not claimed here).
		var cs []*kapsel.Delivery
		for _, c := range h.claim(kapsel.MaxPageLimit, time.Minute, at(5*time.Hour)) {
			if c.TenantID == ten.ID {
				cs = append(cs, c)
			}
		}
		equal(t, "claimed", len(cs), 4*perGroup)
		comps := make([]kapsel.DeliveryCompletion, len(cs))
		for i, c := range cs {
			comps[i] = completion(c, 200, kapsel.DeliveryDelivered, at(5*time.Hour))
		}
		for _, err := range h.complete(at(5*time.Hour), comps...) {
			must(t, err, "completion")
		}
		later := h.endpoint(ten) // backfilled with group 3
		now := at(2 * day)

		var (
			wg        sync.WaitGroup
			start     = make(chan struct{})
			retried   = map[kapsel.DeliveryID]bool{}
			perEvent  = map[kapsel.EventID]int{}
			replayed  int
			backfill  int
			errs      [5]error
			retryDone sync.Mutex
			// keptAfter holds the events whose body was still there once a
			// requeue or backfill of them had answered: from then on they
			// have an unfinished delivery, so the body must stay.
			keptAfter = map[kapsel.EventID]bool{}
		)
		noteKept := func(evs ...*kapsel.Event) {
			for _, e := range evs {
				got, err := h.s.EventGet(h.ctx, &kapsel.EventGetParams{ID: e.ID})
				if err == nil && got.BodyErasure == kapsel.BodyKept {
					retryDone.Lock()
					keptAfter[e.ID] = true
					retryDone.Unlock()
				}
			}
		}
		wg.Go(func() { // retention: one pass of the tenant
			<-start
			p := &kapsel.RetentionSweepParams{TenantID: ten.ID, Before: at(day), Now: now}
			if round%2 == 0 { // odd rounds race the removal alone
				if _, err := h.s.RetentionEraseBodies(h.ctx, p); err != nil {
					errs[0] = err
					return
				}
			}
			_, errs[0] = h.s.RetentionDeleteEvents(h.ctx, p)
		})
		wg.Go(func() { // group 0: one delivery at a time
			<-start
			for _, e := range groups[0] {
				d, err := h.s.DeliveryRetry(h.ctx, &kapsel.DeliveryRetryParams{ID: deliveryIDOf(cs, e.ID), Now: now})
				if errors.Is(err, kapsel.ErrNotFound) {
					continue // removed first
				}
				if err != nil {
					errs[1] = err
					return
				}
				retryDone.Lock()
				retried[d.ID] = true
				retryDone.Unlock()
				noteKept(e)
			}
		})
		wg.Go(func() { // group 1: per event
			<-start
			for _, e := range groups[1] {
				n, err := h.s.DeliveryRetryEvent(h.ctx, &kapsel.DeliveryRetryEventParams{EventID: e.ID, Now: now})
				if errors.Is(err, kapsel.ErrNotFound) {
					continue
				}
				if err != nil {
					errs[2] = err
					return
				}
				retryDone.Lock()
				perEvent[e.ID] = n
				retryDone.Unlock()
				if n > 0 {
					noteKept(e)
				}
			}
		})
		wg.Go(func() { // group 2: replay of the endpoint
			<-start
			replayed, errs[3] = h.s.DeliveryReplay(h.ctx, &kapsel.DeliveryReplayParams{EndpointID: ep.ID,
				Status: kapsel.DeliveryDelivered, Since: groupAt(2), Until: groupAt(3), Now: now})
			if errs[3] == nil && replayed > 0 {
				noteKept(groups[2]...)
			}
		})
		wg.Go(func() { // group 3: backfill of the later endpoint
			<-start
			res, err := h.s.DeliveryBackfill(h.ctx, &kapsel.DeliveryBackfillParams{TenantID: ten.ID, EndpointID: later.ID,
				Since: groupAt(3), Until: groupAt(4), Now: now})
			if err == nil {
				backfill = res.Created
				if backfill > 0 {
					noteKept(groups[3]...)
				}
			}
			errs[4] = err
		})
		close(start)
		wg.Wait()
		for i, err := range errs {
			must(t, err, fmt.Sprintf("racer %d of round %d", i, round))
		}

		// What was answered holds.
		exists := func(id kapsel.EventID) *kapsel.Event {
			e, err := h.s.EventGet(h.ctx, &kapsel.EventGetParams{ID: id})
			if errors.Is(err, kapsel.ErrNotFound) {
				return nil
			}
			must(t, err, "EventGet")
			return e
		}
		all := h.listDeliveries(kapsel.DeliveryListParams{TenantID: ten.ID})
		pending := map[kapsel.EndpointID]int{}
		for _, d := range all {
			e := exists(d.EventID)
			if e == nil {
				t.Fatalf("round %d: delivery %s (%s) has no event %s: an orphan", round, d.ID, d.Status, d.EventID)
			}
			if d.Status == kapsel.DeliveryPending {
				pending[d.EndpointID]++
				if keptAfter[e.ID] && e.BodyErasure != kapsel.BodyKept {
					t.Fatalf("round %d: the body of event %s was %s under its pending delivery %s, after the requeue had answered",
						round, e.ID, e.BodyErasure, d.ID)
				}
			}
		}
		for id := range retried {
			d, err := h.s.DeliveryGet(h.ctx, &kapsel.DeliveryGetParams{ID: id})
			must(t, err, fmt.Sprintf("round %d: DeliveryGet of delivery %s answered as retried", round, id))
			equal(t, "a retried delivery's status", d.Status, kapsel.DeliveryPending)
		}
		for id, n := range perEvent {
			if n > 0 && exists(id) == nil {
				t.Fatalf("round %d: event %s was removed after DeliveryRetryEvent answered %d", round, id, n)
			}
		}
		equal(t, fmt.Sprintf("round %d: pending deliveries to the endpoint (retried + per event + replayed)", round),
			pending[ep.ID], len(retried)+sum(perEvent)+replayed)
		equal(t, fmt.Sprintf("round %d: pending deliveries to the backfilled endpoint", round), pending[later.ID], backfill)
	}
}

// deliveryIDOf returns the id of the delivery of ev among ds.
func deliveryIDOf(ds []*kapsel.Delivery, ev kapsel.EventID) kapsel.DeliveryID {
	for _, d := range ds {
		if d.EventID == ev {
			return d.ID
		}
	}
	return ""
}

func sum(m map[kapsel.EventID]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
