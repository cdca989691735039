package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// saveBreaker stores a fresh breaker state for the endpoint.
func (h *harness) saveBreaker(id kapsel.EndpointID, status kapsel.BreakerStatus, openUntil time.Time) *kapsel.BreakerState {
	h.t.Helper()
	b, err := h.s.BreakerSave(h.ctx, &kapsel.BreakerSaveParams{
		State: &kapsel.BreakerState{EndpointID: id, Status: status, Trips: 1, OpenUntil: openUntil}, Now: Base,
	})
	must(h.t, err, "BreakerSave")
	return b
}

func testBreakers(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("SaveGetDelete", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		_, err := h.s.BreakerGet(h.ctx, &kapsel.BreakerGetParams{EndpointID: ep.ID})
		mustIs(t, err, kapsel.ErrNotFound, "BreakerGet before any save")

		in := &kapsel.BreakerState{
			EndpointID: ep.ID, Status: kapsel.BreakerOpen, Trips: 3,
			OpenUntil: at(time.Minute), ProbeUntil: at(2 * time.Minute), FailingSince: at(-time.Hour),
			LastSuccessAt: at(-2 * time.Hour), LastFailureAt: at(-time.Second),
		}
		saved, err := h.s.BreakerSave(h.ctx, &kapsel.BreakerSaveParams{State: in, ExpectedVersion: 0, Now: at(time.Second)})
		must(t, err, "BreakerSave")
		got, err := h.s.BreakerGet(h.ctx, &kapsel.BreakerGetParams{EndpointID: ep.ID})
		must(t, err, "BreakerGet")
		for _, b := range []*kapsel.BreakerState{saved, got} {
			equal(t, "EndpointID", b.EndpointID, ep.ID)
			equal(t, "Status", b.Status, kapsel.BreakerOpen)
			equal(t, "Trips", b.Trips, 3)
			equal(t, "Version", b.Version, int64(1))
			sameTime(t, "OpenUntil", b.OpenUntil, in.OpenUntil)
			sameTime(t, "ProbeUntil", b.ProbeUntil, in.ProbeUntil)
			sameTime(t, "FailingSince", b.FailingSince, in.FailingSince)
			sameTime(t, "LastSuccessAt", b.LastSuccessAt, in.LastSuccessAt)
			sameTime(t, "LastFailureAt", b.LastFailureAt, in.LastFailureAt)
			sameTime(t, "UpdatedAt", b.UpdatedAt, at(time.Second))
		}

		next := *got
		next.Status, next.OpenUntil, next.FailingSince = kapsel.BreakerClosed, time.Time{}, time.Time{}
		saved, err = h.s.BreakerSave(h.ctx, &kapsel.BreakerSaveParams{State: &next, ExpectedVersion: 1, Now: at(time.Minute)})
		must(t, err, "second BreakerSave")
		equal(t, "Version", saved.Version, int64(2))
		sameTime(t, "cleared OpenUntil", saved.OpenUntil, time.Time{})
		sameTime(t, "cleared FailingSince", saved.FailingSince, time.Time{})

		must(t, h.s.BreakerDelete(h.ctx, &kapsel.BreakerDeleteParams{EndpointID: ep.ID}), "BreakerDelete")
		_, err = h.s.BreakerGet(h.ctx, &kapsel.BreakerGetParams{EndpointID: ep.ID})
		mustIs(t, err, kapsel.ErrNotFound, "BreakerGet after delete")
		must(t, h.s.BreakerDelete(h.ctx, &kapsel.BreakerDeleteParams{EndpointID: ep.ID}), "BreakerDelete of nothing")
		again := h.saveBreaker(ep.ID, kapsel.BreakerOpen, at(time.Hour))
		equal(t, "Version after a reset", again.Version, int64(1))
	})

	t.Run("CompareAndSet", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		h.saveBreaker(ep.ID, kapsel.BreakerOpen, at(time.Minute))
		for _, v := range []int64{0, 2, 7} {
			_, err := h.s.BreakerSave(h.ctx, &kapsel.BreakerSaveParams{
				State: &kapsel.BreakerState{EndpointID: ep.ID, Status: kapsel.BreakerClosed}, ExpectedVersion: v, Now: Base,
			})
			mustIs(t, err, kapsel.ErrConflict, "BreakerSave with a stale version")
		}
		got, err := h.s.BreakerGet(h.ctx, &kapsel.BreakerGetParams{EndpointID: ep.ID})
		must(t, err, "BreakerGet")
		equal(t, "Status after conflicts", got.Status, kapsel.BreakerOpen)
		equal(t, "Version after conflicts", got.Version, int64(1))
	})

	t.Run("ConcurrentSaves", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		h.saveBreaker(ep.ID, kapsel.BreakerOpen, at(time.Minute))
		const n = 10
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = h.s.BreakerSave(h.ctx, &kapsel.BreakerSaveParams{
					State: &kapsel.BreakerState{EndpointID: ep.ID, Status: kapsel.BreakerHalfOpen, Trips: i}, ExpectedVersion: 1, Now: Base,
				})
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, kapsel.ErrConflict):
				t.Fatalf("concurrent BreakerSave: %v, want nil or ErrConflict", err)
			}
		}
		equal(t, "saves that won", won, 1)
		got, err := h.s.BreakerGet(h.ctx, &kapsel.BreakerGetParams{EndpointID: ep.ID})
		must(t, err, "BreakerGet")
		equal(t, "Version", got.Version, int64(2))
	})

	testBreakerRelease(t, newStore)
}

