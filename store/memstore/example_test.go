package memstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/ingest"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// A store's life in miniature: an event is ingested (twice, with one
// idempotency key: the second returns the first event), claimed with a
// lease, and completed with its attempt recorded. The front door's
// operations create the tenant and the endpoint; the ingester stores the
// event; the claim and the completion are the store calls a dispatcher
// makes.
func Example() {
	ctx := context.Background()
	store := memstore.New()

	ops, _ := service.New(store, &service.Config{})
	tenant, _, _ := ops.CreateTenant(ctx, service.TenantCreate{Name: "acme"})
	ep, _, _ := ops.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{Name: "orders", URL: "https://example.com/hook"})

	in, _ := ingest.New(store, &ingest.Config{Logger: slog.New(slog.DiscardHandler)})
	_ = in.Start(ctx)
	defer in.Stop(ctx)
	req := &kapsel.IngestRequest{EndpointID: string(ep.ID), Body: []byte(`{"order":42}`),
		Header: http.Header{"Idempotency-Key": {"order-42"}}}
	first, _ := in.Ingest(ctx, req)
	again, _ := in.Ingest(ctx, req)
	fmt.Println("duplicate:", again.Duplicate, "same event:", again.Event.ID == first.Event.ID)

	now := time.Now() // the ingester stamped the event with the system clock

	claimed, _ := store.EventClaim(ctx, &kapsel.EventClaimParams{Limit: 10, LeaseDuration: time.Minute, Now: now})
	ev := claimed[0]
	fmt.Println("claimed:", ev.Status, string(ev.Body))

	errs, _ := store.EventComplete(ctx, &kapsel.EventCompleteParams{
		Completions: []kapsel.EventCompletion{{
			EventID: ev.ID, LeaseToken: ev.LeaseToken, Status: kapsel.EventDelivered,
			Attempt: kapsel.Attempt{StatusCode: 200, StartedAt: now, Duration: 15 * time.Millisecond},
		}},
		Now: now,
	})
	done, _ := store.EventGet(ctx, &kapsel.EventGetParams{ID: ev.ID})
	attempts, _ := store.AttemptList(ctx, &kapsel.AttemptListParams{EventID: ev.ID})
	fmt.Println("completed:", errs[0], done.Status, "attempts:", len(attempts), "status code:", attempts[0].StatusCode)
	// Output:
	// duplicate: true same event: true
	// claimed: delivering {"order":42}
	// completed: <nil> delivered attempts: 1 status code: 200
}
