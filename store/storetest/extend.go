package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// extend extends leases at now by lease and returns the store's answers,
// one per lease.
func (h *harness) extend(now time.Time, lease time.Duration, ls ...kapsel.DeliveryLease) []bool {
	h.t.Helper()
	ok, err := h.s.DeliveryExtend(h.ctx, &kapsel.DeliveryExtendParams{Leases: ls, LeaseDuration: lease, Now: now})
	must(h.t, err, "DeliveryExtend")
	if len(ok) != len(ls) {
		h.t.Fatalf("DeliveryExtend returned %d answers for %d leases", len(ok), len(ls))
	}
	return ok
}

// leaseOf names the lease of a claimed delivery.
func leaseOf(d *kapsel.Delivery) kapsel.DeliveryLease {
	return kapsel.DeliveryLease{DeliveryID: d.ID, LeaseToken: d.LeaseToken}
}

// answers requires DeliveryExtend's answers to be want.
func answers(t *testing.T, what string, got []bool, want ...bool) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: DeliveryExtend answered %v, want %v", what, got, want)
	}
}

// leasedUntil requires the stored delivery to be delivering under the
// claimed delivery c's token until expires, with nothing else of c changed.
func (h *harness) leasedUntil(c *kapsel.Delivery, expires time.Time) {
	h.t.Helper()
	got := h.get(c.ID)
	equal(h.t, "Status", got.Status, kapsel.DeliveryDelivering)
	equal(h.t, "LeaseToken", got.LeaseToken, c.LeaseToken)
	sameTime(h.t, "LeaseExpiresAt", got.LeaseExpiresAt, expires)
	equal(h.t, "Attempts", got.Attempts, c.Attempts)
	sameTime(h.t, "NextAttemptAt", got.NextAttemptAt, c.NextAttemptAt)
	equal(h.t, "NextTrigger", got.NextTrigger, c.NextTrigger)
	equal(h.t, "LastError", got.LastError, c.LastError)
}

