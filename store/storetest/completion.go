package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

func testCompletion(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("Delivered", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		d := h.delivery(ep, Base)
		c := h.claimOne(d.ID, time.Minute, Base)
		comp := completion(c, 200, kapsel.DeliveryDelivered, at(time.Second))
		comp.Attempt.ResponseBody = randomBytes(kapsel.MaxResponseBody) // the most an attempt keeps
		errs := h.complete(at(2*time.Second), comp)
		must(t, errs[0], "completion")

		got := h.get(d.ID)
		equal(t, "Status", got.Status, kapsel.DeliveryDelivered)
		equal(t, "Attempts", got.Attempts, 1)
		equal(t, "LeaseToken", got.LeaseToken, "")
		equal(t, "LastError", got.LastError, "")
		equal(t, "NextTrigger", got.NextTrigger, kapsel.TriggerScheduled)
		sameTime(t, "LeaseExpiresAt", got.LeaseExpiresAt, time.Time{})
		sameTime(t, "DeliveredAt", got.DeliveredAt, at(2*time.Second))
		summary(t, "event", h.getEvent(d.EventID).Deliveries, kapsel.DeliverySummary{Total: 1, Delivered: 1})

		as := h.attempts(d.ID)
		equal(t, "attempts recorded", len(as), 1)
		a := as[0]
		_, err := kapsel.ParseAttemptID(a.ID.String())
		must(t, err, "ParseAttemptID of the recorded id")
		equal(t, "Attempt.DeliveryID", a.DeliveryID, d.ID)
		equal(t, "Attempt.EventID", a.EventID, d.EventID)
		equal(t, "Attempt.EndpointID", a.EndpointID, ep.ID)
		equal(t, "Attempt.TenantID", a.TenantID, ep.TenantID)
		equal(t, "Attempt.Number", a.Number, 1)
		equal(t, "Attempt.Trigger", a.Trigger, kapsel.TriggerScheduled)
		equal(t, "Attempt.StatusCode", a.StatusCode, 200)
		equal(t, "Attempt.Duration", a.Duration, 1234*time.Millisecond)
		equal(t, "Attempt.ErrorCode", a.ErrorCode, kapsel.Code(""))
		sameTime(t, "Attempt.StartedAt", a.StartedAt, at(time.Second))
		if !bytes.Equal(a.ResponseBody, comp.Attempt.ResponseBody) {
			t.Fatalf("Attempt.ResponseBody = %q, want %q", a.ResponseBody, comp.Attempt.ResponseBody)
		}
		if got := h.claim(10, time.Minute, at(time.Hour)); len(got) != 0 {
			t.Fatalf("claimed delivered deliveries %v", ids(got))
		}
	})

	t.Run("Rescheduled", func(t *testing.T) {
		h := setup(t, newStore)
		d := h.delivery(h.endpoint(h.tenant()), Base)
		c := h.claimOne(d.ID, time.Minute, Base)
		comp := completion(c, 503, kapsel.DeliveryPending, at(time.Second))
		comp.NextAttemptAt = at(10 * time.Second)
		must(t, h.complete(at(2*time.Second), comp)[0], "completion")

		got := h.get(d.ID)
		equal(t, "Status", got.Status, kapsel.DeliveryPending)
		equal(t, "Attempts", got.Attempts, 1)
		equal(t, "LastError", got.LastError, "status 503")
		equal(t, "LeaseToken", got.LeaseToken, "")
		sameTime(t, "NextAttemptAt", got.NextAttemptAt, at(10*time.Second))
		sameTime(t, "DeliveredAt", got.DeliveredAt, time.Time{})
		a := h.attempts(d.ID)[0]
		equal(t, "Attempt.ErrorCode", a.ErrorCode, kapsel.CodeAttemptStatus)
		equal(t, "Attempt.Error", a.Error, "status 503")

		if early := h.claim(10, time.Minute, at(10*time.Second-time.Microsecond)); len(early) != 0 {
			t.Fatalf("claimed %v before NextAttemptAt", ids(early))
		}
		c = h.claimOne(d.ID, time.Minute, at(10*time.Second))
		equal(t, "Attempts on the second claim", c.Attempts, 1)
		must(t, h.complete(at(11*time.Second), completion(c, 204, kapsel.DeliveryDelivered, at(10*time.Second)))[0], "second completion")
		as := h.attempts(d.ID)
		equal(t, "attempts recorded", len(as), 2)
		equal(t, "second Attempt.Number", as[1].Number, 2)
		got = h.get(d.ID)
		equal(t, "LastError after success", got.LastError, "")
		equal(t, "Attempts", got.Attempts, 2)
	})

	t.Run("Failed", func(t *testing.T) {
		h := setup(t, newStore)
		d := h.delivery(h.endpoint(h.tenant()), Base)
		c := h.claimOne(d.ID, time.Minute, Base)
		must(t, h.complete(at(time.Second), completion(c, 400, kapsel.DeliveryFailed, Base))[0], "completion")
		got := h.get(d.ID)
		equal(t, "Status", got.Status, kapsel.DeliveryFailed)
		equal(t, "LastError", got.LastError, "status 400")
		equal(t, "Attempts", got.Attempts, 1)
		if got := h.claim(10, time.Minute, at(time.Hour)); len(got) != 0 {
			t.Fatalf("claimed failed deliveries %v", ids(got))
		}
	})

	t.Run("DisableEndpoint", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		d, waiting := h.delivery(ep, Base), h.delivery(ep, at(time.Second))
		c := h.claimOne(d.ID, time.Minute, Base)
		comp := completion(c, 410, kapsel.DeliveryPending, Base)
		comp.NextAttemptAt = at(time.Second)
		comp.DisableEndpoint = kapsel.DisabledGone
		must(t, h.complete(at(time.Second), comp)[0], "completion")
		got := h.getEndpoint(ep.ID, "")
		equal(t, "endpoint State", got.State, kapsel.EndpointDisabled)
		equal(t, "endpoint DisabledReason", got.DisabledReason, kapsel.DisabledGone)
		equal(t, "delivery Status", h.get(d.ID).Status, kapsel.DeliveryPending)
		equal(t, "attempts recorded", len(h.attempts(d.ID)), 1)
		if got := h.claim(10, time.Minute, at(time.Minute)); len(got) != 0 {
			t.Fatalf("claimed %v of the disabled endpoint", ids(got))
		}
		h.setState(ep, kapsel.EndpointActive, "", at(time.Minute))
		if got := h.claim(10, time.Minute, at(2*time.Minute)); len(got) != 2 {
			t.Fatalf("after re-enabling claimed %v, want %s and %s", ids(got), d.ID, waiting.ID)
		}
	})

	t.Run("FencingAfterReclaim", func(t *testing.T) {
		h := setup(t, newStore)
		d := h.delivery(h.endpoint(h.tenant()), Base)
		stale := h.claimOne(d.ID, 30*time.Second, Base)
		fresh := h.claimOne(d.ID, 30*time.Second, at(time.Minute))

		comp := completion(stale, 200, kapsel.DeliveryDelivered, at(time.Minute))
		comp.DisableEndpoint = kapsel.DisabledGone
		mustIs(t, h.complete(at(time.Minute), comp)[0], kapsel.ErrLeaseLost, "completion with a stale token")
		n := h.release(at(time.Minute), kapsel.DeliveryRelease{DeliveryID: d.ID, LeaseToken: stale.LeaseToken, NextAttemptAt: Base})
		equal(t, "released with a stale token", n, 0)

		got := h.get(d.ID)
		equal(t, "Status", got.Status, kapsel.DeliveryDelivering)
		equal(t, "LeaseToken", got.LeaseToken, fresh.LeaseToken)
		equal(t, "Attempts", got.Attempts, 0)
		equal(t, "attempts recorded", len(h.attempts(d.ID)), 0)
		equal(t, "endpoint State", h.getEndpoint(d.EndpointID, "").State, kapsel.EndpointActive)

		must(t, h.complete(at(time.Minute), completion(fresh, 200, kapsel.DeliveryDelivered, at(time.Minute)))[0], "completion with the fresh token")
		equal(t, "attempts recorded", len(h.attempts(d.ID)), 1)
	})

	t.Run("FencingAfterCompletion", func(t *testing.T) {
		h := setup(t, newStore)
		d := h.delivery(h.endpoint(h.tenant()), Base)
		c := h.claimOne(d.ID, time.Minute, Base)
		must(t, h.complete(Base, completion(c, 200, kapsel.DeliveryDelivered, Base))[0], "first completion")
		mustIs(t, h.complete(Base, completion(c, 500, kapsel.DeliveryFailed, Base))[0], kapsel.ErrLeaseLost, "second completion")
		equal(t, "Status", h.get(d.ID).Status, kapsel.DeliveryDelivered)
		equal(t, "attempts recorded", len(h.attempts(d.ID)), 1)
		comp := completion(&kapsel.Delivery{ID: kapsel.NewDeliveryID(), LeaseToken: "nope"}, 200, kapsel.DeliveryDelivered, Base)
		mustIs(t, h.complete(Base, comp)[0], kapsel.ErrLeaseLost, "completion of an unknown delivery")
	})

	t.Run("ExpiredLeaseNotReclaimedStillCompletes", func(t *testing.T) {
		h := setup(t, newStore)
		d := h.delivery(h.endpoint(h.tenant()), Base)
		c := h.claimOne(d.ID, 30*time.Second, Base)
		must(t, h.complete(at(time.Minute), completion(c, 200, kapsel.DeliveryDelivered, Base))[0], "late completion")
		equal(t, "Status", h.get(d.ID).Status, kapsel.DeliveryDelivered)
	})

	t.Run("MixedBatch", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		a, b := h.delivery(ep, Base), h.delivery(ep, at(time.Second))
		ca := h.claimOne(a.ID, time.Hour, Base)
		staleB := h.claimOne(b.ID, 10*time.Second, at(time.Second))
		h.claimOne(b.ID, time.Minute, at(time.Minute)) // b's lease is taken over
		errs := h.complete(at(time.Minute),
			completion(ca, 200, kapsel.DeliveryDelivered, at(time.Minute)),
			completion(staleB, 200, kapsel.DeliveryDelivered, at(time.Minute)))
		must(t, errs[0], "valid completion in a batch")
		mustIs(t, errs[1], kapsel.ErrLeaseLost, "stale completion in a batch")
		equal(t, "valid delivery Status", h.get(a.ID).Status, kapsel.DeliveryDelivered)
		equal(t, "stale delivery Status", h.get(b.ID).Status, kapsel.DeliveryDelivering)
		equal(t, "stale delivery attempts", len(h.attempts(b.ID)), 0)
	})

	t.Run("InvalidCompletion", func(t *testing.T) {
		h := setup(t, newStore)
		d := h.delivery(h.endpoint(h.tenant()), Base)
		c := h.claimOne(d.ID, time.Minute, Base)
		badStatus := completion(c, 200, kapsel.DeliveryDelivering, Base)
		badReason := completion(c, 410, kapsel.DeliveryFailed, Base)
		badReason.DisableEndpoint = "bogus"
		errs := h.complete(Base, badStatus, badReason)
		mustIs(t, errs[0], kapsel.ErrInvalid, "completion with status delivering")
		mustIs(t, errs[1], kapsel.ErrInvalid, "completion with an unknown disable reason")
		got := h.get(d.ID)
		equal(t, "Status", got.Status, kapsel.DeliveryDelivering)
		equal(t, "LeaseToken", got.LeaseToken, c.LeaseToken)
		equal(t, "attempts recorded", len(h.attempts(d.ID)), 0)
		equal(t, "endpoint State", h.getEndpoint(d.EndpointID, "").State, kapsel.EndpointActive)
		must(t, h.complete(Base, completion(c, 200, kapsel.DeliveryDelivered, Base))[0], "valid completion after invalid ones")
	})

	t.Run("Release", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		d, other := h.delivery(ep, Base), h.delivery(ep, at(time.Hour))
		c := h.claimOne(d.ID, time.Minute, Base)
		n := h.release(at(time.Second),
			kapsel.DeliveryRelease{DeliveryID: d.ID, LeaseToken: c.LeaseToken, NextAttemptAt: at(5 * time.Second)},
			kapsel.DeliveryRelease{DeliveryID: other.ID, LeaseToken: "not-leased", NextAttemptAt: Base},
		)
		equal(t, "released", n, 1)
		got := h.get(d.ID)
		equal(t, "Status", got.Status, kapsel.DeliveryPending)
		equal(t, "Attempts", got.Attempts, 0)
		equal(t, "LeaseToken", got.LeaseToken, "")
		sameTime(t, "NextAttemptAt", got.NextAttemptAt, at(5*time.Second))
		sameTime(t, "untouched NextAttemptAt", h.get(other.ID).NextAttemptAt, at(time.Hour))
		equal(t, "attempts recorded", len(h.attempts(d.ID)), 0)
		if early := h.claim(10, time.Minute, at(5*time.Second-time.Microsecond)); len(early) != 0 {
			t.Fatalf("claimed %v before the released NextAttemptAt", ids(early))
		}
		h.claimOne(d.ID, time.Minute, at(5*time.Second))
	})

	t.Run("AttemptList", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		d := h.delivery(h.endpoint(a), Base)
		for i := range 3 {
			now := at(time.Duration(i) * time.Minute)
			c := h.claimOne(d.ID, time.Minute, now)
			comp := completion(c, 500, kapsel.DeliveryPending, now)
			comp.NextAttemptAt = now.Add(time.Minute)
			must(t, h.complete(now, comp)[0], "completion")
		}
		for _, p := range []kapsel.AttemptListParams{{DeliveryID: d.ID}, {EventID: d.EventID}} {
			var numbers []int
			var cursor kapsel.AttemptID
			for page := 0; page < 5; page++ {
				p.TenantID, p.Limit, p.Cursor = a.ID, 2, cursor
				as, err := h.s.AttemptList(h.ctx, &p)
				must(t, err, "AttemptList")
				if len(as) > 2 {
					t.Fatalf("page of %d attempts with Limit 2", len(as))
				}
				if len(as) == 0 {
					break
				}
				for _, x := range as {
					equal(t, "Attempt.DeliveryID", x.DeliveryID, d.ID)
					numbers = append(numbers, x.Number)
				}
				cursor = as[len(as)-1].ID
			}
			if len(numbers) != 3 || numbers[0] != 1 || numbers[1] != 2 || numbers[2] != 3 {
				t.Fatalf("attempt numbers over pages = %v, want [1 2 3] (oldest first)", numbers)
			}
		}
		_, err := h.s.AttemptList(h.ctx, &kapsel.AttemptListParams{DeliveryID: d.ID, TenantID: b.ID})
		mustIs(t, err, kapsel.ErrNotFound, "AttemptList of a delivery by another tenant")
		_, err = h.s.AttemptList(h.ctx, &kapsel.AttemptListParams{EventID: d.EventID, TenantID: b.ID})
		mustIs(t, err, kapsel.ErrNotFound, "AttemptList of an event by another tenant")
		_, err = h.s.AttemptList(h.ctx, &kapsel.AttemptListParams{DeliveryID: kapsel.NewDeliveryID()})
		mustIs(t, err, kapsel.ErrNotFound, "AttemptList of an unknown delivery")
		_, err = h.s.AttemptList(h.ctx, &kapsel.AttemptListParams{EventID: kapsel.NewEventID()})
		mustIs(t, err, kapsel.ErrNotFound, "AttemptList of an unknown event")
		_, err = h.s.AttemptList(h.ctx, &kapsel.AttemptListParams{TenantID: a.ID})
		mustIs(t, err, kapsel.ErrInvalid, "AttemptList of neither a delivery nor an event")
		_, err = h.s.AttemptList(h.ctx, &kapsel.AttemptListParams{DeliveryID: d.ID, EventID: d.EventID})
		mustIs(t, err, kapsel.ErrInvalid, "AttemptList of both a delivery and an event")
	})

	t.Run("AttemptStats", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		ep, other := h.endpoint(ten), h.endpoint(ten)
		outcomes := []struct {
			ep   *kapsel.Endpoint
			code int
			at   time.Time
		}{
			{ep, 500, at(1 * time.Minute)},
			{ep, 200, at(2 * time.Minute)},
			{ep, 0, at(3 * time.Minute)}, // no response
			{ep, 201, at(4 * time.Minute)},
			{ep, 502, at(5 * time.Minute)},
			{other, 200, at(6 * time.Minute)},
		}
		for _, o := range outcomes {
			d := h.delivery(o.ep, o.at)
			c := h.claimOne(d.ID, time.Minute, o.at)
			must(t, h.complete(o.at, completion(c, o.code, kapsel.DeliveryFailed, o.at))[0], "completion")
		}
		st, err := h.s.AttemptStats(h.ctx, &kapsel.AttemptStatsParams{EndpointID: ep.ID, Since: at(2 * time.Minute)})
		must(t, err, "AttemptStats")
		equal(t, "Total", st.Total, int64(4))
		equal(t, "Succeeded", st.Succeeded, int64(2))
		sameTime(t, "LastSuccessAt", st.LastSuccessAt, at(4*time.Minute))
		sameTime(t, "LastFailureAt", st.LastFailureAt, at(5*time.Minute))

		st, err = h.s.AttemptStats(h.ctx, &kapsel.AttemptStatsParams{EndpointID: ep.ID, Since: at(time.Hour)})
		must(t, err, "AttemptStats")
		equal(t, "Total since later", st.Total, int64(0))
		sameTime(t, "LastSuccessAt over the whole history", st.LastSuccessAt, at(4*time.Minute))

		st, err = h.s.AttemptStats(h.ctx, &kapsel.AttemptStatsParams{EndpointID: kapsel.NewEndpointID(), Since: Base})
		must(t, err, "AttemptStats of an endpoint without attempts")
		if st.Total != 0 || !st.LastSuccessAt.IsZero() || !st.LastFailureAt.IsZero() {
			t.Fatalf("AttemptStats of an endpoint without attempts = %+v", st)
		}
	})
}
