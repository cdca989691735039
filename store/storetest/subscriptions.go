package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// onChannels returns insert params for one event sent to ep alone on the
// channels, with the key and body.
func onChannels(ep *kapsel.Endpoint, key string, body []byte, channels ...string) *kapsel.EventInsertParams {
	in := input(ep, key, body)
	in.Channels = slices.Clone(channels)
	return in
}

// sameChannels requires an event's channels to be want, in order (none may
// read back nil or empty).
func sameChannels(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

// testSubscriptions checks that an endpoint's subscription filter and an
// event's channels are stored, returned by every read, replaced by updates,
// and refused when kapsel's rules refuse them.
func testSubscriptions(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("FilterRoundTrip", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		in := fullEndpoint(ten)
		want := fullEndpoint(ten).Subscription
		ep, err := h.s.EndpointInsert(h.ctx, &kapsel.EndpointInsertParams{Endpoint: in, Now: Base})
		must(t, err, "EndpointInsert")
		sameSubscription(t, "inserted Subscription", ep.Subscription, want)
		// The store keeps its own copy of what it was given and returns.
		in.Subscription.EventTypes[0], in.Subscription.Channels[0] = "changed.by.caller", "changed"
		ep.Subscription.EventTypes[1], ep.Subscription.SourceIDs[0] = "changed.by.reader", kapsel.NewSourceID()
		sameSubscription(t, "EndpointGet Subscription", h.getEndpoint(ep.ID, ten.ID).Subscription, want)
		list := h.listEndpoints(ten.ID, 0, "")
		equal(t, "listed endpoints", len(list), 1)
		sameSubscription(t, "EndpointList Subscription", list[0].Subscription, want)
		paused, err := h.s.EndpointSetState(h.ctx, &kapsel.EndpointSetStateParams{
			ID: ep.ID, TenantID: ten.ID, State: kapsel.EndpointPaused, Now: at(time.Second),
		})
		must(t, err, "EndpointSetState")
		sameSubscription(t, "EndpointSetState Subscription", paused.Subscription, want)
		rotated := h.rotate(ep, "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", time.Hour, at(2*time.Second))
		sameSubscription(t, "EndpointRotateSecret Subscription", rotated.Subscription, want)
		sameSubscription(t, "EndpointGet after rotation", h.getEndpoint(ep.ID, ten.ID).Subscription, want)

		// No filter reads back as none: every list empty.
		plain := h.endpoint(ten)
		sameSubscription(t, "unfiltered Subscription", plain.Subscription, kapsel.Subscription{})
		sameSubscription(t, "EndpointGet unfiltered", h.getEndpoint(plain.ID, ten.ID).Subscription, kapsel.Subscription{})
	})

	t.Run("UpdateReplacesFilter", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		ep, err := h.s.EndpointInsert(h.ctx, &kapsel.EndpointInsertParams{Endpoint: fullEndpoint(ten), Now: Base})
		must(t, err, "EndpointInsert")
		update := func(what string, now time.Time, change func(*kapsel.Endpoint)) *kapsel.Endpoint {
			t.Helper()
			got, err := h.s.EndpointUpdate(h.ctx, &kapsel.EndpointUpdateParams{
				ID: ep.ID, TenantID: ten.ID, Now: now,
				Update: func(e *kapsel.Endpoint) error { change(e); return nil },
			})
			must(t, err, what)
			return got
		}

		// Update sees the stored filter, and a change of another field keeps it.
		var seen kapsel.Subscription
		renamed := update("EndpointUpdate of the name", at(time.Second), func(e *kapsel.Endpoint) {
			seen = kapsel.Subscription{
				EventTypes: slices.Clone(e.Subscription.EventTypes), SourceIDs: slices.Clone(e.Subscription.SourceIDs),
				Channels: slices.Clone(e.Subscription.Channels),
			}
			e.Name = "renamed"
		})
		sameSubscription(t, "filter Update saw", seen, fullEndpoint(ten).Subscription)
		sameSubscription(t, "filter after renaming", renamed.Subscription, fullEndpoint(ten).Subscription)

		// A new filter replaces the old one whole.
		src := kapsel.NewSourceID()
		next := kapsel.Subscription{EventTypes: []string{"*"}, SourceIDs: []kapsel.SourceID{src}, Channels: []string{"us"}}
		got := update("EndpointUpdate of the filter", at(2*time.Second), func(e *kapsel.Endpoint) {
			e.Subscription = kapsel.Subscription{
				EventTypes: slices.Clone(next.EventTypes), SourceIDs: slices.Clone(next.SourceIDs), Channels: slices.Clone(next.Channels),
			}
		})
		sameSubscription(t, "updated Subscription", got.Subscription, next)
		sameSubscription(t, "EndpointGet after update", h.getEndpoint(ep.ID, ten.ID).Subscription, next)
		equal(t, "name kept", h.getEndpoint(ep.ID, ten.ID).Name, "renamed")

		// One list at a time: the others are kept.
		got = update("EndpointUpdate of the channels", at(3*time.Second), func(e *kapsel.Endpoint) { e.Subscription.Channels = []string{"apac", "eu"} })
		sameSubscription(t, "after changing channels", got.Subscription,
			kapsel.Subscription{EventTypes: next.EventTypes, SourceIDs: next.SourceIDs, Channels: []string{"apac", "eu"}})

		// Emptied: the endpoint takes any event again.
		got = update("EndpointUpdate clearing the filter", at(4*time.Second), func(e *kapsel.Endpoint) { e.Subscription = kapsel.Subscription{} })
		sameSubscription(t, "cleared Subscription", got.Subscription, kapsel.Subscription{})
		sameSubscription(t, "EndpointGet after clearing", h.getEndpoint(ep.ID, ten.ID).Subscription, kapsel.Subscription{})
		list := h.listEndpoints(ten.ID, 0, "")
		sameSubscription(t, "EndpointList after clearing", list[0].Subscription, kapsel.Subscription{})

		// A refused filter writes nothing (the other bad filters are in
		// badConfigs, checked for insert and update alike).
		_, err = h.s.EndpointUpdate(h.ctx, &kapsel.EndpointUpdateParams{
			ID: ep.ID, TenantID: ten.ID, Now: at(5 * time.Second),
			Update: func(e *kapsel.Endpoint) error {
				e.Name = "not written"
				e.Subscription.EventTypes = []string{"ok", "*.paid"}
				return nil
			},
		})
		mustRefuse(t, err, kapsel.CodeMalformedRequest, "EndpointUpdate with a leading wildcard")
		after := h.getEndpoint(ep.ID, ten.ID)
		equal(t, "name after a refused update", after.Name, "renamed")
		sameSubscription(t, "filter after a refused update", after.Subscription, kapsel.Subscription{})
		sameTime(t, "UpdatedAt after a refused update", after.UpdatedAt, at(4*time.Second))
	})

	t.Run("EventChannelsRoundTrip", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		body := []byte(`{"n":1}`)
		channels := []string{"org_42", "eu"}
		in := onChannels(ep, "k1", body, channels...)
		res := h.insertMany(Base, 0, in, onChannels(ep, "", []byte(`{}`)))
		for i, r := range res {
			if r.Err != nil || r.Duplicate {
				t.Fatalf("row %d: err %v, duplicate %v", i, r.Err, r.Duplicate)
			}
		}
		in.Channels[0] = "changed.by.caller" // the store kept its own copy
		id, none := res[0].Event.ID, res[1].Event.ID
		sameChannels(t, "inserted Channels", res[0].Event.Channels, channels)
		sameChannels(t, "inserted Channels of an event on none", res[1].Event.Channels, nil)
		sameChannels(t, "EventGet Channels", h.getEvent(id).Channels, channels)
		noBody, err := h.s.EventGet(h.ctx, &kapsel.EventGetParams{ID: id, TenantID: ep.TenantID})
		must(t, err, "EventGet without body")
		sameChannels(t, "EventGet without body Channels", noBody.Channels, channels)
		sameChannels(t, "EventGet Channels of an event on none", h.getEvent(none).Channels, nil)
		for _, e := range h.listEvents(kapsel.EventListParams{TenantID: ep.TenantID}) {
			sameChannels(t, "EventList Channels", e.Channels, map[kapsel.EventID][]string{id: channels}[e.ID])
		}

		// The key's owner, returned for a duplicate: in a later call, and
		// within the call that stored it.
		dup := h.insertMany(at(time.Second), 0, onChannels(ep, "k1", body, "other"))[0]
		if !dup.Duplicate || dup.Event.ID != id {
			t.Fatalf("same key and body: %+v, want a duplicate of %s", dup, id)
		}
		sameChannels(t, "duplicate Channels (the first event's)", dup.Event.Channels, channels)
		batch := h.insertMany(at(time.Second), 0, onChannels(ep, "k2", body, "a"), onChannels(ep, "k2", body, "b"))
		if !batch[1].Duplicate || batch[1].Event.ID != batch[0].Event.ID {
			t.Fatalf("same key twice in one call: %+v", batch[1])
		}
		sameChannels(t, "in-call duplicate Channels", batch[1].Event.Channels, []string{"a"})

		claimed := h.claim(10, time.Minute, at(2*time.Second))
		equal(t, "claimed", len(claimed), 3)
		for _, d := range claimed {
			want := map[kapsel.EventID][]string{id: channels, batch[0].Event.ID: {"a"}}[d.EventID]
			sameChannels(t, "claimed Channels", d.Event.Channels, want)
		}
	})

	t.Run("EventChannelsRefused", func(t *testing.T) {
		h := setup(t, newStore)
		ep := h.endpoint(h.tenant())
		for _, bad := range [][]string{
			{"eu", "eu"}, {""}, {"a b"}, {"*"}, {"nul\x00"}, {"é"},
			{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"},
		} {
			_, err := h.s.EventInsertMany(h.ctx, &kapsel.EventInsertManyParams{
				Events: []*kapsel.EventInsertParams{onChannels(ep, "", []byte("ok"), "eu"), onChannels(ep, "k", []byte("bad"), bad...)},
				Now:    Base,
			})
			mustRefuse(t, err, kapsel.CodeMalformedRequest, fmt.Sprintf("EventInsertMany with channels %q", bad))
		}
		if list := h.listEvents(kapsel.EventListParams{TenantID: ep.TenantID}); len(list) != 0 {
			t.Fatalf("refused inserts left events %v", eventIDs(list))
		}
		// The key of a refused row was not taken.
		r := h.insertMany(Base, 0, onChannels(ep, "k", []byte("other body"), "eu"))[0]
		if r.Err != nil || r.Duplicate {
			t.Fatalf("key of a refused insert: err %v, duplicate %v", r.Err, r.Duplicate)
		}
	})
}
