package storetest

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// testBlockedLeases checks that a delivery whose lease ran out while its
// endpoint could not be claimed does not stay delivering (I3 of
// docs/guarantees.md): a claim gives it back as pending (lease cleared,
// nothing else changed) when the endpoint is paused, disabled or has its
// breaker open. (A deleted endpoint's deliveries are ended by EndpointDelete
// itself: see testEndpointDelete.)
func testBlockedLeases(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	type row struct {
		name    string
		block   func(h *harness, ep *kapsel.Endpoint, now time.Time)
		unblock func(h *harness, ep *kapsel.Endpoint, now time.Time)
	}
	rows := []row{
		{"Paused",
			func(h *harness, ep *kapsel.Endpoint, now time.Time) { h.setState(ep, kapsel.EndpointPaused, "", now) },
			func(h *harness, ep *kapsel.Endpoint, now time.Time) { h.setState(ep, kapsel.EndpointActive, "", now) }},
		{"Disabled",
			func(h *harness, ep *kapsel.Endpoint, now time.Time) {
				h.setState(ep, kapsel.EndpointDisabled, kapsel.DisabledFailing, now)
			},
			func(h *harness, ep *kapsel.Endpoint, now time.Time) { h.setState(ep, kapsel.EndpointActive, "", now) }},
		{"BreakerOpen",
			func(h *harness, ep *kapsel.Endpoint, now time.Time) {
				h.saveBreaker(ep.ID, kapsel.BreakerOpen, now.Add(24*time.Hour))
			},
			func(h *harness, ep *kapsel.Endpoint, now time.Time) {
				must(h.t, h.s.BreakerDelete(h.ctx, &kapsel.BreakerDeleteParams{EndpointID: ep.ID}), "BreakerDelete")
			}},
	}
	for _, r := range rows {
		t.Run("ExpiredLeaseOf"+r.name, func(t *testing.T) {
			h := setup(t, newStore)
			ep := h.endpoint(h.tenant())
			d := h.delivery(ep, Base)
			claimed := h.claimOne(d.ID, 30*time.Second, at(time.Second))
			r.block(h, ep, at(2*time.Second))
			// The lease runs out while the endpoint is blocked; any claim
			// after that — here one that finds nothing to lease — must end
			// the delivering state.
			if got := h.claim(10, time.Minute, at(time.Minute)); len(got) != 0 {
				t.Fatalf("claimed %v of a blocked endpoint", ids(got))
			}
			got := h.get(d.ID)
			equal(t, "LeaseToken", got.LeaseToken, "")
			sameTime(t, "LeaseExpiresAt", got.LeaseExpiresAt, time.Time{})
			equal(t, "Attempts", got.Attempts, 0)
			equal(t, "Status", got.Status, kapsel.DeliveryPending)
			sameTime(t, "NextAttemptAt", got.NextAttemptAt, d.NextAttemptAt)
			summary(t, "event", h.getEvent(d.EventID).Deliveries, kapsel.DeliverySummary{Total: 1, Pending: 1})
			errs := h.complete(at(time.Minute), completion(claimed, 200, kapsel.DeliveryDelivered, at(time.Minute)))
			mustIs(t, errs[0], kapsel.ErrLeaseLost, "completing the expired lease")
			r.unblock(h, ep, at(2*time.Minute))
			again := h.claimOne(d.ID, time.Minute, at(2*time.Minute))
			if again.LeaseToken == claimed.LeaseToken {
				t.Fatal("the re-claim kept the expired lease token")
			}
		})
	}

	t.Run("LiveLeaseOfBlockedEndpointKept", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		d := h.delivery(ep, Base)
		claimed := h.claimOne(d.ID, time.Hour, at(time.Second))
		h.setState(ep, kapsel.EndpointPaused, "", at(2*time.Second))
		h.claim(10, time.Minute, at(time.Minute))
		got := h.get(d.ID)
		equal(t, "Status", got.Status, kapsel.DeliveryDelivering)
		equal(t, "LeaseToken", got.LeaseToken, claimed.LeaseToken)
		// The worker that holds the lease may still finish the attempt.
		errs := h.complete(at(2*time.Minute), completion(claimed, 200, kapsel.DeliveryDelivered, at(time.Minute)))
		must(t, errs[0], "completing a live lease of a paused endpoint")
	})
}
