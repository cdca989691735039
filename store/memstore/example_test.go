package memstore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// A store's life in miniature: a tenant with a source and two endpoints,
// one subscribed to invoices only; an event inserted twice with one
// idempotency key (the second returns the first event) and fanned out to
// the endpoint it matches; its delivery claimed with a lease and completed
// with its attempt recorded. These are the calls the front door, the
// ingester and the dispatcher make.
func Example() {
	ctx := context.Background()
	store := memstore.New()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

	tenant, _ := store.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "acme", APIKeyHash: []byte("hash"), Now: now})
	src, _ := store.SourceInsert(ctx, &kapsel.SourceInsertParams{
		Source: &kapsel.Source{TenantID: tenant.ID, Name: "billing"}, Now: now})
	invoices, _ := store.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
		TenantID: tenant.ID, Name: "invoices", URL: "https://example.com/invoices",
		Subscription: kapsel.Subscription{EventTypes: []string{"invoice.*"}}}, Now: now})
	_, _ = store.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
		TenantID: tenant.ID, Name: "orders", URL: "https://example.com/orders",
		Subscription: kapsel.Subscription{EventTypes: []string{"order.*"}}}, Now: now})

	body := []byte(`{"invoice":42}`)
	hash := sha256.Sum256(body)
	in := &kapsel.EventInsertParams{TenantID: tenant.ID, SourceID: src.ID, Type: "invoice.paid",
		Body: body, ContentType: "application/json", IdempotencyKey: "inv-42", BodyHash: hash[:]}
	first, _ := store.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Events: []*kapsel.EventInsertParams{in}, Now: now})
	again, _ := store.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Events: []*kapsel.EventInsertParams{in}, Now: now})
	fmt.Println("deliveries:", first[0].Event.Deliveries.Total)
	fmt.Println("duplicate:", again[0].Duplicate, "same event:", again[0].Event.ID == first[0].Event.ID)

	claimed, _ := store.DeliveryClaim(ctx, &kapsel.DeliveryClaimParams{Limit: 10, LeaseDuration: time.Minute, Now: now})
	d := claimed[0]
	fmt.Println("claimed:", len(claimed), d.Status, d.EndpointID == invoices.ID, string(d.Event.Body))

	errs, _ := store.DeliveryComplete(ctx, &kapsel.DeliveryCompleteParams{
		Completions: []kapsel.DeliveryCompletion{{
			DeliveryID: d.ID, LeaseToken: d.LeaseToken, Status: kapsel.DeliveryDelivered,
			Attempt: kapsel.Attempt{StatusCode: 200, StartedAt: now, Duration: 15 * time.Millisecond},
		}},
		Now: now,
	})
	ev, _ := store.EventGet(ctx, &kapsel.EventGetParams{ID: d.EventID})
	attempts, _ := store.AttemptList(ctx, &kapsel.AttemptListParams{DeliveryID: d.ID})
	fmt.Println("completed:", errs[0], "delivered:", ev.Deliveries.Delivered, "of", ev.Deliveries.Total,
		"attempts:", len(attempts), "status code:", attempts[0].StatusCode)
	// Output:
	// deliveries: 1
	// duplicate: true same event: true
	// claimed: 1 delivering true {"invoice":42}
	// completed: <nil> delivered: 1 of 1 attempts: 1 status code: 200
}
