package storetest

import (
	"bytes"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

func testEvents(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("InsertGet", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		body := []byte("\x00\xffnot json {\"a\":1}\r\n\xc3\x28") // opaque bytes, invalid UTF-8 included
		in := input(ep, "delivery-1", body)
		in.ContentType = "application/octet-stream"
		in.Headers = http.Header{"X-Github-Event": {"push"}, "X-Multi": {"a", "b"}}
		res := h.insertMany(at(time.Second), 0, in)[0]
		if res.Err != nil || res.Duplicate {
			t.Fatalf("insert: err %v, duplicate %v", res.Err, res.Duplicate)
		}
		_, err := kapsel.ParseEventID(res.Event.ID.String())
		must(t, err, "ParseEventID of the new id")
		if !bytes.Equal(res.Event.Body, body) {
			t.Fatalf("inserted event Body = %q, want %q", res.Event.Body, body)
		}
		got := h.getEvent(res.Event.ID)
		for _, e := range []*kapsel.Event{res.Event, got} {
			equal(t, "ID", e.ID, res.Event.ID)
			equal(t, "TenantID", e.TenantID, ep.TenantID)
			equal(t, "SourceID of a send", e.SourceID, kapsel.SourceID(""))
			equal(t, "ContentType", e.ContentType, "application/octet-stream")
			equal(t, "IdempotencyKey", e.IdempotencyKey, "delivery-1")
			equal(t, "Size", e.Size, len(body))
			sameTime(t, "CreatedAt", e.CreatedAt, at(time.Second))
			summary(t, "event", e.Deliveries, kapsel.DeliverySummary{Total: 1, Pending: 1})
			if !bytes.Equal(e.BodyHash, hash(body)) {
				t.Fatalf("BodyHash = %x, want %x", e.BodyHash, hash(body))
			}
			if !reflect.DeepEqual(e.Headers, in.Headers) {
				t.Fatalf("Headers = %v, want %v", e.Headers, in.Headers)
			}
		}
		if !bytes.Equal(got.Body, body) {
			t.Fatalf("EventGet Body = %q, want %q", got.Body, body)
		}
		noBody, err := h.s.EventGet(h.ctx, &kapsel.EventGetParams{ID: got.ID})
		must(t, err, "EventGet without body")
		if len(noBody.Body) != 0 || noBody.Size != len(body) {
			t.Fatalf("EventGet without IncludeBody: Body %q, Size %d; want no body, Size %d", noBody.Body, noBody.Size, len(body))
		}

		// Its one delivery, as new deliveries are.
		d := h.deliveryOf(res.Event.ID, ep.ID)
		_, err = kapsel.ParseDeliveryID(d.ID.String())
		must(t, err, "ParseDeliveryID of the new delivery's id")
		for _, d := range []*kapsel.Delivery{d, h.get(d.ID)} {
			equal(t, "Delivery.TenantID", d.TenantID, ep.TenantID)
			equal(t, "Delivery.EventID", d.EventID, res.Event.ID)
			equal(t, "Delivery.EndpointID", d.EndpointID, ep.ID)
			equal(t, "Delivery.Status", d.Status, kapsel.DeliveryPending)
			equal(t, "Delivery.Attempts", d.Attempts, 0)
			equal(t, "Delivery.NextTrigger", d.NextTrigger, kapsel.TriggerScheduled)
			equal(t, "Delivery.LeaseToken", d.LeaseToken, "")
			equal(t, "Delivery.LastError", d.LastError, "")
			sameTime(t, "Delivery.NextAttemptAt", d.NextAttemptAt, at(time.Second))
			sameTime(t, "Delivery.CreatedAt", d.CreatedAt, at(time.Second))
			sameTime(t, "Delivery.LeaseExpiresAt", d.LeaseExpiresAt, time.Time{})
			sameTime(t, "Delivery.DeliveredAt", d.DeliveredAt, time.Time{})
			if d.Event != nil {
				t.Fatalf("a delivery read outside a claim comes with its event")
			}
		}
	})

	t.Run("EmptyBody", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		r := h.insertMany(Base, 0, input(ep, "", nil))[0]
		must(t, r.Err, "insert")
		got := h.getEvent(r.Event.ID)
		if len(got.Body) != 0 || got.Size != 0 {
			t.Fatalf("empty body read back as %q (Size %d)", got.Body, got.Size)
		}
	})

	t.Run("GetScoping", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		ev := h.event(h.endpoint(a), Base)
		_, err := h.s.EventGet(h.ctx, &kapsel.EventGetParams{ID: ev.ID, TenantID: b.ID})
		mustIs(t, err, kapsel.ErrNotFound, "EventGet by another tenant")
		got, err := h.s.EventGet(h.ctx, &kapsel.EventGetParams{ID: ev.ID, TenantID: a.ID})
		must(t, err, "EventGet by its tenant")
		equal(t, "ID", got.ID, ev.ID)
		_, err = h.s.EventGet(h.ctx, &kapsel.EventGetParams{ID: kapsel.NewEventID()})
		mustIs(t, err, kapsel.ErrNotFound, "EventGet of an unknown id")
	})

	t.Run("NoKeyNoDedup", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		body := []byte(`{"same":true}`)
		res := h.insertMany(Base, 0, input(ep, "", body), input(ep, "", body))
		if res[0].Duplicate || res[1].Duplicate || res[0].Event.ID == res[1].Event.ID {
			t.Fatalf("two events without a key were deduplicated: %+v", res)
		}
	})

	t.Run("Idempotency", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		ep, other := h.endpoint(ten), h.endpoint(h.tenant())
		body := []byte(`{"id":1}`)
		first := h.insertMany(Base, 0, input(ep, "k", body))[0]
		must(t, first.Err, "first insert")

		dup := h.insertMany(at(time.Hour), 0, input(ep, "k", body))[0]
		must(t, dup.Err, "same key, same body")
		if !dup.Duplicate || dup.Event == nil || dup.Event.ID != first.Event.ID {
			t.Fatalf("same key, same body: %+v, want Duplicate of %s", dup, first.Event.ID)
		}
		if len(dup.Event.Body) != 0 {
			t.Fatalf("a duplicate came back with its body %q", dup.Event.Body)
		}
		sameTime(t, "duplicate CreatedAt (the first event's)", dup.Event.CreatedAt, Base)
		summary(t, "duplicate", dup.Event.Deliveries, kapsel.DeliverySummary{})

		conflict := h.insertMany(at(time.Hour), 0, input(ep, "k", []byte(`{"id":2}`)))[0]
		mustIs(t, conflict.Err, kapsel.ErrIdempotencyConflict, "same key, other body")
		if conflict.Duplicate {
			t.Fatal("a conflicting row is reported as a duplicate")
		}

		elsewhere := h.insertMany(at(time.Hour), 0, input(other, "k", []byte(`{"id":2}`)))[0]
		must(t, elsewhere.Err, "same key in another tenant")
		if elsewhere.Duplicate {
			t.Fatal("idempotency keys leak across tenants")
		}
		equal(t, "events of the tenant", len(h.listEvents(kapsel.EventListParams{TenantID: ten.ID})), 1)
		equal(t, "deliveries of the endpoint", len(h.listDeliveries(kapsel.DeliveryListParams{EndpointID: ep.ID})), 1)
	})

	t.Run("IdempotencyWindow", func(t *testing.T) {
		cases := []struct {
			name   string
			window time.Duration // as passed; 0 means the default
			length time.Duration // in effect
		}{
			{"Explicit", time.Hour, time.Hour},
			{"Default", 0, kapsel.DefaultIdempotencyWindow},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				h := setup(t, newStore)
				ep := h.endpoint(h.tenant())
				body := []byte(`{}`)
				first := h.insertMany(Base, c.window, input(ep, "k", body))[0]
				must(t, first.Err, "first insert")
				last := h.insertMany(at(c.length-time.Microsecond), c.window, input(ep, "k", body))[0]
				if !last.Duplicate || last.Event.ID != first.Event.ID {
					t.Fatalf("1µs before the window ends: %+v, want a duplicate", last)
				}
				again := h.insertMany(at(c.length), c.window, input(ep, "k", []byte(`{"other":1}`)))[0]
				must(t, again.Err, "insert after the window, other body")
				if again.Duplicate || again.Event.ID == first.Event.ID {
					t.Fatalf("after the window: %+v, want a new event", again)
				}
				summary(t, "new event after the window", again.Event.Deliveries, kapsel.DeliverySummary{Total: 1, Pending: 1})
				// The new event holds the key for a new window.
				dup := h.insertMany(at(c.length+time.Minute), c.window, input(ep, "k", []byte(`{"other":1}`)))[0]
				if !dup.Duplicate || dup.Event.ID != again.Event.ID {
					t.Fatalf("reused key: %+v, want a duplicate of %s", dup, again.Event.ID)
				}
			})
		}
	})

	t.Run("BatchSequential", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		a, b := []byte(`{"a":1}`), []byte(`{"b":1}`)
		res := h.insertMany(Base, 0,
			input(ep, "k1", a), input(ep, "k1", a), input(ep, "k1", b), input(ep, "k2", a), input(ep, "", a))
		for i, r := range []kapsel.EventInsertResult{res[0], res[3], res[4]} {
			if r.Err != nil || r.Duplicate {
				t.Fatalf("new row %d: %+v", i, r)
			}
		}
		if !res[1].Duplicate || res[1].Err != nil || res[1].Event.ID != res[0].Event.ID {
			t.Fatalf("second k1 row = %+v, want a duplicate of %s", res[1], res[0].Event.ID)
		}
		mustIs(t, res[2].Err, kapsel.ErrIdempotencyConflict, "k1 row with another body")
		equal(t, "stored events", len(h.listEvents(kapsel.EventListParams{TenantID: ep.TenantID})), 3)
		equal(t, "stored deliveries", len(h.listDeliveries(kapsel.DeliveryListParams{EndpointID: ep.ID})), 3)
	})

	t.Run("BatchConflictDoesNotFailNeighbours", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		must(t, h.insertMany(Base, 0, input(ep, "taken", []byte("x")))[0].Err, "first insert")
		res := h.insertMany(at(time.Second), 0,
			input(ep, "n1", []byte("1")), input(ep, "taken", []byte("y")), input(ep, "", []byte("2")))
		mustIs(t, res[1].Err, kapsel.ErrIdempotencyConflict, "conflicting row")
		for _, i := range []int{0, 2} {
			must(t, res[i].Err, "valid row")
			equal(t, "committed valid row", h.getEvent(res[i].Event.ID).ID, res[i].Event.ID)
			h.deliveryOf(res[i].Event.ID, ep.ID)
		}
		equal(t, "stored events", len(h.listEvents(kapsel.EventListParams{TenantID: ep.TenantID})), 3)
		equal(t, "stored deliveries", len(h.listDeliveries(kapsel.DeliveryListParams{EndpointID: ep.ID})), 3)
	})

	// A row of a tenant that does not exist, or was deleted, is refused
	// alone (ErrNotFound) and writes nothing; its neighbours are written.
	t.Run("UnknownOrDeletedTenant", func(t *testing.T) {
		h := setup(t, newStore)
		live, gone := h.tenant(), h.tenant()
		ep, goneSrc := h.endpoint(live), h.source(gone)
		must(t, h.s.TenantDelete(h.ctx, &kapsel.TenantDeleteParams{ID: gone.ID, Now: Base}), "TenantDelete")
		unknown := kapsel.NewTenantID()
		res := h.insertMany(at(time.Second), 0,
			send(unknown, "k", []byte("unknown")),
			input(ep, "k", []byte("live")),
			send(gone.ID, "k", []byte("deleted")),
			ingested(goneSrc, "", []byte("deleted source")),
			send("", "", []byte("no tenant")),
			send(live.ID, "", []byte("live again")),
		)
		for _, i := range []int{0, 2, 3, 4} {
			mustIs(t, res[i].Err, kapsel.ErrNotFound, fmt.Sprintf("row %d of an unknown or deleted tenant", i))
		}
		for _, i := range []int{1, 5} {
			if res[i].Err != nil || res[i].Duplicate {
				t.Fatalf("row %d of the live tenant: err %v, duplicate %v; want a new event", i, res[i].Err, res[i].Duplicate)
			}
			summary(t, fmt.Sprintf("row %d", i), res[i].Event.Deliveries, kapsel.DeliverySummary{Total: 1, Pending: 1})
		}
		for _, ten := range []kapsel.TenantID{unknown, gone.ID} {
			equal(t, "events stored for "+string(ten), len(h.listEvents(kapsel.EventListParams{TenantID: ten})), 0)
			equal(t, "deliveries stored for "+string(ten), len(h.listDeliveries(kapsel.DeliveryListParams{TenantID: ten})), 0)
		}
		equal(t, "events of the live tenant", len(h.listEvents(kapsel.EventListParams{TenantID: live.ID})), 2)
	})

	t.Run("ConcurrentSameKey", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		const n = 50
		results := make([]kapsel.EventInsertResult, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				res, err := h.s.EventInsertMany(h.ctx, &kapsel.EventInsertManyParams{
					Events: []*kapsel.EventInsertParams{send(ep.TenantID, "race", []byte(`{"race":1}`))}, Now: Base,
				})
				if errs[i] = err; err == nil {
					results[i] = res[0]
				}
			})
		}
		close(start)
		wg.Wait()
		created, dups := 0, 0
		var id kapsel.EventID
		for i, r := range results {
			must(t, errs[i], "concurrent EventInsertMany")
			must(t, r.Err, "concurrent row")
			if id == "" {
				id = r.Event.ID
			}
			equal(t, "event id", r.Event.ID, id)
			if r.Duplicate {
				dups++
			} else {
				created++
			}
		}
		if created != 1 || dups != n-1 {
			t.Fatalf("%d created and %d duplicates, want 1 and %d", created, dups, n-1)
		}
		equal(t, "stored events", len(h.listEvents(kapsel.EventListParams{TenantID: ep.TenantID})), 1)
		equal(t, "stored deliveries", len(h.listDeliveries(kapsel.DeliveryListParams{EndpointID: ep.ID})), 1)
		summary(t, "the one event", h.getEvent(id).Deliveries, kapsel.DeliverySummary{Total: 1, Pending: 1})
	})

	t.Run("ValuesAreCopies", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		in := input(ep, "", []byte("original"))
		ev := h.insertMany(Base, 0, in)[0].Event
		in.Body[0], in.Headers["X-Github-Event"][0] = 'X', "X"
		ev.Body[0], ev.Headers["X-Github-Event"][0] = 'Y', "Y"
		got := h.getEvent(ev.ID)
		got.Body[1] = 'Z'
		got = h.getEvent(ev.ID)
		if string(got.Body) != "original" || got.Headers.Get("X-Github-Event") != "push" {
			t.Fatalf("stored event changed through a caller's slice: body %q, headers %v", got.Body, got.Headers)
		}
		claimed := h.claim(10, time.Minute, Base)
		equal(t, "claimed", len(claimed), 1)
		claimed[0].Event.Body[0] = 'W'
		if got := h.getEvent(ev.ID); string(got.Body) != "original" {
			t.Fatalf("stored event changed through a claimed delivery's event: body %q", got.Body)
		}
	})

	testIdempotencyScope(t, newStore)
}