// testExtend checks DeliveryExtend, the keep-alive of the leases of
// attempts in flight: the token is the fence, as for DeliveryComplete, and
// a claim respects an extended lease as it does a fresh one.
func testExtend(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("ExtendsOnlyMatchingTokens", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		ep, other := h.endpoint(ten), h.endpoint(ten)
		h.deliveries(ep, 3, Base)
		h.delivery(other, Base)
		cs := h.claim(10, 30*time.Second, Base)
		equal(t, "claimed", len(cs), 4)
		var mine []*kapsel.Delivery
		var theirs *kapsel.Delivery
		for _, c := range cs {
			if c.EndpointID == ep.ID {
				mine = append(mine, c)
			} else {
				theirs = c
			}
		}
		pending := h.delivery(ep, Base) // never claimed
		ok := h.extend(at(10*time.Second), 30*time.Second,
			leaseOf(mine[0]),
			kapsel.DeliveryLease{DeliveryID: mine[1].ID, LeaseToken: mine[2].LeaseToken}, // another delivery's token
			kapsel.DeliveryLease{DeliveryID: mine[2].ID},                                 // no token
			kapsel.DeliveryLease{DeliveryID: pending.ID, LeaseToken: mine[0].LeaseToken},
			kapsel.DeliveryLease{DeliveryID: "dlv_01J00000000000000000000000", LeaseToken: mine[0].LeaseToken},
			kapsel.DeliveryLease{DeliveryID: mine[2].ID, LeaseToken: "not a token"},
		)
		answers(t, "mixed leases", ok, true, false, false, false, false, false)
		h.leasedUntil(mine[0], at(40*time.Second))
		h.leasedUntil(mine[1], at(30*time.Second))
		h.leasedUntil(mine[2], at(30*time.Second))
		h.leasedUntil(theirs, at(30*time.Second))
		got := h.get(pending.ID)
		if got.Status != kapsel.DeliveryPending || got.LeaseToken != "" || !got.LeaseExpiresAt.IsZero() {
			t.Fatalf("a pending delivery named with a foreign token: status %s, lease %q until %v", got.Status, got.LeaseToken, got.LeaseExpiresAt)
		}
		summary(t, "event of the extended lease", h.getEvent(mine[0].EventID).Deliveries, kapsel.DeliverySummary{Total: 1, Delivering: 1})
	})

	t.Run("ClaimRespectsExtendedLease", func(t *testing.T) {
		h := setup(t, newStore)
		d := h.delivery(h.endpoint(h.tenant()), Base)
		c := h.claimOne(d.ID, 30*time.Second, Base)
		answers(t, "live lease", h.extend(at(20*time.Second), 30*time.Second, leaseOf(c)), true)
		h.leasedUntil(c, at(50*time.Second))
		// Past the lease as claimed, before the lease as extended.
		for _, now := range []time.Time{at(30 * time.Second), at(45 * time.Second), at(50*time.Second - time.Microsecond)} {
			if got := h.claim(10, time.Minute, now); len(got) != 0 {
				t.Fatalf("claim at %v took %v, leased until %v", now, ids(got), at(50*time.Second))
			}
		}
		re := h.claimOne(d.ID, time.Minute, at(50*time.Second))
		if re.LeaseToken == c.LeaseToken {
			t.Fatal("the re-claim kept the old lease token")
		}
	})

	t.Run("ExpiredNotReclaimedIsExtended", func(t *testing.T) {
		h := setup(t, newStore)
		d := h.delivery(h.endpoint(h.tenant()), Base)
		c := h.claimOne(d.ID, 30*time.Second, Base)
		// The lease ran out 15 s ago, but nobody took the delivery over:
		// the token still owns it, as it would to complete it.
		answers(t, "expired lease", h.extend(at(45*time.Second), 30*time.Second, leaseOf(c)), true)
		h.leasedUntil(c, at(75*time.Second))
		if got := h.claim(10, time.Minute, at(60*time.Second)); len(got) != 0 {
			t.Fatalf("claimed %v under a lease extended after it expired", ids(got))
		}
		errs := h.complete(at(70*time.Second), completion(c, 200, kapsel.DeliveryDelivered, at(70*time.Second)))
		must(t, errs[0], "completing under the extended lease")
	})

	t.Run("ReclaimedIsNotExtended", func(t *testing.T) {
		h := setup(t, newStore)
		d := h.delivery(h.endpoint(h.tenant()), Base)
		old := h.claimOne(d.ID, 30*time.Second, Base)
		re := h.claimOne(d.ID, 30*time.Second, at(30*time.Second))
		answers(t, "re-claimed lease", h.extend(at(31*time.Second), 5*time.Minute, leaseOf(old)), false)
		h.leasedUntil(re, at(60*time.Second))
		answers(t, "the new owner's lease", h.extend(at(31*time.Second), 30*time.Second, leaseOf(re)), true)
		h.leasedUntil(re, at(61*time.Second))
		errs := h.complete(at(32*time.Second), completion(old, 200, kapsel.DeliveryDelivered, at(32*time.Second)))
		mustIs(t, errs[0], kapsel.ErrLeaseLost, "completing with the stale token")
	})

	t.Run("CompletedOrReleasedIsNotExtended", func(t *testing.T) {
		h := setup(t, newStore)
		h.deliveries(h.endpoint(h.tenant()), 2, Base)
		cs := h.claim(10, 30*time.Second, Base)
		equal(t, "claimed", len(cs), 2)
		done, rel := cs[0], cs[1]
		must(t, h.complete(at(time.Second), completion(done, 200, kapsel.DeliveryDelivered, at(time.Second)))[0], "DeliveryComplete")
		equal(t, "released", h.release(at(time.Second), kapsel.DeliveryRelease{
			DeliveryID: rel.ID, LeaseToken: rel.LeaseToken, NextAttemptAt: at(time.Hour),
		}), 1)
		answers(t, "completed and released", h.extend(at(2*time.Second), 30*time.Second, leaseOf(done), leaseOf(rel)), false, false)
		got := h.get(done.ID)
		if got.Status != kapsel.DeliveryDelivered || got.LeaseToken != "" || !got.LeaseExpiresAt.IsZero() {
			t.Fatalf("completed delivery after an extend: status %s, lease %q until %v", got.Status, got.LeaseToken, got.LeaseExpiresAt)
		}
		got = h.get(rel.ID)
		if got.Status != kapsel.DeliveryPending || got.LeaseToken != "" || !got.LeaseExpiresAt.IsZero() {
			t.Fatalf("released delivery after an extend: status %s, lease %q until %v", got.Status, got.LeaseToken, got.LeaseExpiresAt)
		}
		sameTime(t, "released NextAttemptAt", got.NextAttemptAt, at(time.Hour))
	})

	t.Run("EndpointDeletedInFlight", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		d := h.delivery(ep, Base)
		c := h.claimOne(d.ID, 30*time.Second, Base)
		h.deleteEndpoint(ep, at(time.Second))
		// Failed by the deletion: nothing re-claims it, so it needs no
		// lease, and its token still records the attempt in flight.
		answers(t, "delivery ended by its endpoint's deletion", h.extend(at(2*time.Second), 30*time.Second, leaseOf(c)), false)
		got := h.get(d.ID)
		equal(t, "Status", got.Status, kapsel.DeliveryFailed)
		equal(t, "LastError", got.LastError, kapsel.LastErrorEndpointDeleted)
		errs := h.complete(at(3*time.Second), completion(c, 200, kapsel.DeliveryDelivered, at(3*time.Second)))
		must(t, errs[0], "completing the attempt in flight after an extend")
		equal(t, "Status after completion", h.get(d.ID).Status, kapsel.DeliveryDelivered)
	})

	t.Run("BlockedEndpointInFlight", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		d := h.delivery(ep, Base)
		c := h.claimOne(d.ID, 30*time.Second, Base)
		h.setState(ep, kapsel.EndpointPaused, "", at(time.Second))
		// The attempt in flight keeps its lease while the endpoint is paused.
		answers(t, "lease of a paused endpoint", h.extend(at(20*time.Second), 30*time.Second, leaseOf(c)), true)
		h.leasedUntil(c, at(50*time.Second))
		if got := h.claim(10, time.Minute, at(40*time.Second)); len(got) != 0 {
			t.Fatalf("claimed %v", ids(got))
		}
		equal(t, "Status under the extended lease", h.get(d.ID).Status, kapsel.DeliveryDelivering)
		// Once it ran out, a claim ends it (I3); the token no longer owns it.
		h.claim(10, time.Minute, at(50*time.Second))
		got := h.get(d.ID)
		if got.Status != kapsel.DeliveryPending || got.LeaseToken != "" {
			t.Fatalf("expired lease of a paused endpoint after a claim: status %s, lease %q", got.Status, got.LeaseToken)
		}
		answers(t, "lease ended by a claim", h.extend(at(51*time.Second), 30*time.Second, leaseOf(c)), false)
		equal(t, "Status", h.get(d.ID).Status, kapsel.DeliveryPending)
	})

	t.Run("SameLeaseTwice", func(t *testing.T) {
		h := setup(t, newStore)
		d := h.delivery(h.endpoint(h.tenant()), Base)
		c := h.claimOne(d.ID, 30*time.Second, Base)
		stale := kapsel.DeliveryLease{DeliveryID: c.ID, LeaseToken: "00000000-0000-4000-8000-000000000000"}
		answers(t, "one lease named twice, and a stale token of it", h.extend(at(time.Second), 30*time.Second, leaseOf(c), stale, leaseOf(c)),
			true, false, true)
		h.leasedUntil(c, at(31*time.Second))
	})

	t.Run("ManyInOneCall", func(t *testing.T) {
		h := setup(t, newStore)
		const n = 150
		h.deliveries(h.endpoint(h.tenant()), n, Base)
		cs := h.claim(n, 30*time.Second, Base)
		equal(t, "claimed", len(cs), n)
		ls := make([]kapsel.DeliveryLease, n)
		want := make([]bool, n)
		for i, c := range cs {
			ls[i] = leaseOf(c)
			want[i] = true
		}
		answers(t, fmt.Sprintf("%d live leases", n), h.extend(at(25*time.Second), 30*time.Second, ls...), want...)
		for _, c := range cs {
			sameTime(t, "LeaseExpiresAt", h.get(c.ID).LeaseExpiresAt, at(55*time.Second))
		}
		if got := h.claim(n, time.Minute, at(40*time.Second)); len(got) != 0 {
			t.Fatalf("claimed %d deliveries under extended leases", len(got))
		}
	})

	// Keep-alives and completions of the same leases run at the same time
	// on every node: the keep-alive renews every lease in flight while the
	// completer records the attempts that ended. Each names its leases in
	// its own order; neither may fail for the other (on Postgres, two
	// statements locking the same rows in opposite orders deadlock, and
	// the loser's batch waits out deadlock_timeout before it is retried).
	t.Run("ConcurrentWithCompletions", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		const rounds, n = 12, 60
		for round := range rounds {
			now := at(time.Duration(round) * time.Minute)
			h.deliveries(ep, n, now)
			cs := h.claim(n, 30*time.Second, now)
			equal(t, "claimed", len(cs), n)
			slices.SortFunc(cs, func(a, b *kapsel.Delivery) int { return strings.Compare(string(a.ID), string(b.ID)) })
			ls := make([]kapsel.DeliveryLease, n)
			for i, c := range cs {
				ls[n-1-i] = leaseOf(c) // the keep-alive names them last to first
			}
			done := make([]kapsel.DeliveryCompletion, n)
			for i, c := range cs {
				done[i] = completion(c, 200, kapsel.DeliveryDelivered, now.Add(time.Second))
			}
			err := concurrently(
				func() error {
					_, err := h.s.DeliveryExtend(h.ctx, &kapsel.DeliveryExtendParams{Leases: ls, LeaseDuration: 30 * time.Second, Now: now.Add(time.Second)})
					return err
				},
				completeAll(h, now.Add(time.Second), done),
			)
			if err != nil {
				t.Fatalf("round %d: a keep-alive and a completion of the same %d leases: %v", round, n, err)
			}
			for _, c := range cs {
				equal(t, "Status", h.get(c.ID).Status, kapsel.DeliveryDelivered)
			}
		}
	})

	t.Run("EmptyAndInvalid", func(t *testing.T) {
		h := setup(t, newStore)
		answers(t, "no leases", h.extend(Base, 30*time.Second))
		d := h.delivery(h.endpoint(h.tenant()), Base)
		c := h.claimOne(d.ID, 30*time.Second, Base)
		for _, lease := range []time.Duration{0, -time.Second} {
			_, err := h.s.DeliveryExtend(h.ctx, &kapsel.DeliveryExtendParams{
				Leases: []kapsel.DeliveryLease{leaseOf(c)}, LeaseDuration: lease, Now: at(time.Second),
			})
			mustIs(t, err, kapsel.ErrInvalid, fmt.Sprintf("DeliveryExtend with LeaseDuration %v", lease))
		}
		h.leasedUntil(c, at(30*time.Second))
	})
}
