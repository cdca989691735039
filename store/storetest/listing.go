package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// pageAll lists with list page by page (Limit 2) and returns the ids in the
// order listed.
func pageAll[T any, ID comparable](t *testing.T, list func(cursor ID) []T, id func(T) ID, check func(T)) []ID {
	t.Helper()
	var out []ID
	var cursor ID
	for range 50 {
		page := list(cursor)
		if len(page) > 2 {
			t.Fatalf("page of %d items with Limit 2", len(page))
		}
		if len(page) == 0 {
			return out
		}
		for _, x := range page {
			check(x)
			out = append(out, id(x))
		}
		cursor = id(page[len(page)-1])
	}
	t.Fatal("pagination does not end")
	return nil
}

func sortedIDs[ID ~string](s ...[]ID) []ID {
	out := slices.Concat(s...)
	slices.Sort(out)
	return out
}

func testListing(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("EventPagesAndFilters", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		h.endpoint(a)
		h.endpoint(a)
		h.endpoint(b)
		src1, src2, foreign := h.source(a), h.source(a), h.source(b)
		var all1, all2, sent []kapsel.EventID
		for i := range 5 {
			all1 = append(all1, h.insertNew(Base, ingested(src1, "", []byte(fmt.Sprint(i))))[0].ID)
		}
		for i := range 2 {
			all2 = append(all2, h.insertNew(Base, ingested(src2, "", []byte(fmt.Sprint(i))))[0].ID)
		}
		sent = append(sent, h.insertNew(Base, send(a.ID, "", []byte("s")))[0].ID)
		h.insertNew(Base, ingested(foreign, "", []byte("f")), ingested(foreign, "", []byte("g")))
		// One event's deliveries move on; the listed summary follows.
		for _, d := range h.listDeliveries(kapsel.DeliveryListParams{EventID: all1[1]}) {
			h.finish(d.ID, kapsel.DeliveryDelivered, at(time.Minute))
			break
		}

		page := func(p kapsel.EventListParams) []kapsel.EventID {
			t.Helper()
			return pageAll(t, func(cursor kapsel.EventID) []*kapsel.Event {
				p.Limit, p.Cursor = 2, cursor
				list, err := h.s.EventList(h.ctx, &p)
				must(t, err, "EventList")
				return list
			}, func(e *kapsel.Event) kapsel.EventID { return e.ID }, func(e *kapsel.Event) {
				if len(e.Body) != 0 || e.Size == 0 {
					t.Fatalf("listed event: Body %q, Size %d; want no body and its size", e.Body, e.Size)
				}
				want := kapsel.DeliverySummary{Total: 2, Pending: 2}
				if e.ID == all1[1] {
					want = kapsel.DeliverySummary{Total: 2, Pending: 1, Delivered: 1}
				}
				if e.TenantID == b.ID {
					want = kapsel.DeliverySummary{Total: 1, Pending: 1}
				}
				summary(t, "listed event", e.Deliveries, want)
			})
		}
		cases := []struct {
			name string
			p    kapsel.EventListParams
			want []kapsel.EventID
		}{
			{"tenant", kapsel.EventListParams{TenantID: a.ID}, sortedIDs(all1, all2, sent)},
			{"source", kapsel.EventListParams{TenantID: a.ID, SourceID: src1.ID}, sortedIDs(all1)},
			{"source, no tenant check", kapsel.EventListParams{SourceID: src2.ID}, sortedIDs(all2)},
			{"foreign source", kapsel.EventListParams{TenantID: b.ID, SourceID: src1.ID}, nil},
			{"unknown source", kapsel.EventListParams{TenantID: a.ID, SourceID: kapsel.NewSourceID()}, nil},
		}
		for _, c := range cases {
			if got := page(c.p); !slices.Equal(got, c.want) {
				t.Fatalf("%s: paged EventList = %v, want %v", c.name, got, c.want)
			}
		}
	})

	t.Run("DeliveryPagesAndFilters", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		ep1, ep2, foreign := h.endpoint(a), h.endpoint(a), h.endpoint(b)
		evs := h.insertNew(Base,
			send(a.ID, "", []byte("0")), send(a.ID, "", []byte("1")), send(a.ID, "", []byte("2")), send(b.ID, "", []byte("3")))
		of := func(ev int, ep *kapsel.Endpoint) kapsel.DeliveryID { return h.deliveryOf(evs[ev].ID, ep.ID).ID }
		h.finish(of(0, ep1), kapsel.DeliveryDelivered, at(time.Minute))
		h.finish(of(1, ep1), kapsel.DeliveryFailed, at(time.Minute))
		h.finish(of(1, ep2), kapsel.DeliveryDelivered, at(time.Minute))
		h.lease(of(2, ep2), time.Hour, at(time.Minute))

		page := func(p kapsel.DeliveryListParams) []kapsel.DeliveryID {
			t.Helper()
			return pageAll(t, func(cursor kapsel.DeliveryID) []*kapsel.Delivery {
				p.Limit, p.Cursor = 2, cursor
				list, err := h.s.DeliveryList(h.ctx, &p)
				must(t, err, "DeliveryList")
				return list
			}, func(d *kapsel.Delivery) kapsel.DeliveryID { return d.ID }, func(d *kapsel.Delivery) {
				if d.Event != nil {
					t.Fatal("a listed delivery comes with its event")
				}
				switch {
				case p.EndpointID != "" && d.EndpointID != p.EndpointID,
					p.EventID != "" && d.EventID != p.EventID,
					p.Status != "" && d.Status != p.Status,
					p.TenantID != "" && d.TenantID != p.TenantID:
					t.Fatalf("DeliveryList %+v listed %+v", p, d)
				}
			})
		}
		pairs := func(pairs ...[2]int) []kapsel.DeliveryID {
			var out []kapsel.DeliveryID
			for _, p := range pairs {
				out = append(out, of(p[0], []*kapsel.Endpoint{ep1, ep2}[p[1]]))
			}
			slices.Sort(out)
			return out
		}
		cases := []struct {
			name string
			p    kapsel.DeliveryListParams
			want []kapsel.DeliveryID
		}{
			{"tenant", kapsel.DeliveryListParams{TenantID: a.ID}, pairs([2]int{0, 0}, [2]int{0, 1}, [2]int{1, 0}, [2]int{1, 1}, [2]int{2, 0}, [2]int{2, 1})},
			{"endpoint", kapsel.DeliveryListParams{TenantID: a.ID, EndpointID: ep1.ID}, pairs([2]int{0, 0}, [2]int{1, 0}, [2]int{2, 0})},
			{"event", kapsel.DeliveryListParams{TenantID: a.ID, EventID: evs[1].ID}, pairs([2]int{1, 0}, [2]int{1, 1})},
			{"status delivered", kapsel.DeliveryListParams{TenantID: a.ID, Status: kapsel.DeliveryDelivered}, pairs([2]int{0, 0}, [2]int{1, 1})},
			{"status failed", kapsel.DeliveryListParams{TenantID: a.ID, Status: kapsel.DeliveryFailed}, pairs([2]int{1, 0})},
			{"status delivering", kapsel.DeliveryListParams{TenantID: a.ID, Status: kapsel.DeliveryDelivering}, pairs([2]int{2, 1})},
			{"status pending", kapsel.DeliveryListParams{TenantID: a.ID, Status: kapsel.DeliveryPending}, pairs([2]int{0, 1}, [2]int{2, 0})},
			{"endpoint and status", kapsel.DeliveryListParams{EndpointID: ep2.ID, Status: kapsel.DeliveryDelivered}, pairs([2]int{1, 1})},
			{"event and endpoint", kapsel.DeliveryListParams{EventID: evs[2].ID, EndpointID: ep1.ID}, pairs([2]int{2, 0})},
			{"event, endpoint and status", kapsel.DeliveryListParams{EventID: evs[2].ID, EndpointID: ep1.ID, Status: kapsel.DeliveryFailed}, nil},
			{"foreign endpoint", kapsel.DeliveryListParams{TenantID: b.ID, EndpointID: ep1.ID}, nil},
			{"foreign event", kapsel.DeliveryListParams{TenantID: b.ID, EventID: evs[0].ID}, nil},
			{"other tenant", kapsel.DeliveryListParams{TenantID: b.ID}, []kapsel.DeliveryID{h.deliveryOf(evs[3].ID, foreign.ID).ID}},
		}
		for _, c := range cases {
			if got := page(c.p); !slices.Equal(got, c.want) {
				t.Fatalf("%s: paged DeliveryList = %v, want %v", c.name, got, c.want)
			}
		}

		d := h.deliveryOf(evs[0].ID, ep1.ID)
		got, err := h.s.DeliveryGet(h.ctx, &kapsel.DeliveryGetParams{ID: d.ID, TenantID: a.ID})
		must(t, err, "DeliveryGet by its tenant")
		equal(t, "ID", got.ID, d.ID)
		equal(t, "Status", got.Status, kapsel.DeliveryDelivered)
		_, err = h.s.DeliveryGet(h.ctx, &kapsel.DeliveryGetParams{ID: d.ID, TenantID: b.ID})
		mustIs(t, err, kapsel.ErrNotFound, "DeliveryGet by another tenant")
		_, err = h.s.DeliveryGet(h.ctx, &kapsel.DeliveryGetParams{ID: kapsel.NewDeliveryID()})
		mustIs(t, err, kapsel.ErrNotFound, "DeliveryGet of an unknown id")
	})

	t.Run("PageLimits", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		wantEvents := eventIDs(h.events(ep, kapsel.MaxPageLimit+1, Base))
		slices.Sort(wantEvents)
		events := func(limit int) []*kapsel.Event {
			l, err := h.s.EventList(h.ctx, &kapsel.EventListParams{TenantID: ep.TenantID, Limit: limit})
			must(t, err, "EventList")
			return l
		}
		equal(t, "events with Limit 0", len(events(0)), kapsel.DefaultPageLimit)
		got := events(kapsel.MaxPageLimit * 2)
		equal(t, "events with Limit over the cap", len(got), kapsel.MaxPageLimit)
		if !slices.Equal(eventIDs(got), wantEvents[:kapsel.MaxPageLimit]) {
			t.Fatal("a full page of events is not the first ids in order")
		}

		deliveries := func(limit int) []*kapsel.Delivery {
			l, err := h.s.DeliveryList(h.ctx, &kapsel.DeliveryListParams{EndpointID: ep.ID, Limit: limit})
			must(t, err, "DeliveryList")
			return l
		}
		equal(t, "deliveries with Limit 0", len(deliveries(0)), kapsel.DefaultPageLimit)
		all := h.listDeliveries(kapsel.DeliveryListParams{EndpointID: ep.ID})
		equal(t, "deliveries", len(all), kapsel.MaxPageLimit+1)
		wantDeliveries := ids(all)
		if !slices.IsSorted(wantDeliveries) {
			t.Fatal("DeliveryList pages are not in id order")
		}
		if got := deliveries(kapsel.MaxPageLimit * 2); !slices.Equal(ids(got), wantDeliveries[:kapsel.MaxPageLimit]) {
			t.Fatalf("a page of deliveries with Limit over the cap has %d, not the first %d ids in order", len(got), kapsel.MaxPageLimit)
		}
	})
}
