package storetest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

func testClaiming(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("DueOnly", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		now := h.delivery(ep, Base)
		later := h.delivery(ep, at(time.Hour)) // NextAttemptAt = the insert's Now
		h.claimOne(now.ID, 2*time.Hour, Base)
		if got := h.claim(10, time.Minute, at(time.Hour-time.Microsecond)); len(got) != 0 {
			t.Fatalf("claimed %v before they were due", ids(got))
		}
		h.claimOne(later.ID, time.Minute, at(time.Hour))
	})

	t.Run("ClaimedDelivery", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		ev := h.event(ep, Base)
		d := h.deliveryOf(ev.ID, ep.ID)
		c := h.claimOne(d.ID, 45*time.Second, at(time.Second))
		equal(t, "Status", c.Status, kapsel.DeliveryDelivering)
		equal(t, "Attempts", c.Attempts, 0)
		equal(t, "EventID", c.EventID, ev.ID)
		equal(t, "EndpointID", c.EndpointID, ep.ID)
		equal(t, "TenantID", c.TenantID, ep.TenantID)
		equal(t, "NextTrigger", c.NextTrigger, kapsel.TriggerScheduled)
		sameTime(t, "LeaseExpiresAt", c.LeaseExpiresAt, at(46*time.Second))
		if c.LeaseToken == "" {
			t.Fatal("claimed delivery has no lease token")
		}
		e := c.Event
		if !bytes.Equal(e.Body, ev.Body) || e.ContentType != ev.ContentType || e.Headers.Get("X-Github-Event") != "push" {
			t.Fatalf("claimed delivery's event lacks what delivery needs: body %q, content type %q, headers %v", e.Body, e.ContentType, e.Headers)
		}
		equal(t, "Event.TenantID", e.TenantID, ep.TenantID)
		sameTime(t, "Event.CreatedAt", e.CreatedAt, Base)
		got := h.get(d.ID)
		equal(t, "stored Status", got.Status, kapsel.DeliveryDelivering)
		equal(t, "stored LeaseToken", got.LeaseToken, c.LeaseToken)
		sameTime(t, "stored LeaseExpiresAt", got.LeaseExpiresAt, at(46*time.Second))
		summary(t, "claimed event", h.getEvent(ev.ID).Deliveries, kapsel.DeliverySummary{Total: 1, Delivering: 1})
		if again := h.claim(10, time.Minute, at(2*time.Second)); len(again) != 0 {
			t.Fatalf("a leased delivery was claimed again: %v", ids(again))
		}
	})

	// An event fanned out to many endpoints is claimed with one Event
	// shared by all its deliveries: its body is held once per claim, not
	// once per endpoint (a 10 MiB body to 50 endpoints is not 500 MiB).
	t.Run("FannedOutEventShared", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		const fan = 20
		for range fan {
			h.endpoint(ten)
		}
		body := randomBytes(64 << 10)
		evs := h.insertNew(Base, send(ten.ID, "", body), send(ten.ID, "", []byte("other")))
		claimed := h.claim(100, time.Minute, Base)
		equal(t, "claimed", len(claimed), 2*fan)
		shared := map[kapsel.EventID]*kapsel.Event{}
		for _, d := range claimed {
			first, ok := shared[d.EventID]
			if !ok {
				shared[d.EventID] = d.Event
				continue
			}
			if d.Event != first {
				t.Fatalf("deliveries %s and others of event %s came with distinct Events: the body is held once per delivery", d.ID, d.EventID)
			}
		}
		equal(t, "distinct Events", len(shared), 2)
		if e := shared[evs[0].ID]; e == nil || !bytes.Equal(e.Body, body) {
			t.Fatal("the fanned-out event's claimed body differs from the one inserted")
		}
		if shared[evs[0].ID] == shared[evs[1].ID] {
			t.Fatal("two events share one Event")
		}
	})

	t.Run("EarliestFirstAndLimit", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		d3 := h.delivery(ep, at(3*time.Minute))
		d1 := h.delivery(ep, at(1*time.Minute))
		d2 := h.delivery(ep, at(2*time.Minute))
		h.delivery(ep, at(4*time.Minute))
		got := ids(h.claim(2, time.Minute, at(5*time.Minute)))
		slices.Sort(got)
		want := []kapsel.DeliveryID{d1.ID, d2.ID}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("claimed %v with Limit 2, want the two earliest %v", got, want)
		}
		h.claimOne(d3.ID, time.Minute, at(3*time.Minute))
	})

	t.Run("EarliestOfMany", func(t *testing.T) {
		h := setup(t, newStore)
		const n, limit = 100, 10
		ds := h.claim(n, time.Minute, Base) // none yet
		equal(t, "claimed from an empty store", len(ds), 0)
		h.deliveries(h.endpoint(h.tenant()), n, Base)
		ds = h.claim(n, time.Minute, Base)
		equal(t, "claimed", len(ds), n)
		// Give them back due at shuffled times Base+1s … Base+100s.
		releases := make([]kapsel.DeliveryRelease, n)
		dueAt := map[kapsel.DeliveryID]time.Time{}
		for i, p := range rand.Perm(n) {
			d := ds[i]
			dueAt[d.ID] = at(time.Duration(p+1) * time.Second)
			releases[i] = kapsel.DeliveryRelease{DeliveryID: d.ID, LeaseToken: d.LeaseToken, NextAttemptAt: dueAt[d.ID]}
		}
		equal(t, "released", h.release(Base, releases...), n)
		got := h.claim(limit, time.Minute, at(time.Hour))
		equal(t, "claimed with a limit", len(got), limit)
		for _, d := range got {
			if due := dueAt[d.ID]; due.After(at(limit * time.Second)) {
				t.Fatalf("claimed a delivery due at %v; the %d earliest are due by %v", due, limit, at(limit*time.Second))
			}
		}
	})

	t.Run("SkipsUnavailableEndpoints", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		now := at(time.Hour)
		type row struct {
			name    string
			prepare func(ep *kapsel.Endpoint)
			claimed bool
		}
		rows := []row{
			{"active", func(*kapsel.Endpoint) {}, true},
			{"paused", func(ep *kapsel.Endpoint) { h.setState(ep, kapsel.EndpointPaused, "", Base) }, false},
			{"disabled", func(ep *kapsel.Endpoint) { h.setState(ep, kapsel.EndpointDisabled, kapsel.DisabledGone, Base) }, false},
			{"deleted", func(ep *kapsel.Endpoint) { h.deleteEndpoint(ep, Base) }, false},
			{"breaker open", func(ep *kapsel.Endpoint) { h.saveBreaker(ep.ID, kapsel.BreakerOpen, now.Add(time.Microsecond)) }, false},
			{"breaker open until now", func(ep *kapsel.Endpoint) { h.saveBreaker(ep.ID, kapsel.BreakerOpen, now) }, true},
			{"breaker half-open", func(ep *kapsel.Endpoint) { h.saveBreaker(ep.ID, kapsel.BreakerHalfOpen, at(time.Minute)) }, true},
			{"breaker closed", func(ep *kapsel.Endpoint) { h.saveBreaker(ep.ID, kapsel.BreakerClosed, time.Time{}) }, true},
			{"excluded", func(*kapsel.Endpoint) {}, false},
		}
		byDelivery := map[kapsel.DeliveryID]row{}
		var want, excluded []kapsel.DeliveryID
		var exclude []kapsel.EndpointID
		for _, r := range rows {
			ep := h.endpoint(ten)
			d := h.delivery(ep, Base)
			r.prepare(ep)
			byDelivery[d.ID] = r
			if r.claimed {
				want = append(want, d.ID)
			}
			if r.name == "excluded" {
				exclude = append(exclude, ep.ID)
				excluded = append(excluded, d.ID)
			}
		}
		got := ids(h.claim(100, time.Minute, now, exclude...))
		for _, id := range got {
			if !byDelivery[id].claimed {
				t.Errorf("claimed the delivery of the %q endpoint", byDelivery[id].name)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("claimed %v, want %v", got, want)
		}
		// Without the exclusion the excluded endpoint's delivery is claimable.
		if got := ids(h.claim(100, time.Minute, now)); !slices.Equal(got, excluded) {
			t.Fatalf("claim without exclusion = %v, want %v", got, excluded)
		}
	})

	t.Run("ResumedEndpointDelivers", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		h.setState(ep, kapsel.EndpointPaused, "", Base)
		d := h.delivery(ep, Base) // paused endpoints still get their deliveries
		if got := h.claim(10, time.Minute, at(time.Minute)); len(got) != 0 {
			t.Fatalf("claimed %v of a paused endpoint", ids(got))
		}
		h.setState(ep, kapsel.EndpointActive, "", at(time.Minute))
		h.claimOne(d.ID, time.Minute, at(2*time.Minute))
	})

	t.Run("LeaseExpiry", func(t *testing.T) {
		h := setup(t, newStore)
		d := h.delivery(h.endpoint(h.tenant()), Base)
		first := h.claimOne(d.ID, 30*time.Second, Base)
		if got := h.claim(10, time.Minute, at(30*time.Second-time.Microsecond)); len(got) != 0 {
			t.Fatalf("claimed %v before the lease expired", ids(got))
		}
		second := h.claimOne(d.ID, time.Minute, at(30*time.Second))
		if second.LeaseToken == "" || second.LeaseToken == first.LeaseToken {
			t.Fatalf("re-claim kept token %q (first %q), want a fresh one", second.LeaseToken, first.LeaseToken)
		}
		equal(t, "Status", second.Status, kapsel.DeliveryDelivering)
		equal(t, "Attempts", second.Attempts, 0)
		sameTime(t, "LeaseExpiresAt", second.LeaseExpiresAt, at(90*time.Second))
	})

	// Several claimers on deliveries fanned out from shared events: each
	// delivery is leased once, whichever claimer gets it.
	t.Run("ConcurrentClaimers", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		const events, endpoints, claimers, batch = 250, 4, 8, 25
		const total = events * endpoints
		for range endpoints {
			h.endpoint(ten)
		}
		in := make([]*kapsel.EventInsertParams, events)
		for i := range in {
			in[i] = send(ten.ID, "", []byte(fmt.Sprintf(`{"n":%d}`, i)))
		}
		for _, e := range h.insertNew(Base, in...) {
			equal(t, "deliveries of an event", e.Deliveries.Total, endpoints)
		}
		want := ids(h.listDeliveries(kapsel.DeliveryListParams{TenantID: ten.ID}))
		equal(t, "deliveries", len(want), total)
		var (
			mu     sync.Mutex
			got    = map[kapsel.DeliveryID]int{}
			tokens = map[string]bool{}
			wg     sync.WaitGroup
			errs   = make([]error, claimers)
		)
		for i := range claimers {
			wg.Go(func() {
				for range total { // bounded: each round claims at least one or stops
					ds, err := h.s.DeliveryClaim(h.ctx, &kapsel.DeliveryClaimParams{Limit: batch, LeaseDuration: time.Minute, Now: at(time.Second)})
					if err != nil {
						errs[i] = err
						return
					}
					if len(ds) == 0 {
						return
					}
					mu.Lock()
					for _, d := range ds {
						got[d.ID]++
						tokens[d.LeaseToken] = true
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			must(t, err, "concurrent DeliveryClaim")
		}
		for _, id := range want {
			if got[id] != 1 {
				t.Fatalf("delivery %s claimed %d times, want once", id, got[id])
			}
		}
		equal(t, "claimed deliveries", len(got), total)
		equal(t, "distinct lease tokens", len(tokens), total)
	})

	testBlockedLeases(t, newStore)
}
