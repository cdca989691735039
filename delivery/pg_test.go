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
	ep, err := s.EndpointInsert(ctx, &kapsel.EndpointInsertParams{
		Endpoint: &kapsel.Endpoint{
			TenantID: ten.ID, Name: "dest", URL: dest.URL + "/hook",
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

func startDispatcher(tb testing.TB, s kapsel.DeliveryStore, cfg *delivery.Config) *delivery.Dispatcher {
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
// two kapseld processes), share one Postgres store; 2,000 events inserted in
// batches while they run are all delivered, each exactly once, and each has
// exactly one attempt record.
func TestTwoDispatchersOnPostgres(t *testing.T) {
	t.Parallel()
	url := testdb.New(t)
	s1 := openPG(t, url, true)
	s2 := openPG(t, url, false)
	dest := kapseltest.NewDestination(t)
	secret := newSecret(t)
	dest.VerifyWith(t, secret)
	ep := pgEndpoint(t, s1, dest, secret)

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

	const total, batch = 2000, 100
	for i := 0; i < total; i += batch {
		in := make([]*kapsel.EventInsertParams, batch)
		for j := range in {
			in[j] = &kapsel.EventInsertParams{EndpointID: ep.ID, Body: fmt.Appendf(nil, `{"n":%d}`, i+j), ContentType: "application/json"}
		}
		if _, err := s1.EventInsertMany(context.Background(), &kapsel.EventInsertManyParams{Events: in, Now: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}

	dest.WaitForRequests(t, total, 60*time.Second)
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
			t.Fatalf("only %d of %d events delivered", delivered, total)
		}
		<-tick.C
	}
	reqs := dest.Requests()
	seen := make(map[string]int, total)
	for _, r := range reqs {
		seen[r.WebhookID]++
		if r.SignatureErr != nil {
			t.Fatalf("bad signature on %s: %v", r.WebhookID, r.SignatureErr)
		}
	}
	if len(reqs) != total || len(seen) != total {
		t.Fatalf("destination got %d requests for %d distinct events, want %d and %d (zero duplicates)", len(reqs), len(seen), total, total)
	}
	stats, err := s1.AttemptStats(context.Background(), &kapsel.AttemptStatsParams{EndpointID: ep.ID})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Total != total || stats.Succeeded != total {
		t.Fatalf("attempt records: %d total, %d succeeded; want %d each", stats.Total, stats.Succeeded, total)
	}
	t.Logf("deliveries per dispatcher: %d / %d", byDispatcher[0].Load(), byDispatcher[1].Load())
}

// countDelivered pages through the delivered events (EventStats counts only
// pending and delivering ones).
func countDelivered(t *testing.T, s kapsel.Store) int {
	t.Helper()
	n := 0
	p := &kapsel.EventListParams{Status: kapsel.EventDelivered, Limit: kapsel.MaxPageLimit}
	for {
		page, err := s.EventList(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page)
		if len(page) < p.Limit {
			return n
		}
		p.Cursor = page[len(page)-1].ID
	}
}
