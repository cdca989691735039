package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// typed returns insert params for one event sent to ep alone with the type,
// key and body.
func typed(ep *kapsel.Endpoint, typ, key string, body []byte) *kapsel.EventInsertParams {
	in := input(ep, key, body)
	in.Type = typ
	return in
}

// testEventTypes checks that an event's type is stored, returned by every
// read and listed by.
func testEventTypes(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("RoundTrip", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		body := []byte(`{"type":"invoice.paid"}`)
		res := h.insertMany(Base, 0, typed(ep, "invoice.paid", "k1", body), typed(ep, "", "", []byte(`{}`)))
		for i, r := range res {
			if r.Err != nil || r.Duplicate {
				t.Fatalf("row %d: err %v, duplicate %v", i, r.Err, r.Duplicate)
			}
		}
		id, untyped := res[0].Event.ID, res[1].Event.ID
		equal(t, "inserted Type", res[0].Event.Type, "invoice.paid")
		equal(t, "inserted untyped Type", res[1].Event.Type, "")
		equal(t, "EventGet Type", h.getEvent(id).Type, "invoice.paid")
		noBody, err := h.s.EventGet(h.ctx, &kapsel.EventGetParams{ID: id, TenantID: ep.TenantID})
		must(t, err, "EventGet without body")
		equal(t, "EventGet without body Type", noBody.Type, "invoice.paid")
		equal(t, "EventGet untyped Type", h.getEvent(untyped).Type, "")
		for _, e := range h.listEvents(kapsel.EventListParams{TenantID: ep.TenantID}) {
			want := map[kapsel.EventID]string{id: "invoice.paid", untyped: ""}[e.ID]
			equal(t, "EventList Type", e.Type, want)
		}

		// The key's owner, returned for a duplicate: in a later call, and
		// within the call that stored it.
		dup := h.insertMany(at(time.Second), 0, typed(ep, "other.type", "k1", body))[0]
		if !dup.Duplicate || dup.Event.ID != id {
			t.Fatalf("same key and body: %+v, want a duplicate of %s", dup, id)
		}
		equal(t, "duplicate Type (the first event's)", dup.Event.Type, "invoice.paid")
		batch := h.insertMany(at(time.Second), 0, typed(ep, "a.b", "k2", body), typed(ep, "c.d", "k2", body))
		if !batch[1].Duplicate || batch[1].Event.ID != batch[0].Event.ID {
			t.Fatalf("same key twice in one call: %+v", batch[1])
		}
		equal(t, "in-call duplicate Type", batch[1].Event.Type, "a.b")

		claimed := h.claim(10, time.Minute, at(2*time.Second))
		equal(t, "claimed", len(claimed), 3)
		types := map[kapsel.EventID]string{}
		for _, d := range claimed {
			types[d.EventID] = d.Event.Type
		}
		equal(t, "claimed Type", types[id], "invoice.paid")
		equal(t, "claimed untyped Type", types[untyped], "")
		equal(t, "claimed batch Type", types[batch[0].Event.ID], "a.b")
	})

	t.Run("MadeSafeAndCut", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		long := strings.Repeat("t", kapsel.MaxEventTypeLen-1) + "é" // 256 bytes
		// One call: an odd type fails neither its own row nor a neighbour.
		res := h.insertMany(Base, 0,
			typed(ep, "push"+outside, "", []byte("1")), typed(ep, long, "", []byte("2")), typed(ep, "ok", "", []byte("3")))
		want := []string{"push" + stored, long[:kapsel.MaxEventTypeLen-1], "ok"}
		for i, r := range res {
			if r.Err != nil || r.Event == nil {
				t.Fatalf("row %d: err %v", i, r.Err)
			}
			equal(t, "inserted Type", r.Event.Type, want[i])
			equal(t, "EventGet Type", h.getEvent(r.Event.ID).Type, want[i])
		}
		for _, typ := range want {
			list := h.listEvents(kapsel.EventListParams{TenantID: ep.TenantID, Type: typ})
			if len(list) != 1 || list[0].Type != typ {
				t.Fatalf("EventList of type %q = %v, want one event", typ, eventIDs(list))
			}
		}
		equal(t, "EventList of the type as sent (not as stored)",
			len(h.listEvents(kapsel.EventListParams{TenantID: ep.TenantID, Type: "push" + outside})), 0)
	})

	t.Run("ListFilter", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		h.endpoint(a)
		h.endpoint(b)
		src1, src2, foreign := h.source(a), h.source(a), h.source(b)
		ev := func(src *kapsel.Source, typ string, body []byte) *kapsel.EventInsertParams {
			in := ingested(src, "", body)
			in.Type = typ
			return in
		}
		var paid, refunded, none, paidOn1 []kapsel.EventID
		for i := range 5 {
			in := []*kapsel.EventInsertParams{
				ev(src1, "invoice.paid", []byte{'p', byte('0' + i)}),
				ev(src2, "invoice.refunded", []byte{'r', byte('0' + i)}),
				ev(src1, "", []byte{'n', byte('0' + i)}),
				ev(foreign, "invoice.paid", []byte{'f', byte('0' + i)}),
			}
			if i < 2 {
				in = append(in, ev(src2, "invoice.paid", []byte{'q', byte('0' + i)}))
			}
			evs := h.insertNew(at(time.Duration(i)*time.Second), in...)
			paid = append(paid, evs[0].ID)
			paidOn1 = append(paidOn1, evs[0].ID)
			refunded = append(refunded, evs[1].ID)
			none = append(none, evs[2].ID)
			if i < 2 {
				paid = append(paid, evs[4].ID)
			}
		}
		// Sends have no source; the type filter finds them too.
		sent := send(a.ID, "", []byte("s"))
		sent.Type = "invoice.paid"
		paid = append(paid, h.insertNew(at(10*time.Second), sent)[0].ID)
		slices.Sort(paid)

		page := func(p kapsel.EventListParams) []kapsel.EventID {
			t.Helper()
			p.Limit = 2
			var out []kapsel.EventID
			for range 20 {
				list, err := h.s.EventList(h.ctx, &p)
				must(t, err, "EventList")
				if len(list) == 0 {
					return out
				}
				for _, e := range list {
					if p.Type != "" && e.Type != p.Type {
						t.Fatalf("EventList of type %q listed an event of type %q", p.Type, e.Type)
					}
					out = append(out, e.ID)
				}
				p.Cursor = list[len(list)-1].ID
			}
			t.Fatal("EventList pagination does not end")
			return nil
		}
		for _, c := range []struct {
			name string
			p    kapsel.EventListParams
			want []kapsel.EventID
		}{
			{"type", kapsel.EventListParams{TenantID: a.ID, Type: "invoice.paid"}, paid},
			{"other type", kapsel.EventListParams{TenantID: a.ID, Type: "invoice.refunded"}, refunded},
			{"type and source", kapsel.EventListParams{TenantID: a.ID, SourceID: src1.ID, Type: "invoice.paid"}, paidOn1},
			{"no such type", kapsel.EventListParams{TenantID: a.ID, Type: "invoice"}, nil},
			{"exact, not a prefix", kapsel.EventListParams{TenantID: a.ID, Type: "invoice.*"}, nil},
			{"case matters", kapsel.EventListParams{TenantID: a.ID, Type: "Invoice.Paid"}, nil},
			{"foreign source", kapsel.EventListParams{TenantID: b.ID, SourceID: src1.ID, Type: "invoice.paid"}, nil},
		} {
			if got := page(c.p); !slices.Equal(got, c.want) {
				t.Fatalf("%s: paged EventList = %v, want %v", c.name, got, c.want)
			}
		}
		// Empty means any type; the other tenant's events never show.
		all := page(kapsel.EventListParams{TenantID: a.ID})
		equal(t, "events of any type", len(all), len(paid)+len(refunded)+len(none))
		for _, id := range all {
			if h.getEvent(id).TenantID != a.ID {
				t.Fatalf("EventList of tenant %s listed %s of another tenant", a.ID, id)
			}
		}
		equal(t, "other tenant's events of the type",
			len(page(kapsel.EventListParams{TenantID: b.ID, Type: "invoice.paid"})), 5)
	})
}
