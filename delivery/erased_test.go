package delivery_test

import (
	"context"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// TestErasedBodyIsNotSent: a delivery queued again after its event's body
// was erased (a manual retry of an old, expired event) sends nothing and
// fails, with the attempt recorded and saying why.
func TestErasedBodyIsNotSent(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	dl := f.insert(nil, `{"card":"4242"}`)
	f.requireDelivered(dl)
	<-f.attempt
	ctx := context.Background()
	if res, err := f.store.RetentionEraseBodies(ctx, &kapsel.RetentionSweepParams{Before: f.clock.Now().Add(time.Second), Now: f.clock.Now()}); err != nil || res.Events != 1 {
		t.Fatalf("RetentionEraseBodies = %+v, %v", res, err)
	}
	if n, err := f.store.DeliveryRetryEvent(ctx, &kapsel.DeliveryRetryEventParams{EventID: dl.EventID, TenantID: f.tenant.ID, Now: f.clock.Now()}); err != nil || n != 1 {
		t.Fatalf("DeliveryRetryEvent = %d, %v", n, err)
	}
	f.d.Wake()
	info := <-f.attempt
	if info.Outcome != kapsel.OutcomeFailed || info.ErrorCode != kapsel.CodeInternal || info.DeliveryID != dl.ID {
		t.Fatalf("OnAttempt %+v, want a failed attempt of %s", info, dl.ID)
	}
	if reqs := f.dest.Requests(); len(reqs) != 1 {
		t.Fatalf("destination got %d requests, want only the first one", len(reqs))
	}
	got, err := f.store.DeliveryGet(ctx, &kapsel.DeliveryGetParams{ID: dl.ID})
	if err != nil || got.Status != kapsel.DeliveryFailed || got.Attempts != 2 {
		t.Fatalf("delivery after the retry: %+v, %v", got, err)
	}
	as := f.attemptsOf(dl.ID)
	if len(as) != 2 || as[1].Error != "the event's body was expired: nothing to send" {
		t.Fatalf("attempts: %+v", as)
	}
}
