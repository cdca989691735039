package kapseltest

import (
	"context"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// EventGetter is the part of a store the Require helpers read.
type EventGetter interface {
	EventGet(ctx context.Context, params *kapsel.EventGetParams) (*kapsel.Event, error)
}

// pollEvery is how often the Require helpers look at the store.
const pollEvery = 2 * time.Millisecond

// RequireDelivered waits (in real time) until the event is delivered and
// returns it; it fails t when the event fails or timeout passes first.
func RequireDelivered(t testing.TB, store EventGetter, id kapsel.EventID, timeout time.Duration) *kapsel.Event {
	t.Helper()
	return RequireStatus(t, store, id, kapsel.EventDelivered, timeout)
}

// RequireStatus waits (in real time) until the event has the given status
// and returns it. It fails t after timeout, or as soon as the event reaches
// another terminal status.
func RequireStatus(t testing.TB, store EventGetter, id kapsel.EventID, status kapsel.EventStatus, timeout time.Duration) *kapsel.Event {
	t.Helper()
	ev := WaitForEvent(t, store, id, timeout, func(ev *kapsel.Event) bool {
		return ev.Status == status || (ev.Status.Terminal() && ev.Status != status)
	})
	if ev.Status != status {
		t.Fatalf("kapseltest: event %s is %s (last error %q), want %s", id, ev.Status, ev.LastError, status)
	}
	return ev
}

// WaitForEvent polls the event (in real time) until cond holds and returns
// it; it fails t after timeout.
func WaitForEvent(t testing.TB, store EventGetter, id kapsel.EventID, timeout time.Duration, cond func(*kapsel.Event) bool) *kapsel.Event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var last *kapsel.Event
	for {
		ev, err := store.EventGet(context.Background(), &kapsel.EventGetParams{ID: id})
		if err != nil {
			t.Fatalf("kapseltest: reading event %s: %v", id, err)
		}
		if cond(ev) {
			return ev
		}
		last = ev
		if time.Now().After(deadline) {
			t.Fatalf("kapseltest: event %s: condition not met within %s (status %s, attempts %d, last error %q)",
				id, timeout, last.Status, last.Attempts, last.LastError)
			return nil
		}
		<-tick.C
	}
}
