package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

func testAttempts(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	// A list can ask for cut bodies and errors, so that a page of large
	// attempts stays small in memory (docs/api.md); the cut happens in the
	// store's read, and a zero limit reads them whole.
	t.Run("AttemptListCutsBodiesAndErrors", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		d := h.delivery(h.endpoint(ten), Base)
		body := bytes.Repeat([]byte("0123456789"), kapsel.MaxResponseBody/10)
		const errText = "héllo wörld"
		for i := range 3 {
			now := at(time.Duration(i) * time.Minute)
			c := completion(h.claimOne(d.ID, time.Minute, now), 500, kapsel.DeliveryPending, now)
			c.NextAttemptAt = at(time.Duration(i+1) * time.Minute)
			c.Attempt.ResponseBody = body[:len(body)-i]
			c.Attempt.Error = errText
			must(t, h.complete(now, c)[0], "completion")
		}
		list := func(p kapsel.AttemptListParams) []*kapsel.Attempt {
			p.DeliveryID, p.TenantID = d.ID, ten.ID
			as, err := h.s.AttemptList(h.ctx, &p)
			must(t, err, "AttemptList")
			return as
		}
		whole := list(kapsel.AttemptListParams{Limit: 10})
		equal(t, "attempts", len(whole), 3)
		for i, a := range whole {
			if !bytes.Equal(a.ResponseBody, body[:len(body)-i]) || a.Error != errText {
				t.Fatalf("attempt %d read whole: body of %d bytes, error %q", i+1, len(a.ResponseBody), a.Error)
			}
		}
		cut := list(kapsel.AttemptListParams{Limit: 2, ResponseBodyLimit: 4097, ErrorLimit: 3})
		equal(t, "attempts on a cut page", len(cut), 2)
		for i, a := range cut {
			if !bytes.Equal(a.ResponseBody, body[:4097]) {
				t.Fatalf("attempt %d: cut body %q…, %d bytes; want the first 4097 bytes", i+1, a.ResponseBody[:min(10, len(a.ResponseBody))], len(a.ResponseBody))
			}
			equal(t, "cut error (3 characters)", a.Error, "hél")
			equal(t, "Number", a.Number, i+1)
		}
		// The cursor still pages on: the third attempt, cut as well.
		rest := list(kapsel.AttemptListParams{Limit: 2, Cursor: cut[1].ID, ResponseBodyLimit: 1 << 20, ErrorLimit: 100})
		if len(rest) != 1 || rest[0].Number != 3 || !bytes.Equal(rest[0].ResponseBody, body[:len(body)-2]) || rest[0].Error != errText {
			t.Fatalf("next page with limits above the sizes = %v", rest)
		}
	})

	// An event's attempts are those of all its deliveries, oldest first;
	// a delivery's are its own.
	t.Run("AttemptListByDeliveryAndByEvent", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		a, b := h.endpoint(ten), h.endpoint(ten)
		ev := h.insertNew(Base, send(ten.ID, "", []byte(`{}`)))[0]
		other := h.insertNew(Base, send(ten.ID, "", []byte(`{"other":1}`)))[0]
		da, db := h.deliveryOf(ev.ID, a.ID), h.deliveryOf(ev.ID, b.ID)
		// Attempts alternate between the two deliveries: a1, b1, a2, and
		// one of the other event in between.
		step := func(d *kapsel.Delivery, status kapsel.DeliveryStatus, now time.Time) {
			t.Helper()
			c := h.lease(d.ID, time.Minute, now)
			code := 503
			if status == kapsel.DeliveryDelivered {
				code = 200
			}
			comp := completion(c, code, status, now)
			comp.NextAttemptAt = now.Add(time.Minute)
			must(t, h.complete(now, comp)[0], "completion")
		}
		step(da, kapsel.DeliveryPending, at(1*time.Second))
		step(db, kapsel.DeliveryPending, at(2*time.Second))
		step(h.deliveryOf(other.ID, a.ID), kapsel.DeliveryFailed, at(3*time.Second))
		step(da, kapsel.DeliveryFailed, at(2*time.Minute))
		step(db, kapsel.DeliveryDelivered, at(3*time.Minute))

		attempts := func(p kapsel.AttemptListParams) []*kapsel.Attempt {
			t.Helper()
			p.TenantID, p.Limit = ten.ID, kapsel.MaxPageLimit
			as, err := h.s.AttemptList(h.ctx, &p)
			must(t, err, "AttemptList")
			return as
		}
		byEvent := attempts(kapsel.AttemptListParams{EventID: ev.ID})
		want := []struct {
			d      kapsel.DeliveryID
			number int
		}{{da.ID, 1}, {db.ID, 1}, {da.ID, 2}, {db.ID, 2}}
		equal(t, "attempts of the event", len(byEvent), len(want))
		for i, w := range want {
			x := byEvent[i]
			equal(t, "DeliveryID of the event's attempt", x.DeliveryID, w.d)
			equal(t, "Number of the event's attempt", x.Number, w.number)
			equal(t, "EventID of the event's attempt", x.EventID, ev.ID)
			equal(t, "EndpointID of the event's attempt", x.EndpointID, map[kapsel.DeliveryID]kapsel.EndpointID{da.ID: a.ID, db.ID: b.ID}[w.d])
			equal(t, "TenantID of the event's attempt", x.TenantID, ten.ID)
		}
		for _, d := range []*kapsel.Delivery{da, db} {
			as := attempts(kapsel.AttemptListParams{DeliveryID: d.ID})
			equal(t, "attempts of a delivery", len(as), 2)
			for i, x := range as {
				equal(t, "DeliveryID", x.DeliveryID, d.ID)
				equal(t, "Number", x.Number, i+1)
			}
		}
		summary(t, "event", h.getEvent(ev.ID).Deliveries, kapsel.DeliverySummary{Total: 2, Delivered: 1, Failed: 1})
		summary(t, "other event", h.getEvent(other.ID).Deliveries, kapsel.DeliverySummary{Total: 2, Pending: 1, Failed: 1})
		// The event's attempts page on by the cursor, across deliveries.
		p := kapsel.AttemptListParams{EventID: ev.ID, TenantID: ten.ID, Limit: 3}
		first, err := h.s.AttemptList(h.ctx, &p)
		must(t, err, "AttemptList, first page")
		equal(t, "first page", len(first), 3)
		p.Cursor = first[2].ID
		rest, err := h.s.AttemptList(h.ctx, &p)
		must(t, err, "AttemptList, second page")
		if len(rest) != 1 || rest[0].ID != byEvent[3].ID {
			t.Fatalf("second page of the event's attempts = %v, want the fourth attempt only", rest)
		}
	})
}
