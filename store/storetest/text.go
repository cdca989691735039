package storetest

import (
	"bytes"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// outside is text as a destination or a provider may send it: invalid UTF-8
// and a NUL byte (what made Postgres refuse a whole batch, SQLSTATE 22021).
const outside = "\xff\xfe\x00bad"

// stored is what every store keeps of outside: kapsel.SafeText's result.
const stored = "\uFFFD\uFFFDbad"

// testText checks that every store method that takes text from outside
// stores whatever bytes it gets, made safe by kapsel.SafeText, and reads back
// the same thing whichever store it is; and that bytes kept as bytes stay
// byte for byte.
func testText(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("SafeTextIsTheRule", func(t *testing.T) {
		t.Parallel()
		equal(t, "SafeText(outside)", kapsel.SafeText(outside), stored)
	})

	t.Run("EventInsert", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		body := []byte(outside + `{"n":1}`)
		in := input(ep, "key-"+outside, body)
		in.ContentType = "text/plain; charset=" + outside
		in.Headers = http.Header{"X-Status": {outside, "ok"}, "X-" + outside: {"v"}}
		// A clean neighbour in the same call must be stored too.
		res := h.insertMany(Base, 0, in, input(ep, "", []byte(`{"n":2}`)))
		for i, r := range res {
			if r.Err != nil || r.Duplicate || r.Event == nil {
				t.Fatalf("row %d: err %v, duplicate %v", i, r.Err, r.Duplicate)
			}
		}
		wantHeader := http.Header{"X-Status": {stored, "ok"}, "X-" + stored: {"v"}}
		check := func(what string, e *kapsel.Event, withBody bool) {
			t.Helper()
			equal(t, what+" ContentType", e.ContentType, "text/plain; charset="+stored)
			equal(t, what+" IdempotencyKey", e.IdempotencyKey, "key-"+stored)
			if !reflect.DeepEqual(e.Headers, wantHeader) {
				t.Fatalf("%s Headers = %q, want %q", what, e.Headers, wantHeader)
			}
			if withBody && !bytes.Equal(e.Body, body) {
				t.Fatalf("%s Body = %q, want the bytes sent %q", what, e.Body, body)
			}
			if !bytes.Equal(e.BodyHash, hash(body)) {
				t.Fatalf("%s BodyHash changed", what)
			}
			equal(t, what+" Size", e.Size, len(body))
		}
		check("inserted", res[0].Event, true)
		check("EventGet", h.getEvent(res[0].Event.ID), true)
		list := h.listEvents(kapsel.EventListParams{TenantID: ep.TenantID, Limit: 10})
		equal(t, "events listed", len(list), 2)
		claimed := h.claim(10, time.Minute, Base)
		equal(t, "deliveries claimed", len(claimed), 2)
		found := 0
		for i := range 2 {
			if list[i].ID == res[0].Event.ID {
				check("EventList", list[i], false)
				found++
			}
			if claimed[i].EventID == res[0].Event.ID {
				check("claimed", claimed[i].Event, true)
				found++
			}
		}
		equal(t, "listed and claimed", found, 2)

		// The same key again is a duplicate of the event stored under it.
		again := h.insertMany(at(time.Second), 0, input(ep, "key-"+outside, body))[0]
		equal(t, "second insert Duplicate", again.Duplicate, true)
		equal(t, "second insert ID", again.Event.ID, res[0].Event.ID)
	})

	t.Run("DeliveryComplete", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		ds := h.deliveries(ep, 2, Base)
		claimed := h.claim(10, time.Minute, Base)
		equal(t, "claimed", len(claimed), 2)
		var bad, good kapsel.DeliveryCompletion
		for _, c := range claimed {
			if c.ID == ds[0].ID {
				bad = completion(c, 500, kapsel.DeliveryPending, at(time.Second))
			} else {
				good = completion(c, 200, kapsel.DeliveryDelivered, at(time.Second))
			}
		}
		bad.NextAttemptAt = at(time.Minute)
		bad.Attempt.Error = "HTTP/1.1 500 " + outside
		bad.Attempt.ResponseBody = []byte(outside)
		bad.LastError = string(kapsel.CodeAttemptStatus) + ": " + bad.Attempt.Error
		good.Attempt.ResponseBody = []byte("fine")
		// One completion call for both: the poisoned one must not take its
		// neighbour down, nor be refused itself.
		for i, err := range h.complete(at(2*time.Second), bad, good) {
			must(t, err, "completion "+string(rune('0'+i)))
		}

		got := h.get(ds[0].ID)
		equal(t, "Attempts", got.Attempts, 1)
		equal(t, "Status", got.Status, kapsel.DeliveryPending)
		equal(t, "LastError", got.LastError, string(kapsel.CodeAttemptStatus)+": HTTP/1.1 500 "+stored)
		as := h.attempts(ds[0].ID)
		equal(t, "attempts recorded", len(as), 1)
		equal(t, "Attempt.Error", as[0].Error, "HTTP/1.1 500 "+stored)
		equal(t, "Attempt.StatusCode", as[0].StatusCode, 500)
		if !bytes.Equal(as[0].ResponseBody, []byte(outside)) {
			t.Fatalf("Attempt.ResponseBody = %q, want the bytes received %q", as[0].ResponseBody, outside)
		}
		equal(t, "neighbour Status", h.get(ds[1].ID).Status, kapsel.DeliveryDelivered)
		equal(t, "neighbour attempts", len(h.attempts(ds[1].ID)), 1)
	})

	t.Run("Names", func(t *testing.T) {
		h := setup(t, newStore)
		ten, err := h.s.TenantInsert(h.ctx, &kapsel.TenantInsertParams{
			Name: "acme " + outside, APIKeyHash: hash(randomBytes(16)), Now: Base,
		})
		must(t, err, "TenantInsert")
		equal(t, "inserted tenant Name", ten.Name, "acme "+stored)
		equal(t, "TenantGet Name", h.getTenant(ten.ID).Name, "acme "+stored)

		want := fullEndpoint(ten)
		want.Name = "orders " + outside
		ep, err := h.s.EndpointInsert(h.ctx, &kapsel.EndpointInsertParams{Endpoint: want, Now: Base})
		must(t, err, "EndpointInsert")
		equal(t, "inserted endpoint Name", ep.Name, "orders "+stored)
		equal(t, "EndpointGet Name", h.getEndpoint(ep.ID, ten.ID).Name, "orders "+stored)

		got, err := h.s.EndpointUpdate(h.ctx, &kapsel.EndpointUpdateParams{
			ID: ep.ID, TenantID: ten.ID, Now: at(time.Second),
			Update: func(e *kapsel.Endpoint) error { e.Name = "renamed " + outside; return nil },
		})
		must(t, err, "EndpointUpdate")
		equal(t, "updated endpoint Name", got.Name, "renamed "+stored)
		equal(t, "EndpointGet Name after update", h.getEndpoint(ep.ID, ten.ID).Name, "renamed "+stored)

		src0 := fullSource(ten)
		src0.Name = "github " + outside
		src, err := h.s.SourceInsert(h.ctx, &kapsel.SourceInsertParams{Source: src0, Now: Base})
		must(t, err, "SourceInsert")
		equal(t, "inserted source Name", src.Name, "github "+stored)
		equal(t, "SourceGet Name", h.getSource(src.ID, ten.ID).Name, "github "+stored)
		gotSrc, err := h.s.SourceUpdate(h.ctx, &kapsel.SourceUpdateParams{
			ID: src.ID, TenantID: ten.ID, Now: at(time.Second),
			Update: func(s *kapsel.Source) error { s.Name = "renamed " + outside; return nil },
		})
		must(t, err, "SourceUpdate")
		equal(t, "updated source Name", gotSrc.Name, "renamed "+stored)
		equal(t, "SourceGet Name after update", h.getSource(src.ID, ten.ID).Name, "renamed "+stored)
	})

	t.Run("IdempotentInsertWithoutBodyHash", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		payment := input(ep, "evt-1", []byte(`{"type":"payment"}`))
		refund := input(ep, "evt-1", []byte(`{"type":"refund"}`))
		refund.BodyHash = nil
		_, err := h.s.EventInsertMany(h.ctx, &kapsel.EventInsertManyParams{Events: []*kapsel.EventInsertParams{refund}, Now: Base})
		mustIs(t, err, kapsel.ErrInvalid, "EventInsertMany of a keyed event without BodyHash")

		// After a first event took the key, the hashless one is still
		// refused — never reported as its duplicate — and fails its whole
		// call: nothing of the call is written.
		h.insertMany(Base, 0, payment)
		_, err = h.s.EventInsertMany(h.ctx, &kapsel.EventInsertManyParams{
			Events: []*kapsel.EventInsertParams{input(ep, "", []byte(`{"n":2}`)), refund}, Now: at(time.Second),
		})
		mustIs(t, err, kapsel.ErrInvalid, "EventInsertMany with a hashless keyed row")
		equal(t, "events stored", len(h.listEvents(kapsel.EventListParams{TenantID: ep.TenantID, Limit: 10})), 1)

		// Without a key there is nothing to compare: no hash is fine.
		plain := input(ep, "", []byte(`{"n":3}`))
		plain.BodyHash = nil
		res := h.insertMany(at(2*time.Second), 0, plain)
		if res[0].Err != nil || res[0].Event == nil {
			t.Fatalf("keyless insert without BodyHash: %v", res[0].Err)
		}
	})
	t.Run("EndpointIDWithOutsideBytes", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		bad := input(ep, "", []byte(`{}`))
		bad.EndpointIDs = []kapsel.EndpointID{ep.ID + "\xff\x00"}
		res := h.insertMany(Base, 0, bad, input(ep, "", []byte(`{"ok":1}`)))
		mustIs(t, res[0].Err, kapsel.ErrNotFound, "row naming an endpoint id with invalid bytes")
		must(t, res[1].Err, "neighbour row")
		equal(t, "events stored", len(h.listEvents(kapsel.EventListParams{TenantID: ep.TenantID})), 1)
	})
}
