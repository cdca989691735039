package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// testLockOrder runs writers that change the same deliveries at the same
// time and requires both to succeed. On Postgres each such pair locks
// the rows it shares in one order (the endpoint first, then deliveries
// in id order); two statements that lock them in different orders
// deadlock, and the loser fails after deadlock_timeout (1 s) — a stalled
// completion, or an admin call that fails.
func testLockOrder(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	// An endpoint deleted while a completer records the attempts in
	// flight to it. The deliveries are made due latest first, so the
	// claim rewrites them in the reverse of id order: a statement that
	// locks them in the order it finds them on disk goes the other way
	// from one that locks them in id order.
	t.Run("EndpointDeleteWithCompletions", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		const rounds, n = 12, 100
		for round := range rounds {
			ep := h.endpoint(ten)
			start := at(time.Duration(round) * time.Hour)
			claimed := h.claimedLatestFirst(ep, n, start)
			now := start.Add(time.Second)
			comps := make([]kapsel.DeliveryCompletion, n)
			for i, c := range claimed {
				comps[i] = completion(c, 200, kapsel.DeliveryDelivered, now)
			}
			err := concurrently(
				func() error { return h.s.EndpointDelete(h.ctx, &kapsel.EndpointDeleteParams{ID: ep.ID, Now: now}) },
				completeAll(h, now, comps),
			)
			if err != nil {
				t.Fatalf("round %d: EndpointDelete and the completion of its %d attempts in flight: %v", round, n, err)
			}
			for _, c := range claimed {
				equal(t, "Status (an attempt in flight is recorded)", h.get(c.ID).Status, kapsel.DeliveryDelivered)
			}
		}
	})

	// An endpoint deleted while its breaker is reset, which gives the
	// deliveries held for the breaker back to the claim: both change the
	// same held deliveries. They are made due latest first, so the claim
	// that holds them rewrites them in the reverse of id order, as in
	// EndpointDeleteWithCompletions.
	t.Run("EndpointDeleteWithBreakerReset", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		const rounds, n = 12, 100
		for round := range rounds {
			ep := h.endpoint(ten)
			start := at(time.Duration(round) * time.Hour)
			// Attempted once, last to first, and due again a minute later.
			claimed := h.claimedLatestFirst(ep, n, start)
			slices.SortFunc(claimed, func(a, b *kapsel.Delivery) int { return strings.Compare(string(b.ID), string(a.ID)) })
			comps := make([]kapsel.DeliveryCompletion, n)
			for i, c := range claimed {
				comps[i] = completion(c, 500, kapsel.DeliveryPending, start)
				comps[i].NextAttemptAt = start.Add(time.Minute)
			}
			for _, err := range h.complete(start, comps...) {
				must(t, err, "completion")
			}
			later := start.Add(2 * time.Minute)
			h.saveBreaker(ep.ID, kapsel.BreakerOpen, later.Add(time.Hour))
			equal(t, "claimed while the breaker is open", len(h.claim(kapsel.MaxPageLimit, time.Minute, later)), 0)
			now := later.Add(time.Second)
			err := concurrently(
				func() error { return h.s.EndpointDelete(h.ctx, &kapsel.EndpointDeleteParams{ID: ep.ID, Now: now}) },
				func() error { return h.s.BreakerDelete(h.ctx, &kapsel.BreakerDeleteParams{EndpointID: ep.ID}) },
			)
			if err != nil {
				t.Fatalf("round %d: EndpointDelete and BreakerDelete of an endpoint with %d held deliveries: %v", round, n, err)
			}
			for _, d := range h.listDeliveries(kapsel.DeliveryListParams{EndpointID: ep.ID}) {
				equal(t, "Status", d.Status, kapsel.DeliveryFailed)
			}
		}
	})

	// A tenant's bodies expunged while a completer records the attempts
	// in flight to their events. The second endpoint's deliveries were
	// backfilled, so their ids are later than those of every first
	// delivery, while the expunge reaches each event's deliveries
	// together.
	t.Run("ExpungeWithCompletions", func(t *testing.T) {
		h := setup(t, newStore)
		// The harness's store (wrapped by setup when it lacks retention),
		// not a second newStore(t): on Postgres that would create a whole
		// schema for a type assertion.
		if _, ok := h.s.(withoutRetention); ok {
			t.Skip("the store does not implement kapsel.RetentionStore (optional)")
		}
		const rounds, n = 12, 50
		for round := range rounds {
			ten := h.tenant()
			// The backfilled endpoint sorts before the first (made earlier),
			// so that the expunge reaches a backfilled delivery first; it
			// subscribes to the events only after they are inserted.
			second := h.subscribed(ten, kapsel.Subscription{EventTypes: []string{"none.yet"}})
			first := h.endpoint(ten)
			for range 64 {
				if first.ID > second.ID {
					break
				}
				h.deleteEndpoint(first, Base) // made in the same millisecond, and sorts before
				first = h.endpoint(ten)
			}
			if first.ID < second.ID {
				t.Fatal("64 endpoints made after another all sort before it")
			}
			start := at(time.Duration(round) * time.Hour)
			in := make([]*kapsel.EventInsertParams, n)
			for i := range in {
				in[i] = send(ten.ID, "", []byte(fmt.Sprint("event ", i)))
			}
			h.insertNew(start, in...)
			_, err := h.s.EndpointUpdate(h.ctx, &kapsel.EndpointUpdateParams{ID: second.ID, TenantID: ten.ID, Now: start,
				Update: func(e *kapsel.Endpoint) error { e.Subscription = kapsel.Subscription{}; return nil }})
			must(t, err, "EndpointUpdate")
			later := start.Add(time.Second)
			equal(t, "backfilled", h.backfill(kapsel.DeliveryBackfillParams{TenantID: ten.ID, EndpointID: second.ID, Now: later}).Created, n)
			claimed := h.claim(kapsel.MaxPageLimit, time.Minute, later)
			equal(t, "claimed", len(claimed), 2*n)
			now := later.Add(time.Second)
			comps := make([]kapsel.DeliveryCompletion, len(claimed))
			for i, c := range claimed {
				comps[i] = completion(c, 200, kapsel.DeliveryDelivered, now)
			}
			err = concurrently(
				func() error {
					_, err := h.s.EventExpunge(h.ctx, &kapsel.EventExpungeParams{TenantID: ten.ID, Limit: 2 * n, Now: now})
					return err
				},
				completeAll(h, now, comps),
			)
			if err != nil {
				t.Fatalf("round %d: an expunge and the completion of %d attempts in flight to its events: %v", round, 2*n, err)
			}
			for _, c := range claimed {
				equal(t, "Status (an attempt in flight is recorded)", h.get(c.ID).Status, kapsel.DeliveryDelivered)
			}
		}
	})
}