// testBreakerRelease checks that deliveries a claim skipped (a store may hold
// them back until the breaker's OpenUntil, so that claims do not walk them)
// are due again as soon as the breaker lets them through: when a save closes
// it or brings OpenUntil forward, and when it is reset (docs/delivery.md: on closing,
// the endpoint's waiting deliveries are due at once).
func testBreakerRelease(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	// blocked returns a store with one due delivery of an endpoint whose
	// breaker (version 1) is open until Base+1h, after a claim at Base+1min
	// that skipped it.
	blocked := func(t *testing.T) (*harness, *kapsel.Endpoint, *kapsel.Delivery, *kapsel.BreakerState) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		d := h.delivery(ep, Base)
		b := h.saveBreaker(ep.ID, kapsel.BreakerOpen, at(time.Hour))
		if got := h.claim(10, time.Minute, at(time.Minute)); len(got) != 0 {
			t.Fatalf("claimed %v while the breaker is open", ids(got))
		}
		return h, ep, d, b
	}
	resave := func(h *harness, b *kapsel.BreakerState, status kapsel.BreakerStatus, openUntil time.Time, now time.Time) {
		h.t.Helper()
		next := *b
		next.Status, next.OpenUntil = status, openUntil
		_, err := h.s.BreakerSave(h.ctx, &kapsel.BreakerSaveParams{State: &next, ExpectedVersion: b.Version, Now: now})
		must(h.t, err, "BreakerSave")
	}

	t.Run("ClosingReleasesHeldDeliveries", func(t *testing.T) {
		h, _, d, b := blocked(t)
		resave(h, b, kapsel.BreakerClosed, time.Time{}, at(2*time.Minute))
		h.claimOne(d.ID, time.Minute, at(2*time.Minute))
	})

	// A save that moves OpenUntil, earlier or later: the delivery is due
	// from the new OpenUntil, not before.
	for _, r := range []struct {
		name      string
		status    kapsel.BreakerStatus
		openUntil time.Time
	}{
		{"EarlierOpenUntilReleasesHeldDeliveries", kapsel.BreakerOpen, at(5 * time.Minute)},
		{"LaterOpenUntilKeepsDeliveriesBack", kapsel.BreakerHalfOpen, at(2 * time.Hour)},
	} {
		t.Run(r.name, func(t *testing.T) {
			h, _, d, b := blocked(t)
			resave(h, b, r.status, r.openUntil, at(2*time.Minute))
			if got := h.claim(10, time.Minute, r.openUntil.Add(-time.Microsecond)); len(got) != 0 {
				t.Fatalf("claimed %v before the new OpenUntil", ids(got))
			}
			h.claimOne(d.ID, time.Minute, r.openUntil)
		})
	}

	t.Run("ResetReleasesHeldDeliveries", func(t *testing.T) {
		h, ep, d, _ := blocked(t)
		must(t, h.s.BreakerDelete(h.ctx, &kapsel.BreakerDeleteParams{EndpointID: ep.ID}), "BreakerDelete")
		h.claimOne(d.ID, time.Minute, at(2*time.Minute))
	})

	t.Run("ClosingKeepsPausedEndpointBack", func(t *testing.T) {
		h, ep, d, b := blocked(t)
		h.setState(ep, kapsel.EndpointPaused, "", at(90*time.Second))
		h.claim(10, time.Minute, at(100*time.Second))
		resave(h, b, kapsel.BreakerClosed, time.Time{}, at(2*time.Minute))
		if got := h.claim(10, time.Minute, at(3*time.Minute)); len(got) != 0 {
			t.Fatalf("claimed %v of a paused endpoint after its breaker closed", ids(got))
		}
		h.setState(ep, kapsel.EndpointActive, "", at(4*time.Minute))
		h.claimOne(d.ID, time.Minute, at(4*time.Minute))
	})
}
