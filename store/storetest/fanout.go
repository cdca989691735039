package storetest

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// pair is one (event, endpoint): at most one delivery each (I10).
type pair struct {
	event    kapsel.EventID
	endpoint kapsel.EndpointID
}

// endpointsOf returns the endpoints the deliveries go to, sorted.
func endpointsOf(ds []*kapsel.Delivery) []kapsel.EndpointID {
	out := make([]kapsel.EndpointID, len(ds))
	for i, d := range ds {
		out[i] = d.EndpointID
	}
	slices.Sort(out)
	return out
}

// testFanOut checks fan-out at insert (I10 of docs/guarantees.md): one
// delivery per (event, matching endpoint), decided in the transaction that
// stores the event, whatever runs beside it.
func testFanOut(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	// The filters, through the store: exact types, prefix.*, *, source ids,
	// channels, empty lists, combinations; paused and disabled endpoints
	// get theirs; deleted and foreign ones get none.
	t.Run("OnePerMatchingEndpoint", func(t *testing.T) {
		h := setup(t, newStore)
		ten, other := h.tenant(), h.tenant()
		s1, s2 := h.source(ten), h.source(ten)
		sub := func(types []string, sources []kapsel.SourceID, channels []string) kapsel.Subscription {
			return kapsel.Subscription{EventTypes: types, SourceIDs: sources, Channels: channels}
		}
		eps := map[string]*kapsel.Endpoint{
			"all":      h.subscribed(ten, sub(nil, nil, nil)),
			"star":     h.subscribed(ten, sub([]string{"*"}, nil, nil)),
			"exact":    h.subscribed(ten, sub([]string{"invoice.paid"}, nil, nil)),
			"prefix":   h.subscribed(ten, sub([]string{"invoice.*"}, nil, nil)),
			"multi":    h.subscribed(ten, sub([]string{"customer.created", "invoice.paid"}, nil, nil)),
			"src1":     h.subscribed(ten, sub(nil, []kapsel.SourceID{s1.ID}, nil)),
			"src12":    h.subscribed(ten, sub(nil, []kapsel.SourceID{s1.ID, s2.ID}, nil)),
			"eu":       h.subscribed(ten, sub(nil, nil, []string{"eu"})),
			"prefix1":  h.subscribed(ten, sub([]string{"invoice.*"}, []kapsel.SourceID{s1.ID}, nil)),
			"prefixEU": h.subscribed(ten, sub([]string{"invoice.*"}, nil, []string{"us", "eu"})),
			"paused":   h.endpoint(ten),
			"disabled": h.subscribed(ten, sub([]string{"invoice.*"}, nil, nil)),
			"deleted":  h.endpoint(ten),
			"foreign":  h.endpoint(other),
		}
		h.setState(eps["paused"], kapsel.EndpointPaused, "", Base)
		h.setState(eps["disabled"], kapsel.EndpointDisabled, kapsel.DisabledGone, Base)
		h.deleteEndpoint(eps["deleted"], Base)

		ev := func(src *kapsel.Source, typ string, channels ...string) *kapsel.EventInsertParams {
			in := send(ten.ID, "", randomBytes(8))
			if src != nil {
				in.SourceID = src.ID
			}
			in.Type, in.Channels = typ, channels
			return in
		}
		rows := []struct {
			in   *kapsel.EventInsertParams
			want []string // besides all, star and paused, which take every event
		}{
			{ev(s1, "invoice.paid"), []string{"exact", "prefix", "multi", "src1", "src12", "prefix1", "disabled"}},
			{ev(s2, "invoice.payment.failed"), []string{"prefix", "src12", "disabled"}},
			{ev(s1, ""), []string{"src1", "src12"}},
			{ev(nil, "invoice.paid", "eu"), []string{"exact", "prefix", "multi", "eu", "prefixEU", "disabled"}},
			{ev(nil, "invoices.paid", "us"), nil},
			{ev(nil, "invoice", "us"), nil},
			{ev(nil, "customer.created", "apac", "eu"), []string{"multi", "eu"}},
			{ev(s2, "Invoice.Paid"), []string{"src12"}},
			{ev(nil, "invoice.x", "us"), []string{"prefix", "prefixEU", "disabled"}},
		}
		in := make([]*kapsel.EventInsertParams, len(rows))
		for i, r := range rows {
			in[i] = r.in
		}
		// Two calls: a batch fans out row by row.
		evs := append(h.insertNew(at(time.Second), in[:4]...), h.insertNew(at(2*time.Second), in[4:]...)...)
		for i, r := range rows {
			want := []kapsel.EndpointID{eps["all"].ID, eps["star"].ID, eps["paused"].ID}
			for _, name := range r.want {
				want = append(want, eps[name].ID)
			}
			slices.Sort(want)
			// The table is the suite's own reading of the matching rule;
			// it must agree with the rule itself.
			var byRule []kapsel.EndpointID
			for name, ep := range eps {
				if name != "deleted" && ep.Receives(evs[i].Routing()) {
					byRule = append(byRule, ep.ID)
				}
			}
			slices.Sort(byRule)
			if !slices.Equal(byRule, want) {
				t.Fatalf("row %d: the suite's table disagrees with kapsel's matching rule: %v, rule %v", i, want, byRule)
			}

			ds := h.listDeliveries(kapsel.DeliveryListParams{EventID: evs[i].ID})
			if got := endpointsOf(ds); !slices.Equal(got, want) {
				names := map[kapsel.EndpointID]string{}
				for name, ep := range eps {
					names[ep.ID] = name
				}
				gotNames, wantNames := []string{}, []string{}
				for _, id := range got {
					gotNames = append(gotNames, names[id])
				}
				for _, id := range want {
					wantNames = append(wantNames, names[id])
				}
				slices.Sort(gotNames)
				slices.Sort(wantNames)
				t.Fatalf("event %d (source %q, type %q, channels %q) went to %v, want %v",
					i, r.in.SourceID, r.in.Type, r.in.Channels, gotNames, wantNames)
			}
			for _, d := range ds {
				equal(t, "Status", d.Status, kapsel.DeliveryPending)
				equal(t, "TenantID", d.TenantID, ten.ID)
				sameTime(t, "NextAttemptAt", d.NextAttemptAt, evs[i].CreatedAt)
				equal(t, "NextTrigger", d.NextTrigger, kapsel.TriggerScheduled)
			}
			n := len(want)
			summary(t, fmt.Sprintf("inserted event %d", i), evs[i].Deliveries, kapsel.DeliverySummary{Total: n, Pending: n})
			summary(t, fmt.Sprintf("event %d", i), h.getEvent(evs[i].ID).Deliveries, kapsel.DeliverySummary{Total: n, Pending: n})
		}
		equal(t, "deliveries of the deleted endpoint", len(h.listDeliveries(kapsel.DeliveryListParams{EndpointID: eps["deleted"].ID})), 0)
		equal(t, "deliveries of the other tenant", len(h.listDeliveries(kapsel.DeliveryListParams{TenantID: other.ID})), 0)
	})

	// A send naming its endpoints (EndpointIDs) goes to exactly those,
	// whatever their filters and states; a row naming one it may not is
	// refused alone.
	t.Run("EndpointIDs", func(t *testing.T) {
		h := setup(t, newStore)
		a, b := h.tenant(), h.tenant()
		picky := h.subscribed(a, kapsel.Subscription{EventTypes: []string{"never.*"}})
		paused := h.endpoint(a)
		h.setState(paused, kapsel.EndpointPaused, "", Base)
		subscriber := h.endpoint(a) // takes every event, but is not named
		deleted := h.deletedEndpoint(a)
		foreign := h.endpoint(b)
		to := func(key string, body string, eps ...kapsel.EndpointID) *kapsel.EventInsertParams {
			in := send(a.ID, key, []byte(body))
			in.EndpointIDs = eps
			return in
		}
		res := h.insertMany(Base, 0,
			to("", "0", picky.ID, paused.ID),
			to("k1", "1", picky.ID, foreign.ID),
			to("k2", "2", deleted.ID),
			to("k3", "3", kapsel.NewEndpointID()),
			to("", "4", picky.ID, picky.ID, paused.ID, picky.ID),
			to("k5", "5", paused.ID, foreign.ID, picky.ID),
		)
		for _, i := range []int{1, 2, 3, 5} {
			mustIs(t, res[i].Err, kapsel.ErrNotFound, fmt.Sprintf("row %d naming an endpoint not visible to its tenant", i))
		}
		want := []kapsel.EndpointID{picky.ID, paused.ID}
		slices.Sort(want)
		var written []kapsel.EventID
		for _, i := range []int{0, 4} {
			r := res[i]
			if r.Err != nil || r.Duplicate || r.Event == nil {
				t.Fatalf("row %d: err %v, duplicate %v", i, r.Err, r.Duplicate)
			}
			summary(t, fmt.Sprintf("row %d", i), r.Event.Deliveries, kapsel.DeliverySummary{Total: 2, Pending: 2})
			if got := endpointsOf(h.listDeliveries(kapsel.DeliveryListParams{EventID: r.Event.ID})); !slices.Equal(got, want) {
				t.Fatalf("row %d went to %v, want the endpoints it named once each %v", i, got, want)
			}
			written = append(written, r.Event.ID)
		}
		if got := eventIDs(h.listEvents(kapsel.EventListParams{TenantID: a.ID})); !slices.Equal(got, written) {
			t.Fatalf("events stored = %v, want only the rows that succeeded %v", got, written)
		}
		equal(t, "events of the other tenant", len(h.listEvents(kapsel.EventListParams{TenantID: b.ID})), 0)
		for _, ep := range []*kapsel.Endpoint{subscriber, deleted, foreign} {
			equal(t, "deliveries of an endpoint not named", len(h.listDeliveries(kapsel.DeliveryListParams{EndpointID: ep.ID})), 0)
		}
		// A refused row took no key: the same key with valid endpoints
		// makes a new event.
		for _, key := range []string{"k1", "k2", "k3", "k5"} {
			r := h.insertMany(at(time.Second), 0, to(key, "again", picky.ID))[0]
			if r.Err != nil || r.Duplicate {
				t.Fatalf("key %s of a refused row: err %v, duplicate %v; want a new event", key, r.Err, r.Duplicate)
			}
		}
	})

	// The idempotency key is decided before the endpoints named: a retried
	// send gets its first answer even when an endpoint it names has been
	// deleted since (a duplicate, or a conflict for another body), and two
	// rows with one key in a call behave as if inserted one after the
	// other. A row with a free key naming a deleted endpoint is refused
	// and takes no key.
	t.Run("RetryAfterNamedEndpointDeleted", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		gone, kept := h.endpoint(ten), h.endpoint(ten)
		first := h.insertNew(Base, input(gone, "k1", []byte("1")))[0]
		h.deleteEndpoint(gone, at(time.Second))
		second := input(kept, "k2", []byte("2"))
		res := h.insertMany(at(2*time.Second), 0,
			input(gone, "k1", []byte("1")),     // the retry
			input(gone, "k1", []byte("other")), // the key with another body
			second,
			input(gone, "k2", []byte("2")), // second's key, in the same call
			input(gone, "k3", []byte("3")), // a free key
		)
		if r := res[0]; r.Err != nil || !r.Duplicate || r.Event == nil || r.Event.ID != first.ID {
			t.Fatalf("the retry of a send whose endpoint was deleted since = %+v, want a duplicate of %s", r, first.ID)
		}
		mustIs(t, res[1].Err, kapsel.ErrIdempotencyConflict, "the key of a deleted endpoint's send with another body")
		if r := res[2]; r.Err != nil || r.Duplicate {
			t.Fatalf("a send to a live endpoint: err %v, duplicate %v", r.Err, r.Duplicate)
		}
		if r := res[3]; r.Err != nil || !r.Duplicate || r.Event == nil || r.Event.ID != res[2].Event.ID {
			t.Fatalf("a row with the key of an earlier row of the call = %+v, want a duplicate of %s", r, res[2].Event.ID)
		}
		mustIs(t, res[4].Err, kapsel.ErrNotFound, "a row with a free key naming a deleted endpoint")
		equal(t, "events stored", len(h.listEvents(kapsel.EventListParams{TenantID: ten.ID})), 2)
		r := h.insertMany(at(3*time.Second), 0, input(kept, "k3", []byte("again")))[0]
		if r.Err != nil || r.Duplicate {
			t.Fatalf("the key of the refused row: err %v, duplicate %v; want a new event", r.Err, r.Duplicate)
		}
	})

	t.Run("ZeroSubscribers", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		h.subscribed(ten, kapsel.Subscription{EventTypes: []string{"customer.*"}})
		h.deletedEndpoint(ten)
		h.endpoint(h.tenant()) // another tenant's takes every event of its own
		in := send(ten.ID, "k", []byte(`{"lonely":true}`))
		in.Type = "invoice.paid"
		ev := h.insertNew(Base, in)[0]
		summary(t, "inserted event", ev.Deliveries, kapsel.DeliverySummary{})
		got := h.getEvent(ev.ID)
		equal(t, "Type", got.Type, "invoice.paid")
		summary(t, "EventGet", got.Deliveries, kapsel.DeliverySummary{})
		list := h.listEvents(kapsel.EventListParams{TenantID: ten.ID, Type: "invoice.paid"})
		if len(list) != 1 || list[0].ID != ev.ID {
			t.Fatalf("EventList = %v, want the event without deliveries", eventIDs(list))
		}
		summary(t, "EventList", list[0].Deliveries, kapsel.DeliverySummary{})
		equal(t, "deliveries", len(h.listDeliveries(kapsel.DeliveryListParams{EventID: ev.ID})), 0)
		equal(t, "claimed", len(h.claim(10, time.Minute, at(time.Hour))), 0)
		// It holds its key like any event.
		dup := h.insertMany(at(time.Second), 0, send(ten.ID, "k", []byte(`{"lonely":true}`)))[0]
		if !dup.Duplicate || dup.Event.ID != ev.ID {
			t.Fatalf("same key again: %+v, want a duplicate of %s", dup, ev.ID)
		}
	})

	// I10: deliveries are decided at insert. Endpoints created, re-filtered,
	// paused or resumed later change no past event.
	t.Run("Frozen", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		typed := func(typ string) *kapsel.EventInsertParams {
			in := send(ten.ID, "", randomBytes(8))
			in.Type = typ
			return in
		}
		a := h.subscribed(ten, kapsel.Subscription{EventTypes: []string{"invoice.*"}})
		first := h.insertNew(Base, typed("invoice.paid"), typed("customer.created"))
		b := h.endpoint(ten)
		_, err := h.s.EndpointUpdate(h.ctx, &kapsel.EndpointUpdateParams{
			ID: a.ID, TenantID: ten.ID, Now: at(time.Minute),
			Update: func(e *kapsel.Endpoint) error {
				e.Subscription = kapsel.Subscription{EventTypes: []string{"customer.*"}}
				return nil
			},
		})
		must(t, err, "EndpointUpdate")
		h.setState(a, kapsel.EndpointPaused, "", at(time.Minute))
		h.setState(a, kapsel.EndpointActive, "", at(2*time.Minute))
		if got := endpointsOf(h.listDeliveries(kapsel.DeliveryListParams{EventID: first[0].ID})); !slices.Equal(got, []kapsel.EndpointID{a.ID}) {
			t.Fatalf("past invoice event's deliveries = %v, want only %s's, made at insert", got, a.ID)
		}
		equal(t, "past customer event's deliveries", len(h.listDeliveries(kapsel.DeliveryListParams{EventID: first[1].ID})), 0)
		equal(t, "deliveries of the endpoint created since", len(h.listDeliveries(kapsel.DeliveryListParams{EndpointID: b.ID})), 0)

		later := h.insertNew(at(3*time.Minute), typed("invoice.paid"), typed("customer.created"))
		want := []kapsel.EndpointID{a.ID, b.ID}
		slices.Sort(want)
		if got := endpointsOf(h.listDeliveries(kapsel.DeliveryListParams{EventID: later[0].ID})); !slices.Equal(got, []kapsel.EndpointID{b.ID}) {
			t.Fatalf("new invoice event went to %v, want only %s (a's filter changed)", got, b.ID)
		}
		if got := endpointsOf(h.listDeliveries(kapsel.DeliveryListParams{EventID: later[1].ID})); !slices.Equal(got, want) {
			t.Fatalf("new customer event went to %v, want %v", got, want)
		}
	})

	testFanOutConcurrency(t, newStore)
}

