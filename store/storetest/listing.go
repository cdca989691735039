package storetest

import (
	"slices"
	"testing"

	"github.com/kapsel-dev/kapsel"
)

func testListing(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("EventPagesAndFilters", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		ep1, ep2, foreign := h.endpoint(a), h.endpoint(a), h.endpoint(b)
		all1 := ids(h.events(ep1, 5, Base))
		all2 := ids(h.events(ep2, 2, Base))
		h.events(foreign, 3, Base)
		h.finish(all1[1], kapsel.EventDelivered, Base)
		h.finish(all2[0], kapsel.EventDelivered, Base)

		page := func(p kapsel.EventListParams) []kapsel.EventID {
			var out []kapsel.EventID
			for range 20 {
				list, err := h.s.EventList(h.ctx, &p)
				must(t, err, "EventList")
				if len(list) > p.Limit {
					t.Fatalf("page of %d events with Limit %d", len(list), p.Limit)
				}
				if len(list) == 0 {
					return out
				}
				for _, e := range list {
					if len(e.Body) != 0 || e.Size == 0 {
						t.Fatalf("listed event: Body %q, Size %d; want no body and its size", e.Body, e.Size)
					}
					out = append(out, e.ID)
				}
				p.Cursor = list[len(list)-1].ID
			}
			t.Fatal("EventList pagination does not end")
			return nil
		}
		sorted := func(s ...[]kapsel.EventID) []kapsel.EventID {
			out := slices.Concat(s...)
			slices.Sort(out)
			return out
		}
		cases := []struct {
			name string
			p    kapsel.EventListParams
			want []kapsel.EventID
		}{
			{"tenant", kapsel.EventListParams{TenantID: a.ID}, sorted(all1, all2)},
			{"endpoint", kapsel.EventListParams{TenantID: a.ID, EndpointID: ep1.ID}, sorted(all1)},
			{"status", kapsel.EventListParams{TenantID: a.ID, Status: kapsel.EventDelivered}, sorted([]kapsel.EventID{all1[1], all2[0]})},
			{"endpoint and status", kapsel.EventListParams{EndpointID: ep1.ID, Status: kapsel.EventPending},
				sorted([]kapsel.EventID{all1[0], all1[2], all1[3], all1[4]})},
			{"foreign endpoint", kapsel.EventListParams{TenantID: b.ID, EndpointID: ep1.ID}, nil},
		}
		for _, c := range cases {
			c.p.Limit = 2
			if got := page(c.p); !slices.Equal(got, c.want) {
				t.Fatalf("%s: paged EventList = %v, want %v", c.name, got, c.want)
			}
		}
	})

	t.Run("PageLimits", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		want := ids(h.events(ep, kapsel.MaxPageLimit+1, Base))
		slices.Sort(want)
		list := func(limit int) []*kapsel.Event {
			l, err := h.s.EventList(h.ctx, &kapsel.EventListParams{EndpointID: ep.ID, Limit: limit})
			must(t, err, "EventList")
			return l
		}
		equal(t, "len with Limit 0", len(list(0)), kapsel.DefaultPageLimit)
		got := list(kapsel.MaxPageLimit * 2)
		equal(t, "len with Limit over the cap", len(got), kapsel.MaxPageLimit)
		if !slices.Equal(ids(got), want[:kapsel.MaxPageLimit]) {
			t.Fatal("a full page is not the first ids in order")
		}
	})
}
