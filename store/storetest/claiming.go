package storetest

import (
	"bytes"
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
		now := h.event(ep, Base)
		later := h.event(ep, at(time.Hour)) // NextAttemptAt = CreatedAt
		h.claimOne(now.ID, 2*time.Hour, Base)
		if got := h.claim(10, time.Minute, at(time.Hour-time.Microsecond)); len(got) != 0 {
			t.Fatalf("claimed %v before they were due", ids(got))
		}
		h.claimOne(later.ID, time.Minute, at(time.Hour))
	})

	t.Run("ClaimedEvent", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		ev := h.event(ep, Base)
		c := h.claimOne(ev.ID, 45*time.Second, at(time.Second))
		equal(t, "Status", c.Status, kapsel.EventDelivering)
		equal(t, "Attempts", c.Attempts, 0)
		equal(t, "EndpointID", c.EndpointID, ep.ID)
		equal(t, "TenantID", c.TenantID, ep.TenantID)
		equal(t, "NextTrigger", c.NextTrigger, kapsel.TriggerScheduled)
		sameTime(t, "LeaseExpiresAt", c.LeaseExpiresAt, at(46*time.Second))
		if c.LeaseToken == "" {
			t.Fatal("claimed event has no lease token")
		}
		if !bytes.Equal(c.Body, ev.Body) || c.ContentType != ev.ContentType || c.Headers.Get("X-Github-Event") != "push" {
			t.Fatalf("claimed event lacks what delivery needs: body %q, content type %q, headers %v", c.Body, c.ContentType, c.Headers)
		}
		got := h.get(ev.ID)
		equal(t, "stored Status", got.Status, kapsel.EventDelivering)
		equal(t, "stored LeaseToken", got.LeaseToken, c.LeaseToken)
		if again := h.claim(10, time.Minute, at(2*time.Second)); len(again) != 0 {
			t.Fatalf("a leased event was claimed again: %v", ids(again))
		}
	})

	t.Run("EarliestFirstAndLimit", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		e3 := h.event(ep, at(3*time.Minute))
		e1 := h.event(ep, at(1*time.Minute))
		e2 := h.event(ep, at(2*time.Minute))
		h.event(ep, at(4*time.Minute))
		got := ids(h.claim(2, time.Minute, at(5*time.Minute)))
		slices.Sort(got)
		want := []kapsel.EventID{e1.ID, e2.ID}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("claimed %v with Limit 2, want the two earliest %v", got, want)
		}
		h.claimOne(e3.ID, time.Minute, at(3*time.Minute))
	})

	t.Run("EarliestOfMany", func(t *testing.T) {
		h := setup(t, newStore)
		const n, limit = 100, 10
		evs := h.claim(n, time.Minute, Base) // none yet
		equal(t, "claimed from an empty store", len(evs), 0)
		h.events(h.endpoint(h.tenant()), n, Base)
		evs = h.claim(n, time.Minute, Base)
		equal(t, "claimed", len(evs), n)
		// Give them back due at shuffled times Base+1s … Base+100s.
		releases := make([]kapsel.EventRelease, n)
		dueAt := map[kapsel.EventID]time.Time{}
		for i, p := range rand.Perm(n) {
			e := evs[i]
			dueAt[e.ID] = at(time.Duration(p+1) * time.Second)
			releases[i] = kapsel.EventRelease{EventID: e.ID, LeaseToken: e.LeaseToken, NextAttemptAt: dueAt[e.ID]}
		}
		released, err := h.s.EventRelease(h.ctx, &kapsel.EventReleaseParams{Releases: releases, Now: Base})
		must(t, err, "EventRelease")
		equal(t, "released", released, n)
		got := h.claim(limit, time.Minute, at(time.Hour))
		equal(t, "claimed with a limit", len(got), limit)
		for _, e := range got {
			if d := dueAt[e.ID]; d.After(at(limit * time.Second)) {
				t.Fatalf("claimed an event due at %v; the %d earliest are due by %v", d, limit, at(limit*time.Second))
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
			{"deleted", func(ep *kapsel.Endpoint) {
				must(t, h.s.EndpointDelete(h.ctx, &kapsel.EndpointDeleteParams{ID: ep.ID, Now: Base}), "EndpointDelete")
			}, false},
			{"breaker open", func(ep *kapsel.Endpoint) { h.saveBreaker(ep.ID, kapsel.BreakerOpen, now.Add(time.Microsecond)) }, false},
			{"breaker open until now", func(ep *kapsel.Endpoint) { h.saveBreaker(ep.ID, kapsel.BreakerOpen, now) }, true},
			{"breaker half-open", func(ep *kapsel.Endpoint) { h.saveBreaker(ep.ID, kapsel.BreakerHalfOpen, at(time.Minute)) }, true},
			{"breaker closed", func(ep *kapsel.Endpoint) { h.saveBreaker(ep.ID, kapsel.BreakerClosed, time.Time{}) }, true},
			{"excluded", func(*kapsel.Endpoint) {}, false},
		}
		byEvent := map[kapsel.EventID]row{}
		var want, excluded []kapsel.EventID
		var exclude []kapsel.EndpointID
		for _, r := range rows {
			ep := h.endpoint(ten)
			ev := h.event(ep, Base)
			r.prepare(ep)
			byEvent[ev.ID] = r
			if r.claimed {
				want = append(want, ev.ID)
			}
			if r.name == "excluded" {
				exclude = append(exclude, ep.ID)
				excluded = append(excluded, ev.ID)
			}
		}
		got := ids(h.claim(100, time.Minute, now, exclude...))
		for _, id := range got {
			if !byEvent[id].claimed {
				t.Errorf("claimed the event of the %q endpoint", byEvent[id].name)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("claimed %v, want %v", got, want)
		}
		// Without the exclusion the excluded endpoint's event is claimable.
		if got := ids(h.claim(100, time.Minute, now)); !slices.Equal(got, excluded) {
			t.Fatalf("claim without exclusion = %v, want %v", got, excluded)
		}
	})

	t.Run("ResumedEndpointDelivers", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		h.setState(ep, kapsel.EndpointPaused, "", Base)
		ev := h.event(ep, Base) // paused endpoints still accept
		if got := h.claim(10, time.Minute, at(time.Minute)); len(got) != 0 {
			t.Fatalf("claimed %v of a paused endpoint", ids(got))
		}
		h.setState(ep, kapsel.EndpointActive, "", at(time.Minute))
		h.claimOne(ev.ID, time.Minute, at(2*time.Minute))
	})

	t.Run("LeaseExpiry", func(t *testing.T) {
		h := setup(t, newStore)
		ev := h.event(h.endpoint(h.tenant()), Base)
		first := h.claimOne(ev.ID, 30*time.Second, Base)
		if got := h.claim(10, time.Minute, at(30*time.Second-time.Microsecond)); len(got) != 0 {
			t.Fatalf("claimed %v before the lease expired", ids(got))
		}
		second := h.claimOne(ev.ID, time.Minute, at(30*time.Second))
		if second.LeaseToken == "" || second.LeaseToken == first.LeaseToken {
			t.Fatalf("re-claim kept token %q (first %q), want a fresh one", second.LeaseToken, first.LeaseToken)
		}
		equal(t, "Status", second.Status, kapsel.EventDelivering)
		equal(t, "Attempts", second.Attempts, 0)
		sameTime(t, "LeaseExpiresAt", second.LeaseExpiresAt, at(90*time.Second))
	})

	t.Run("ConcurrentClaimers", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		const total, claimers, batch = 1000, 8, 25
		var want []kapsel.EventID
		for range 4 {
			for _, e := range h.events(h.endpoint(ten), total/4, Base) {
				want = append(want, e.ID)
			}
		}
		var (
			mu     sync.Mutex
			got    = map[kapsel.EventID]int{}
			tokens = map[string]bool{}
			wg     sync.WaitGroup
			errs   = make([]error, claimers)
		)
		for i := range claimers {
			wg.Go(func() {
				for range total { // bounded: each round claims at least one or stops
					evs, err := h.s.EventClaim(h.ctx, &kapsel.EventClaimParams{Limit: batch, LeaseDuration: time.Minute, Now: at(time.Second)})
					if err != nil {
						errs[i] = err
						return
					}
					if len(evs) == 0 {
						return
					}
					mu.Lock()
					for _, e := range evs {
						got[e.ID]++
						tokens[e.LeaseToken] = true
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			must(t, err, "concurrent EventClaim")
		}
		for _, id := range want {
			if got[id] != 1 {
				t.Fatalf("event %s claimed %d times, want once", id, got[id])
			}
		}
		equal(t, "claimed events", len(got), total)
		equal(t, "distinct lease tokens", len(tokens), total)
	})

	testBlockedLeases(t, newStore)
}
