package storetest

import (
	"bytes"
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
		got := h.get(res.Event.ID)
		for _, e := range []*kapsel.Event{res.Event, got} {
			equal(t, "ID", e.ID, res.Event.ID)
			equal(t, "TenantID", e.TenantID, ep.TenantID)
			equal(t, "EndpointID", e.EndpointID, ep.ID)
			equal(t, "ContentType", e.ContentType, "application/octet-stream")
			equal(t, "IdempotencyKey", e.IdempotencyKey, "delivery-1")
			equal(t, "Size", e.Size, len(body))
			equal(t, "Status", e.Status, kapsel.EventPending)
			equal(t, "Attempts", e.Attempts, 0)
			equal(t, "NextTrigger", e.NextTrigger, kapsel.TriggerScheduled)
			equal(t, "LeaseToken", e.LeaseToken, "")
			equal(t, "LastError", e.LastError, "")
			sameTime(t, "NextAttemptAt", e.NextAttemptAt, at(time.Second))
			sameTime(t, "CreatedAt", e.CreatedAt, at(time.Second))
			sameTime(t, "LeaseExpiresAt", e.LeaseExpiresAt, time.Time{})
			sameTime(t, "DeliveredAt", e.DeliveredAt, time.Time{})
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
	})

	t.Run("EmptyBody", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		r := h.insertMany(Base, 0, input(ep, "", nil))[0]
		must(t, r.Err, "insert")
		got := h.get(r.Event.ID)
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
		ep, other := h.endpoint(h.tenant()), h.endpoint(h.tenant())
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

		conflict := h.insertMany(at(time.Hour), 0, input(ep, "k", []byte(`{"id":2}`)))[0]
		mustIs(t, conflict.Err, kapsel.ErrIdempotencyConflict, "same key, other body")
		if conflict.Duplicate {
			t.Fatal("a conflicting row is reported as a duplicate")
		}

		elsewhere := h.insertMany(at(time.Hour), 0, input(other, "k", []byte(`{"id":2}`)))[0]
		must(t, elsewhere.Err, "same key on another endpoint")
		if elsewhere.Duplicate {
			t.Fatal("idempotency keys leak across endpoints")
		}
		equal(t, "events of the endpoint", len(h.listEvents(kapsel.EventListParams{EndpointID: ep.ID})), 1)
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
		equal(t, "stored events", len(h.listEvents(kapsel.EventListParams{EndpointID: ep.ID})), 3)
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
			equal(t, "committed valid row", h.get(res[i].Event.ID).ID, res[i].Event.ID)
		}
		equal(t, "stored events", len(h.listEvents(kapsel.EventListParams{EndpointID: ep.ID})), 3)
	})

	t.Run("TenantTakenFromEndpoint", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		in := input(ep, "", []byte("x"))
		in.TenantID = ""
		r := h.insertMany(Base, 0, in)[0]
		must(t, r.Err, "insert without TenantID")
		equal(t, "TenantID", r.Event.TenantID, ep.TenantID)
		equal(t, "stored TenantID", h.get(r.Event.ID).TenantID, ep.TenantID)
	})

	t.Run("UnreachableEndpointFailsTheCall", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		ep, deleted := h.endpoint(a), h.endpoint(a)
		must(t, h.s.EndpointDelete(h.ctx, &kapsel.EndpointDeleteParams{ID: deleted.ID, Now: Base}), "EndpointDelete")
		foreign := input(ep, "", []byte("x"))
		foreign.TenantID = b.ID
		cases := map[string]*kapsel.EventInsertParams{
			"unknown endpoint": input(&kapsel.Endpoint{ID: kapsel.NewEndpointID(), TenantID: a.ID}, "", []byte("x")),
			"deleted endpoint": input(deleted, "", []byte("x")),
			"foreign tenant":   foreign,
		}
		for name, bad := range cases {
			_, err := h.s.EventInsertMany(h.ctx, &kapsel.EventInsertManyParams{
				Events: []*kapsel.EventInsertParams{input(ep, "", []byte("ok")), bad}, Now: Base,
			})
			mustIs(t, err, kapsel.ErrNotFound, "EventInsertMany with an "+name)
		}
		equal(t, "events written by failed calls", len(h.listEvents(kapsel.EventListParams{})), 0)
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
					Events: []*kapsel.EventInsertParams{input(ep, "race", []byte(`{"race":1}`))}, Now: Base,
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
		equal(t, "stored events", len(h.listEvents(kapsel.EventListParams{EndpointID: ep.ID})), 1)
	})

	t.Run("ValuesAreCopies", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		in := input(ep, "", []byte("original"))
		ev := h.insertMany(Base, 0, in)[0].Event
		in.Body[0], in.Headers["X-Github-Event"][0] = 'X', "X"
		ev.Body[0], ev.Headers["X-Github-Event"][0] = 'Y', "Y"
		got := h.get(ev.ID)
		got.Body[1] = 'Z'
		got = h.get(ev.ID)
		if string(got.Body) != "original" || got.Headers.Get("X-Github-Event") != "push" {
			t.Fatalf("stored event changed through a caller's slice: body %q, headers %v", got.Body, got.Headers)
		}
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
