package kapseltest

import (
	"context"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// DeliveryLister is the part of a store the delivery helpers read
// ([RequireDelivered], [RequireStatus], [WaitForDelivery],
// [RequireAllDelivered]); every kapsel.Store is one.
type DeliveryLister interface {
	DeliveryList(ctx context.Context, params *kapsel.DeliveryListParams) ([]*kapsel.Delivery, error)
}

// EventGetter is the part of a store [WaitForEvent] reads.
type EventGetter interface {
	EventGet(ctx context.Context, params *kapsel.EventGetParams) (*kapsel.Event, error)
}

// pollEvery is how often the Require helpers look at the store.
const pollEvery = 2 * time.Millisecond

// RequireDelivered waits (in real time) until the delivery of event to
// endpoint is delivered and returns it; it fails t when that delivery fails
// or timeout passes first. An empty endpoint means the event's only
// delivery, for the common test with one endpoint: t fails when the event
// has more than one.
func RequireDelivered(t testing.TB, store DeliveryLister, event kapsel.EventID, endpoint kapsel.EndpointID, timeout time.Duration) *kapsel.Delivery {
	t.Helper()
	return RequireStatus(t, store, event, endpoint, kapsel.DeliveryDelivered, timeout)
}

// RequireStatus waits (in real time) until the delivery of event to
// endpoint (empty: the event's only delivery, as for [RequireDelivered])
// has the given status and returns it. It fails t after timeout, or as soon
// as the delivery reaches another terminal status.
func RequireStatus(t testing.TB, store DeliveryLister, event kapsel.EventID, endpoint kapsel.EndpointID, status kapsel.DeliveryStatus, timeout time.Duration) *kapsel.Delivery {
	t.Helper()
	dl := WaitForDelivery(t, store, event, endpoint, timeout, func(dl *kapsel.Delivery) bool {
		return dl.Status == status || (dl.Status.Terminal() && dl.Status != status)
	})
	if dl.Status != status {
		t.Fatalf("kapseltest: delivery %s (event %s to endpoint %s) is %s (last error %q), want %s",
			dl.ID, event, dl.EndpointID, dl.Status, dl.LastError, status)
	}
	return dl
}

// WaitForDelivery polls the delivery of event to endpoint (empty: the
// event's only delivery, as for [RequireDelivered]) in real time until
// cond holds, and returns it; it fails t after timeout. An event that has
// no delivery to endpoint yet is waited for too.
func WaitForDelivery(t testing.TB, store DeliveryLister, event kapsel.EventID, endpoint kapsel.EndpointID, timeout time.Duration, cond func(*kapsel.Delivery) bool) *kapsel.Delivery {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var last *kapsel.Delivery
	for {
		dls, err := store.DeliveryList(context.Background(), &kapsel.DeliveryListParams{EventID: event, EndpointID: endpoint, Limit: 2})
		if err != nil {
			t.Fatalf("kapseltest: listing the deliveries of event %s: %v", event, err)
		}
		if len(dls) > 1 {
			t.Fatalf("kapseltest: event %s has more than one delivery; name the endpoint", event)
		}
		if len(dls) == 1 {
			last = dls[0]
			if cond(last) {
				return last
			}
		}
		if time.Now().After(deadline) {
			if last == nil {
				t.Fatalf("kapseltest: event %s: no delivery to endpoint %q within %s", event, endpoint, timeout)
			} else {
				t.Fatalf("kapseltest: delivery %s (event %s to endpoint %s): condition not met within %s (status %s, attempts %d, last error %q)",
					last.ID, event, last.EndpointID, timeout, last.Status, last.Attempts, last.LastError)
			}
			return nil
		}
		<-tick.C
	}
}

// RequireAllDelivered waits (in real time) until the event has at least one
// delivery and every one of them is delivered, and returns them in id
// order; it fails t when one of them fails or timeout passes first.
func RequireAllDelivered(t testing.TB, store DeliveryLister, event kapsel.EventID, timeout time.Duration) []*kapsel.Delivery {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		dls := listDeliveries(t, store, event)
		done := len(dls) > 0
		for _, dl := range dls {
			if dl.Status == kapsel.DeliveryFailed {
				t.Fatalf("kapseltest: delivery %s (event %s to endpoint %s) failed (last error %q)", dl.ID, event, dl.EndpointID, dl.LastError)
			}
			done = done && dl.Status == kapsel.DeliveryDelivered
		}
		if done {
			return dls
		}
		if time.Now().After(deadline) {
			var summary kapsel.DeliverySummary
			for _, dl := range dls {
				summary.Add(dl.Status, 1)
			}
			t.Fatalf("kapseltest: event %s: not every delivery delivered within %s (%+v)", event, timeout, summary)
			return nil
		}
		<-tick.C
	}
}

// listDeliveries lists every delivery of event, page by page (at most
// maxPages of them).
func listDeliveries(t testing.TB, store DeliveryLister, event kapsel.EventID) []*kapsel.Delivery {
	t.Helper()
	const maxPages = 1000
	var out []*kapsel.Delivery
	var cursor kapsel.DeliveryID
	for range maxPages {
		page, err := store.DeliveryList(context.Background(), &kapsel.DeliveryListParams{
			EventID: event, Limit: kapsel.MaxPageLimit, Cursor: cursor})
		if err != nil {
			t.Fatalf("kapseltest: listing the deliveries of event %s: %v", event, err)
		}
		out = append(out, page...)
		if len(page) < kapsel.MaxPageLimit {
			break
		}
		cursor = page[len(page)-1].ID
	}
	return out
}

// WaitForEvent polls the event (in real time) until cond holds and returns
// it, with its delivery summary (Event.Deliveries); it fails t after
// timeout.
func WaitForEvent(t testing.TB, store EventGetter, id kapsel.EventID, timeout time.Duration, cond func(*kapsel.Event) bool) *kapsel.Event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ev, err := store.EventGet(context.Background(), &kapsel.EventGetParams{ID: id})
		if err != nil {
			t.Fatalf("kapseltest: reading event %s: %v", id, err)
		}
		if cond(ev) {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("kapseltest: event %s: condition not met within %s (deliveries %+v)", id, timeout, ev.Deliveries)
			return nil
		}
		<-tick.C
	}
}