// testFanOutConcurrency inserts events from several goroutines while
// endpoints are created, re-filtered, paused, resumed, deleted and
// backfilled, then checks what I10 promises whatever the interleaving: no
// (event, endpoint) pair has two deliveries; every delivery goes to an
// endpoint of the tenant whose filter, at some point, matched the event;
// endpoints that never changed have exactly one delivery per matching
// event; a deleted endpoint keeps no pending delivery, all of them failed
// with kapsel.LastErrorEndpointDeleted; every event's summary counts its
// deliveries.
func testFanOutConcurrency(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("ConcurrentWithEndpointChanges", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		s1, s2 := h.source(ten), h.source(ten)
		filters := []kapsel.Subscription{
			{},
			{EventTypes: []string{"invoice.*"}},
			{EventTypes: []string{"invoice.paid", "customer.created"}},
			{EventTypes: []string{"*"}, SourceIDs: []kapsel.SourceID{s1.ID}},
			{SourceIDs: []kapsel.SourceID{s2.ID}},
			{Channels: []string{"eu"}},
			{EventTypes: []string{"nothing.*"}},
		}
		// Endpoints never changed: their deliveries are exactly the
		// matching events.
		stable := []*kapsel.Endpoint{h.subscribed(ten, filters[0]), h.subscribed(ten, filters[1]), h.subscribed(ten, filters[5])}

		var (
			mu      sync.Mutex
			history = map[kapsel.EndpointID][]kapsel.Subscription{} // every filter an endpoint had
			deleted = map[kapsel.EndpointID]bool{}                  // endpoints whose delete returned
			live    []kapsel.EndpointID                             // the mutator's live endpoints
		)
		for _, ep := range stable {
			history[ep.ID] = []kapsel.Subscription{ep.Subscription}
		}
		const inserters, calls, perCall = 4, 12, 4
		var wg sync.WaitGroup
		errs := make(chan error, inserters+2)
		fail := func(err error) {
			select {
			case errs <- err:
			default:
			}
		}
		types := []string{"invoice.paid", "invoice.failed", "customer.created", ""}
		for g := range inserters {
			wg.Go(func() {
				rnd := rand.New(rand.NewPCG(uint64(g), 1))
				for c := range calls {
					in := make([]*kapsel.EventInsertParams, perCall)
					for i := range in {
						in[i] = send(ten.ID, "", []byte(fmt.Sprintf(`{"g":%d,"c":%d,"i":%d}`, g, c, i)))
						in[i].Type = types[rnd.IntN(len(types))]
						switch rnd.IntN(3) {
						case 0:
							in[i].SourceID = s1.ID
						case 1:
							in[i].SourceID = s2.ID
						default:
							in[i].Channels = [][]string{nil, {"eu"}, {"us", "eu"}, {"us"}}[rnd.IntN(4)]
						}
					}
					res, err := h.s.EventInsertMany(h.ctx, &kapsel.EventInsertManyParams{Events: in, Now: Base})
					if err != nil {
						fail(fmt.Errorf("EventInsertMany: %w", err))
						return
					}
					for _, r := range res {
						if r.Err != nil || r.Duplicate {
							fail(fmt.Errorf("EventInsertMany row: err %v, duplicate %v", r.Err, r.Duplicate))
							return
						}
					}
				}
			})
		}
		wg.Go(func() { // the mutator
			rnd := rand.New(rand.NewPCG(99, 2))
			for range 40 {
				mu.Lock()
				n := len(live)
				mu.Unlock()
				op := rnd.IntN(6)
				if n < 2 {
					op = 0
				}
				var err error
				switch op {
				case 0, 1: // create
					f := filters[rnd.IntN(len(filters))]
					var ep *kapsel.Endpoint
					ep, err = h.s.EndpointInsert(h.ctx, &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
						TenantID: ten.ID, Name: "churn", URL: "https://example.com/churn", Subscription: f,
					}, Now: Base})
					if err == nil {
						mu.Lock()
						history[ep.ID] = append(history[ep.ID], f)
						live = append(live, ep.ID)
						mu.Unlock()
					}
				case 2: // re-filter: recorded before, since inserts may see it before the call returns
					mu.Lock()
					id, f := live[rnd.IntN(n)], filters[rnd.IntN(len(filters))]
					history[id] = append(history[id], f)
					mu.Unlock()
					_, err = h.s.EndpointUpdate(h.ctx, &kapsel.EndpointUpdateParams{ID: id, TenantID: ten.ID, Now: Base,
						Update: func(e *kapsel.Endpoint) error { e.Subscription = f; return nil }})
				case 3: // pause or resume
					mu.Lock()
					id := live[rnd.IntN(n)]
					mu.Unlock()
					state := []kapsel.EndpointState{kapsel.EndpointPaused, kapsel.EndpointActive, kapsel.EndpointDisabled}[rnd.IntN(3)]
					reason := kapsel.DisabledNone
					if state == kapsel.EndpointDisabled {
						reason = kapsel.DisabledManual
					}
					_, err = h.s.EndpointSetState(h.ctx, &kapsel.EndpointSetStateParams{ID: id, State: state, DisabledReason: reason, Now: Base})
				default: // delete
					mu.Lock()
					i := rnd.IntN(n)
					id := live[i]
					live = slices.Delete(live, i, i+1)
					mu.Unlock()
					err = h.s.EndpointDelete(h.ctx, &kapsel.EndpointDeleteParams{ID: id, Now: Base})
					if err == nil {
						mu.Lock()
						deleted[id] = true
						mu.Unlock()
					}
				}
				if err != nil {
					fail(fmt.Errorf("mutator op %d: %w", op, err))
					return
				}
			}
		})
		wg.Go(func() { // backfills, of live endpoints, some being deleted meanwhile
			rnd := rand.New(rand.NewPCG(7, 3))
			for range 10 {
				mu.Lock()
				ids := slices.Concat(live, []kapsel.EndpointID{stable[rnd.IntN(len(stable))].ID})
				mu.Unlock()
				id := ids[rnd.IntN(len(ids))]
				_, err := h.s.DeliveryBackfill(h.ctx, &kapsel.DeliveryBackfillParams{TenantID: ten.ID, EndpointID: id, Now: Base})
				if err != nil && !errors.Is(err, kapsel.ErrNotFound) {
					fail(fmt.Errorf("DeliveryBackfill: %w", err))
					return
				}
			}
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}

		events := map[kapsel.EventID]*kapsel.Event{}
		var cursor kapsel.EventID
		for range 100 {
			list, err := h.s.EventList(h.ctx, &kapsel.EventListParams{TenantID: ten.ID, Limit: kapsel.MaxPageLimit, Cursor: cursor})
			must(t, err, "EventList")
			if len(list) == 0 {
				break
			}
			for _, e := range list {
				events[e.ID] = e
			}
			cursor = list[len(list)-1].ID
		}
		equal(t, "events stored", len(events), inserters*calls*perCall)
		ds := h.listDeliveries(kapsel.DeliveryListParams{TenantID: ten.ID})
		seen := map[pair]bool{}
		perEvent := map[kapsel.EventID]int{}
		for _, d := range ds {
			p := pair{d.EventID, d.EndpointID}
			if seen[p] {
				t.Fatalf("event %s has two deliveries to endpoint %s", d.EventID, d.EndpointID)
			}
			seen[p] = true
			perEvent[d.EventID]++
			ev := events[d.EventID]
			if ev == nil {
				t.Fatalf("delivery %s of event %s, which the tenant's events do not list", d.ID, d.EventID)
			}
			fs, ok := history[d.EndpointID]
			if !ok {
				t.Fatalf("delivery %s to endpoint %s, which was never created for the tenant", d.ID, d.EndpointID)
			}
			if !slices.ContainsFunc(fs, func(f kapsel.Subscription) bool { return f.Matches(ev.Routing()) }) {
				t.Fatalf("event %+v went to endpoint %s, none of whose filters %+v ever matched it", ev.Routing(), d.EndpointID, fs)
			}
			switch {
			case deleted[d.EndpointID]:
				if d.Status != kapsel.DeliveryFailed || d.LastError != kapsel.LastErrorEndpointDeleted {
					t.Fatalf("delivery %s of a deleted endpoint: status %s, last error %q; want failed, %q",
						d.ID, d.Status, d.LastError, kapsel.LastErrorEndpointDeleted)
				}
			case d.Status != kapsel.DeliveryPending:
				t.Fatalf("delivery %s of a live endpoint is %s, want pending (nothing was claimed)", d.ID, d.Status)
			}
		}
		for _, ep := range stable {
			for id, ev := range events {
				if got, want := seen[pair{id, ep.ID}], ep.Subscription.Matches(ev.Routing()); got != want {
					t.Fatalf("event %+v to the unchanged endpoint with filter %+v: delivered %v, want %v", ev.Routing(), ep.Subscription, got, want)
				}
			}
		}
		for id, ev := range events {
			equal(t, "listed summary Total", ev.Deliveries.Total, perEvent[id])
		}
		t.Logf("%d events, %d deliveries, %d endpoints (%d deleted)", len(events), len(ds), len(history), len(deleted))

		// Once the churn is over, a new event goes to exactly the live
		// endpoints that match it now.
		mu.Lock()
		defer mu.Unlock()
		for _, typ := range types {
			in := send(ten.ID, "", randomBytes(8))
			in.Type, in.Channels = typ, []string{"eu"}
			ev := h.insertNew(at(time.Hour), in)[0]
			var want []kapsel.EndpointID
			for _, id := range slices.Sorted(maps.Keys(history)) {
				if !deleted[id] && h.getEndpoint(id, ten.ID).Subscription.Matches(ev.Routing()) {
					want = append(want, id)
				}
			}
			if got := endpointsOf(h.listDeliveries(kapsel.DeliveryListParams{EventID: ev.ID})); !slices.Equal(got, want) {
				t.Fatalf("event of type %q after the churn went to %v, want %v", typ, got, want)
			}
		}
	})
}
