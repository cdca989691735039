package storetest

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// lease claims the event at now among all due events and gives the others
// back unchanged, for tests that need one particular event leased.
func (h *harness) lease(id kapsel.EventID, lease time.Duration, now time.Time) *kapsel.Event {
	h.t.Helper()
	var target *kapsel.Event
	var back []kapsel.EventRelease
	for _, e := range h.claim(kapsel.MaxPageLimit, lease, now) {
		if e.ID == id {
			target = e
			continue
		}
		back = append(back, kapsel.EventRelease{EventID: e.ID, LeaseToken: e.LeaseToken, NextAttemptAt: e.NextAttemptAt})
	}
	if target == nil {
		h.t.Fatalf("event %s is not claimable at %v", id, now)
	}
	n, err := h.s.EventRelease(h.ctx, &kapsel.EventReleaseParams{Releases: back, Now: now})
	must(h.t, err, "EventRelease")
	equal(h.t, "released", n, len(back))
	return target
}

// finish leases the event at now and completes it with status.
func (h *harness) finish(id kapsel.EventID, status kapsel.EventStatus, now time.Time) {
	h.t.Helper()
	c := h.lease(id, time.Minute, now)
	code := 200
	if status != kapsel.EventDelivered {
		code = 500
	}
	must(h.t, h.complete(now, completion(c, code, status, now))[0], "completion")
}

func testRetry(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("Retry", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		ev := h.event(h.endpoint(a), Base)
		h.finish(ev.ID, kapsel.EventFailed, Base)

		_, err := h.s.EventRetry(h.ctx, &kapsel.EventRetryParams{ID: ev.ID, TenantID: b.ID, Now: at(time.Minute)})
		mustIs(t, err, kapsel.ErrNotFound, "EventRetry by another tenant")
		equal(t, "Status after a foreign retry", h.get(ev.ID).Status, kapsel.EventFailed)
		_, err = h.s.EventRetry(h.ctx, &kapsel.EventRetryParams{ID: kapsel.NewEventID(), Now: at(time.Minute)})
		mustIs(t, err, kapsel.ErrNotFound, "EventRetry of an unknown event")

		got, err := h.s.EventRetry(h.ctx, &kapsel.EventRetryParams{ID: ev.ID, TenantID: a.ID, Now: at(time.Hour)})
		must(t, err, "EventRetry")
		for _, e := range []*kapsel.Event{got, h.get(ev.ID)} {
			equal(t, "Status", e.Status, kapsel.EventPending)
			equal(t, "NextTrigger", e.NextTrigger, kapsel.TriggerManual)
			equal(t, "LastError kept", e.LastError, "status 500")
			equal(t, "Attempts kept", e.Attempts, 1)
			sameTime(t, "NextAttemptAt", e.NextAttemptAt, at(time.Hour))
		}

		_, err = h.s.EventRetry(h.ctx, &kapsel.EventRetryParams{ID: ev.ID, Now: at(time.Hour)})
		mustIs(t, err, kapsel.ErrIllegalTransition, "EventRetry of a pending event")
		c := h.claimOne(ev.ID, time.Minute, at(time.Hour))
		equal(t, "claimed NextTrigger", c.NextTrigger, kapsel.TriggerManual)
		_, err = h.s.EventRetry(h.ctx, &kapsel.EventRetryParams{ID: ev.ID, Now: at(time.Hour)})
		mustIs(t, err, kapsel.ErrIllegalTransition, "EventRetry of a delivering event")

		must(t, h.complete(at(time.Hour), completion(c, 200, kapsel.EventDelivered, at(time.Hour)))[0], "manual completion")
		as := h.attempts(ev.ID)
		equal(t, "attempts recorded", len(as), 2)
		equal(t, "manual Attempt.Trigger", as[1].Trigger, kapsel.TriggerManual)
		equal(t, "manual Attempt.Number", as[1].Number, 2)
		equal(t, "NextTrigger after the attempt", h.get(ev.ID).NextTrigger, kapsel.TriggerScheduled)

		_, err = h.s.EventRetry(h.ctx, &kapsel.EventRetryParams{ID: ev.ID, Now: at(2 * time.Hour)})
		must(t, err, "EventRetry of a delivered event")
		equal(t, "Status", h.get(ev.ID).Status, kapsel.EventPending)
	})

	t.Run("Replay", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		ep, other := h.endpoint(a), h.endpoint(a)
		failedEarly := h.event(ep, Base)
		failedMid := h.event(ep, at(time.Hour))
		failedLate := h.event(ep, at(2*time.Hour))
		delivered := h.event(ep, at(time.Hour))
		pending := h.event(ep, at(3*time.Hour))
		otherFailed := h.event(other, at(time.Hour))
		now := at(2 * time.Hour)
		for _, id := range []kapsel.EventID{failedEarly.ID, failedMid.ID, failedLate.ID, otherFailed.ID} {
			h.finish(id, kapsel.EventFailed, now)
		}
		h.finish(delivered.ID, kapsel.EventDelivered, now)

		replay := func(p kapsel.EventReplayParams) (int, error) {
			p.Now = at(4 * time.Hour)
			return h.s.EventReplay(h.ctx, &p)
		}
		_, err := replay(kapsel.EventReplayParams{TenantID: b.ID, EndpointID: ep.ID, Status: kapsel.EventFailed})
		mustIs(t, err, kapsel.ErrNotFound, "EventReplay by another tenant")
		_, err = replay(kapsel.EventReplayParams{TenantID: a.ID, EndpointID: ep.ID, Status: kapsel.EventPending})
		mustIs(t, err, kapsel.ErrInvalid, "EventReplay of pending events")
		equal(t, "Status after refused replays", h.get(failedMid.ID).Status, kapsel.EventFailed)

		// [Since, Until): the bound at Until is excluded.
		n, err := replay(kapsel.EventReplayParams{TenantID: a.ID, EndpointID: ep.ID, Status: kapsel.EventFailed,
			Since: at(30 * time.Minute), Until: at(2 * time.Hour)})
		must(t, err, "EventReplay")
		equal(t, "replayed in [Since, Until)", n, 1)
		got := h.get(failedMid.ID)
		equal(t, "replayed Status", got.Status, kapsel.EventPending)
		equal(t, "replayed NextTrigger", got.NextTrigger, kapsel.TriggerManual)
		sameTime(t, "replayed NextAttemptAt", got.NextAttemptAt, at(4*time.Hour))

		n, err = replay(kapsel.EventReplayParams{EndpointID: ep.ID, Status: kapsel.EventFailed, Since: at(time.Hour)})
		must(t, err, "EventReplay with an open Until")
		equal(t, "replayed since", n, 1) // failedLate; failedMid is pending now

		n, err = replay(kapsel.EventReplayParams{EndpointID: ep.ID, Status: kapsel.EventFailed})
		must(t, err, "EventReplay unbounded")
		equal(t, "replayed unbounded", n, 1) // failedEarly

		n, err = replay(kapsel.EventReplayParams{EndpointID: ep.ID, Status: kapsel.EventDelivered})
		must(t, err, "EventReplay of delivered")
		equal(t, "replayed delivered", n, 1)

		equal(t, "pending event untouched", h.get(pending.ID).NextTrigger, kapsel.TriggerScheduled)
		equal(t, "other endpoint untouched", h.get(otherFailed.ID).Status, kapsel.EventFailed)
	})
}
