package delivery_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
)

// TestNoBodySentAfterExpunge: once the front door has reported an expunge
// (EventExpunged, or TenantExpunged for a tenant's bodies), a delivery of
// an expunged event claimed before and queued behind its endpoint's running
// attempt sends nothing: it fails with its attempt recorded and saying why,
// and no request carrying the body reaches the destination.
func TestNoBodySentAfterExpunge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		report func(d *delivery.Dispatcher, queued *kapsel.Delivery, tenant kapsel.TenantID)
	}{
		{"Event", func(d *delivery.Dispatcher, queued *kapsel.Delivery, _ kapsel.TenantID) {
			d.EventExpunged(queued.EventID)
		}},
		{"Tenant", func(d *delivery.Dispatcher, queued *kapsel.Delivery, tenant kapsel.TenantID) {
			d.TenantExpunged(tenant, queued.EventID+"~") // every id up to the queued one's
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, d, running, queued := queuedBehind(t, nil)
			ev, err := f.store.EventGet(context.Background(), &kapsel.EventGetParams{ID: queued.EventID, IncludeBody: true})
			if err != nil {
				t.Fatal(err)
			}
			var res *kapsel.RetentionSweepResult
			res, err = f.store.EventExpunge(context.Background(), &kapsel.EventExpungeParams{TenantID: f.tenant.ID, ID: queued.EventID, Now: f.clock.Now()})
			if err != nil || res.Events != 1 {
				t.Fatalf("EventExpunge = %+v, %v", res, err)
			}
			tc.report(d, queued, f.tenant.ID)
			f.dest.Release()

			if got := f.waitAttempts(running, 1); got.Status != kapsel.DeliveryDelivered {
				t.Fatalf("delivery in flight at the expunge: %s, want delivered", got.Status)
			}
			f.waitFor(queued, func(dl *kapsel.Delivery) bool { return len(f.attemptsOf(queued.ID)) == 1 })
			waitIdle(t, d)
			if n := stopAndCount(t, f, d); n != 1 {
				t.Fatalf("destination got %d requests, want only the one in flight at the expunge", n)
			}
			for _, r := range f.dest.Requests() {
				if r.WebhookID == string(queued.EventID) || bytes.Contains(r.Body, ev.Body) {
					t.Fatalf("the expunged event's body reached the destination: %s", r.Body)
				}
			}
			got := f.delivery(queued.ID)
			as := f.attemptsOf(queued.ID)
			if got.Status != kapsel.DeliveryFailed || len(as) != 1 || !strings.Contains(as[0].Error, "expunged: nothing to send") {
				t.Fatalf("queued delivery: %s with attempts %+v, want failed with one attempt saying the body was expunged", got.Status, as)
			}
		})
	}
}