// testIdempotencyScope checks the scope of idempotency keys (I2 of
// docs/guarantees.md): (tenant, source) for ingest, the tenant for sends —
// and that a duplicate creates no delivery.
func testIdempotencyScope(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("KeyScopedBySource", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		ep := h.endpoint(ten)
		github, stripe := h.source(ten), h.source(ten)
		body := []byte(`{"id":"evt_1"}`)
		res := h.insertMany(Base, 0, ingested(github, "k", body), ingested(stripe, "k", body))
		for i, r := range res {
			if r.Err != nil || r.Duplicate {
				t.Fatalf("row %d (same key, another source): err %v, duplicate %v; want a new event", i, r.Err, r.Duplicate)
			}
			equal(t, "SourceID", r.Event.SourceID, []kapsel.SourceID{github.ID, stripe.ID}[i])
			equal(t, "stored SourceID", h.getEvent(r.Event.ID).SourceID, r.Event.SourceID)
		}
		if res[0].Event.ID == res[1].Event.ID {
			t.Fatal("the same key on two sources gave one event")
		}
		// Same key on one source: the duplicate, with no new delivery.
		dup := h.insertMany(at(time.Minute), 0, ingested(github, "k", body))[0]
		if dup.Err != nil || !dup.Duplicate || dup.Event.ID != res[0].Event.ID {
			t.Fatalf("same key on the same source: %+v, want a duplicate of %s", dup, res[0].Event.ID)
		}
		equal(t, "deliveries to the endpoint", len(h.listDeliveries(kapsel.DeliveryListParams{EndpointID: ep.ID})), 2)
		// A send with the key is in the tenant's scope, not a source's.
		sent := h.insertMany(at(time.Minute), 0, send(ten.ID, "k", body))[0]
		if sent.Err != nil || sent.Duplicate {
			t.Fatalf("send with a key a source took: err %v, duplicate %v; want a new event", sent.Err, sent.Duplicate)
		}
		equal(t, "events", len(h.listEvents(kapsel.EventListParams{TenantID: ten.ID})), 3)
	})

	t.Run("SendKeyScopedByTenant", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		epA, epA2, epB := h.endpoint(a), h.endpoint(a), h.endpoint(b)
		body := []byte(`{"order":7}`)
		first := h.insertNew(Base, send(a.ID, "order-7", body))[0]
		summary(t, "first send", first.Deliveries, kapsel.DeliverySummary{Total: 2, Pending: 2})
		// Another endpoint subscribes before the retry: the duplicate
		// creates nothing for it, nor for those that have theirs.
		late := h.endpoint(a)
		for _, in := range []*kapsel.EventInsertParams{send(a.ID, "order-7", body), input(epA, "order-7", body)} {
			dup := h.insertMany(at(time.Minute), 0, in)[0]
			if dup.Err != nil || !dup.Duplicate || dup.Event.ID != first.ID {
				t.Fatalf("same key in the same tenant: %+v, want a duplicate of %s", dup, first.ID)
			}
			summary(t, "duplicate", dup.Event.Deliveries, kapsel.DeliverySummary{})
		}
		for _, ep := range []*kapsel.Endpoint{epA, epA2} {
			equal(t, "deliveries of a subscriber", len(h.listDeliveries(kapsel.DeliveryListParams{EndpointID: ep.ID})), 1)
		}
		equal(t, "deliveries of the endpoint created since", len(h.listDeliveries(kapsel.DeliveryListParams{EndpointID: late.ID})), 0)
		summary(t, "the event after duplicates", h.getEvent(first.ID).Deliveries, kapsel.DeliverySummary{Total: 2, Pending: 2})

		other := h.insertMany(at(time.Minute), 0, send(b.ID, "order-7", []byte(`{"another":"body"}`)))[0]
		if other.Err != nil || other.Duplicate || other.Event.ID == first.ID {
			t.Fatalf("same key in another tenant: %+v, want a new event", other)
		}
		equal(t, "other tenant's event TenantID", other.Event.TenantID, b.ID)
		h.deliveryOf(other.Event.ID, epB.ID)
	})
}

func (h *harness) listEvents(p kapsel.EventListParams) []*kapsel.Event {
	h.t.Helper()
	if p.Limit == 0 {
		p.Limit = kapsel.MaxPageLimit
	}
	list, err := h.s.EventList(h.ctx, &p)
	must(h.t, err, "EventList")
	return list
}
