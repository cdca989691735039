package delivery_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/internal/testdb"
	"github.com/kapsel-dev/kapsel/kapseltest"
)

// skewedClock is the system clock moved by a fixed offset: a node whose
// wall clock is wrong.
type skewedClock struct {
	kapsel.Clock
	offset time.Duration
}

func (c skewedClock) Now() time.Time { return c.Clock.Now().Add(c.offset) }

// overlapDestination answers every request after a delay, and counts, per
// webhook-id, the requests received and those that arrived while an
// earlier one of the same webhook-id was still being answered: a delivery
// attempted twice at once.
type overlapDestination struct {
	delay    time.Duration
	mu       sync.Mutex
	inflight map[string]int
	requests map[string]int
	overlaps int
}

func (o *overlapDestination) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("webhook-id")
	o.mu.Lock()
	o.inflight[id]++
	o.requests[id]++
	if o.inflight[id] > 1 {
		o.overlaps++
	}
	o.mu.Unlock()
	select { // the destination's latency, not a wait for something
	case <-time.After(o.delay):
	case <-r.Context().Done():
	}
	o.mu.Lock()
	o.inflight[id]--
	o.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (o *overlapDestination) counts() (requests, distinct, overlaps int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, n := range o.requests {
		requests += n
	}
	return requests, len(o.requests), o.overlaps
}

// TestClockSkewOnPostgres: two dispatchers, each with its own pool (two
// nodes), on one Postgres; one node's clock is 30 s behind, the other's 30
// s ahead — 60 s apart, over the lease. The node behind starts first and
// holds leases on deliveries whose attempts take a second; then the node
// ahead starts. With clock sync on (forced: the clocks are injected), both
// read lease times on the database's clock: the node ahead takes nothing
// the other holds, no delivery is attempted twice at once, each is
// delivered with one request and one attempt record. (With ClockSyncOff
// the node ahead sees the other's leases as expired the moment they are
// taken and re-claims them: this test then fails with overlapping
// attempts.)
func TestClockSkewOnPostgres(t *testing.T) {
	t.Parallel()
	const events = 40
	const lease = 2500 * time.Millisecond
	url := testdb.New(t)
	sBehind, sAhead := openPG(t, url, true), openPG(t, url, false)
	dest := &overlapDestination{delay: time.Second, inflight: map[string]int{}, requests: map[string]int{}}
	srv := httptest.NewServer(dest)
	t.Cleanup(srv.Close)

	ctx := context.Background()
	ten, err := sBehind.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "acme", APIKeyHash: randomBytes(t), Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := sBehind.EndpointInsert(ctx, &kapsel.EndpointInsertParams{
		Endpoint: &kapsel.Endpoint{TenantID: ten.ID, Name: "dest", URL: srv.URL + "/hook",
			SigningSecrets: []kapsel.SigningSecret{{Secret: newSecret(t)}},
			RetryPolicy:    kapsel.DefaultRetryPolicy(), Timeout: 10 * time.Second},
		Now: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	in := make([]*kapsel.EventInsertParams, events)
	for i := range in {
		in[i] = &kapsel.EventInsertParams{TenantID: ten.ID, EndpointIDs: []kapsel.EndpointID{ep.ID}, Body: fmt.Appendf(nil, `{"n":%d}`, i)}
	}
	// Due for every clock: a minute before the earliest.
	if _, err := sBehind.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Events: in, Now: time.Now().Add(-2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}

	cfg := func(skew time.Duration) *delivery.Config {
		return &delivery.Config{
			Workers: 8, ClaimBatch: 8, LeaseDuration: lease, PollInterval: 100 * time.Millisecond,
			Clock:        skewedClock{kapsel.SystemClock(), skew},
			ClockSync:    delivery.ClockSyncOn,
			AllowedCIDRs: kapseltest.Loopback,
			Logger:       slog.New(slog.DiscardHandler),
		}
	}
	behind := startDispatcher(t, sBehind, cfg(-30*time.Second))
	// The node behind holds leases and its attempts are under way.
	deadline := time.Now().Add(waitLong)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for n, _, _ := dest.counts(); n == 0; n, _, _ = dest.counts() {
		if time.Now().After(deadline) {
			t.Fatal("the first node sent nothing")
		}
		<-tick.C
	}
	ahead := startDispatcher(t, sAhead, cfg(30*time.Second))

	// Both nodes read the database's time, not their own.
	for _, d := range []*delivery.Dispatcher{behind, ahead} {
		if off := time.Until(d.Clock().Now()).Abs(); off > time.Second {
			t.Errorf("a dispatcher's clock is %v off the database's (same machine)", off)
		}
	}

	deadline = time.Now().Add(60 * time.Second)
	for countDelivered(t, sBehind) < events {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d deliveries delivered", countDelivered(t, sBehind), events)
		}
		<-tick.C
	}
	requests, distinct, overlaps := dest.counts()
	stats, err := sBehind.AttemptStats(ctx, &kapsel.AttemptStatsParams{EndpointID: ep.ID})
	if err != nil {
		t.Fatal(err)
	}
	if overlaps != 0 {
		t.Errorf("%d requests arrived while an earlier one of the same delivery was still being answered", overlaps)
	}
	if requests != events || distinct != events || stats.Total != events {
		t.Errorf("%d requests for %d deliveries, %d attempt records; want %d of each", requests, distinct, stats.Total, events)
	}
}
