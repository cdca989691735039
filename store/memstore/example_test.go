package memstore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// A store's life in miniature: an event is inserted, claimed with a lease,
// and completed with its attempt recorded. A second insert with the same
// idempotency key returns the first event.
func Example() {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	store := memstore.New()

	key := sha256.Sum256([]byte("tenant api key"))
	tenant, _ := store.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "acme", APIKeyHash: key[:], Now: now})
	ep, _ := store.EndpointInsert(ctx, &kapsel.EndpointInsertParams{
		Endpoint: &kapsel.Endpoint{TenantID: tenant.ID, Name: "orders", URL: "https://example.com/hook"},
		Now:      now,
	})

	body := []byte(`{"order":42}`)
	hash := sha256.Sum256(body)
	in := &kapsel.EventInsertParams{EndpointID: ep.ID, Body: body, IdempotencyKey: "order-42", BodyHash: hash[:]}
	first, _ := store.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Events: []*kapsel.EventInsertParams{in}, Now: now})
	again, _ := store.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Events: []*kapsel.EventInsertParams{in}, Now: now.Add(time.Minute)})
	fmt.Println("duplicate:", again[0].Duplicate, "same event:", again[0].Event.ID == first[0].Event.ID)

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
