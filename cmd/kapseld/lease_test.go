package main

import (
	"context"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/kapseltest"
)

// TestLeaseDurationReachesTheDispatcher: KAPSEL_LEASE_DURATION sets the
// lease of the deliveries kapseld claims, and the dispatcher renews it
// while an attempt runs longer than the lease.
func TestLeaseDurationReachesTheDispatcher(t *testing.T) {
	t.Parallel()
	const admin = "lease-admin-token-0c4d"
	r := startServer(t, map[string]string{
		"KAPSEL_DATA_DIR":                   t.TempDir(),
		"KAPSEL_ADMIN_TOKEN":                admin,
		"KAPSEL_ALLOW_PRIVATE_DESTINATIONS": "true",
		"KAPSEL_LEASE_DURATION":             "2s",
	})
	dest := kapseltest.NewDestination(t)
	dest.Respond(kapseltest.Response{Hang: true})
	key := r.must(201, "POST", "/v1/tenants", admin, map[string]any{"name": "acme"})["api_key"].(string)
	r.must(201, "POST", "/v1/endpoints", key, map[string]any{"name": "slow", "url": dest.URL + "/hook"})
	event := r.must(202, "POST", "/v1/events", key, map[string]any{"payload": 1})["id"].(string)
	dest.WaitForRequests(t, 1, 20*time.Second)
	sentAt := time.Now()

	lease := func() time.Time {
		t.Helper()
		ds, err := r.srv.store.DeliveryList(context.Background(), &kapsel.DeliveryListParams{EventID: kapsel.EventID(event)})
		if err != nil || len(ds) != 1 {
			t.Fatalf("deliveries: %v, %d", err, len(ds))
		}
		if ds[0].Status != kapsel.DeliveryDelivering {
			t.Fatalf("delivery %s while its attempt runs", ds[0].Status)
		}
		return ds[0].LeaseExpiresAt
	}
	claimed := lease()
	if left := time.Until(claimed); left > 2*time.Second {
		t.Fatalf("lease ends in %v, want at most the 2 s configured", left)
	}
	eventually(t, "the lease renewed past twice its length", func() bool {
		return lease().After(sentAt.Add(3 * time.Second))
	})
	dest.Release()
	eventually(t, "the delivery delivered", func() bool {
		ds, err := r.srv.store.DeliveryList(context.Background(), &kapsel.DeliveryListParams{EventID: kapsel.EventID(event)})
		return err == nil && len(ds) == 1 && ds[0].Status == kapsel.DeliveryDelivered && ds[0].Attempts == 1
	})
	if n := dest.Count(); n != 1 {
		t.Fatalf("the destination got %d requests, want 1", n)
	}
}
