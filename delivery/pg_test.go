package delivery_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/internal/testdb"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

// openPG opens a pgstore on url (a schema from testdb), closed when tb ends.
// Each call is a separate pool, as a separate process would have.
func openPG(tb testing.TB, url string, migrate bool) *pgstore.Store {
	tb.Helper()
	s, err := pgstore.Open(context.Background(), url+"&pool_max_conns=8", &pgstore.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	if migrate {
		if err := s.Migrate(context.Background()); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

// pgEndpoint creates a tenant and an endpoint delivering to dest.
func pgEndpoint(tb testing.TB, s kapsel.Store, dest *kapseltest.Destination, secret string) *kapsel.Endpoint {
	tb.Helper()
	ctx := context.Background()
	ten, err := s.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "acme", APIKeyHash: []byte(fmt.Sprint(time.Now().UnixNano())), Now: time.Now()})
	if err != nil {
		tb.Fatal(err)
	}
	return pgEndpointOf(tb, s, ten.ID, dest, secret)
}

// pgEndpointOf creates an endpoint of the tenant delivering to dest,
// subscribed to every event.
func pgEndpointOf(tb testing.TB, s kapsel.Store, tenant kapsel.TenantID, dest *kapseltest.Destination, secret string) *kapsel.Endpoint {
	tb.Helper()
	ep, err := s.EndpointInsert(context.Background(), &kapsel.EndpointInsertParams{
		Endpoint: &kapsel.Endpoint{
			TenantID: tenant, Name: "dest", URL: dest.URL + "/hook",
			SigningSecrets: []kapsel.SigningSecret{{Secret: secret}},
			RetryPolicy:    kapsel.DefaultRetryPolicy(),
			Timeout:        10 * time.Second,
		},
		Now: time.Now(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return ep
}

func startDispatcher(tb testing.TB, s kapsel.DispatcherStore, cfg *delivery.Config) *delivery.Dispatcher {
	tb.Helper()
	d, err := delivery.New(s, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			tb.Errorf("Stop: %v", err)
		}
	})
	return d
}

// TestTwoDispatchersOnPostgres: two dispatchers, each with its own pool (as
// two kapseld processes), share one Postgres store; 1,000 events inserted
// in batches while they run, each fanned out to two endpoints, are all
// delivered to both, each delivery exactly once, and each has exactly one
// attempt record.
func TestTwoDispatchersOnPostgres(t *testing.T) {
	t.Parallel()
	url := testdb.New(t)
	s1 := openPG(t, url, true)
	s2 := openPG(t, url, false)
	secret := newSecret(t)
	destA, destB := kapseltest.NewDestination(t), kapseltest.NewDestination(t)
	destA.VerifyWith(t, secret)
	destB.VerifyWith(t, secret)
	epA := pgEndpoint(t, s1, destA, secret)
	epB := pgEndpointOf(t, s1, epA.TenantID, destB, secret)

	var byDispatcher [2]atomic.Int64
	for i, s := range []*pgstore.Store{s1, s2} {
		startDispatcher(t, s, &delivery.Config{
			Workers:      16,
			AllowedCIDRs: kapseltest.Loopback,
			Logger:       slog.New(slog.DiscardHandler),
			Hooks: kapsel.Hooks{OnAttempt: func(info kapsel.AttemptInfo) {
				if info.Outcome == kapsel.OutcomeDelivered {
					byDispatcher[i].Add(1)
				}
			}},
		})
	}

	const events, batch = 1000, 100
	const total = 2 * events
	for i := 0; i < events; i += batch {
		in := make([]*kapsel.EventInsertParams, batch)
		for j := range in {
			in[j] = &kapsel.EventInsertParams{TenantID: epA.TenantID, Body: fmt.Appendf(nil, `{"n":%d}`, i+j), ContentType: "application/json"}
		}
		res, err := s1.EventInsertMany(context.Background(), &kapsel.EventInsertManyParams{Events: in, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil || r.Event.Deliveries.Total != 2 {
				t.Fatalf("insert: %v, %+v; want 2 deliveries", r.Err, r.Event)
			}
		}
	}

	destA.WaitForRequests(t, events, 60*time.Second)
	destB.WaitForRequests(t, events, 60*time.Second)
	// Wait until the store agrees that everything is delivered (so every
	// attempt, a duplicate's included, has ended), then count.
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		delivered := countDelivered(t, s1)
		if delivered == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d deliveries delivered", delivered, total)
		}
		<-tick.C
	}
	webhookIDs := map[string]int{}
	for _, dest := range []*kapseltest.Destination{destA, destB} {
		reqs := dest.Requests()
		seen := make(map[string]int, events)
		for _, r := range reqs {
			seen[r.WebhookID]++
			webhookIDs[r.WebhookID]++
			if r.SignatureErr != nil {
				t.Fatalf("bad signature on %s: %v", r.WebhookID, r.SignatureErr)
			}
		}
		if len(reqs) != events || len(seen) != events {
			t.Fatalf("destination got %d requests for %d distinct events, want %d and %d (zero duplicates)", len(reqs), len(seen), events, events)
		}
	}
	// Both endpoints got the same events, under the same webhook-id.
	for id, n := range webhookIDs {
		if n != 2 {
			t.Fatalf("webhook-id %s reached %d destinations, want 2", id, n)
		}
	}
	for _, ep := range []*kapsel.Endpoint{epA, epB} {
		stats, err := s1.AttemptStats(context.Background(), &kapsel.AttemptStatsParams{EndpointID: ep.ID})
		if err != nil {
			t.Fatal(err)
		}
		if stats.Total != events || stats.Succeeded != events {
			t.Fatalf("attempt records of %s: %d total, %d succeeded; want %d each", ep.ID, stats.Total, stats.Succeeded, events)
		}
	}
	t.Logf("deliveries per dispatcher: %d / %d", byDispatcher[0].Load(), byDispatcher[1].Load())
}

// countDelivered pages through the delivered deliveries (DeliveryStats
// counts only pending and delivering ones).
func countDelivered(t *testing.T, s kapsel.Store) int {
	t.Helper()
	n := 0
	p := &kapsel.DeliveryListParams{Status: kapsel.DeliveryDelivered, Limit: kapsel.MaxPageLimit}
	for range 10_000 {
		page, err := s.DeliveryList(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page)
		if len(page) < p.Limit {
			return n
		}
		p.Cursor = page[len(page)-1].ID
	}
	t.Fatal("too many pages of deliveries")
	return n
}

// TestFanOutEndToEndOnPostgres is TestFanOutEndToEnd on Postgres, whose
// insert decides the fan-out in its own transaction.
func TestFanOutEndToEndOnPostgres(t *testing.T) {
	t.Parallel()
	testFanOutEndToEnd(t, openPG(t, testdb.New(t), true))
}