// claimedLatestFirst makes n deliveries to ep, due latest first (the last
// one made is due first, so the claim rewrites them in the reverse of id
// order), and claims them all at start for a minute.
func (h *harness) claimedLatestFirst(ep *kapsel.Endpoint, n int, start time.Time) []*kapsel.Delivery {
	h.t.Helper()
	for i := range n {
		h.delivery(ep, start.Add(-time.Duration(i)*time.Second))
	}
	claimed := h.claim(kapsel.MaxPageLimit, time.Minute, start)
	equal(h.t, "claimed", len(claimed), n)
	return claimed
}

// completeAll returns a call of DeliveryComplete with cs whose error is
// the call's or any completion's.
func completeAll(h *harness, now time.Time, cs []kapsel.DeliveryCompletion) func() error {
	return func() error {
		errs, err := h.s.DeliveryComplete(h.ctx, &kapsel.DeliveryCompleteParams{Completions: cs, Now: now})
		if err == nil {
			err = errors.Join(errs...)
		}
		return err
	}
}

// concurrently runs the calls at the same time and returns their errors
// joined.
func concurrently(calls ...func() error) error {
	start := make(chan struct{})
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Go(func() { <-start; errs[i] = call() })
	}
	close(start)
	wg.Wait()
	return errors.Join(errs...)
}
