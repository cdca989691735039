package breaker_test

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/breaker"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// A dead neighbour must not hurt a healthy endpoint: endpoint A times out on
// every attempt while endpoint B, fed at a fixed rate, is measured. This runs
// on the wall clock (it measures latency), against memstore.

type neighbourCase struct {
	sick     bool // A hangs until its timeout (neighbourTimeout)
	breakers bool
	per      int // PerEndpointConcurrency; 0 = the default (half of the pool: 32)
}

type neighbourResult struct {
	p50, p99, max time.Duration // B's end-to-end latency
	lag           time.Duration // last B delivery after the last B insert
	rate          float64       // B deliveries per second over the run
	fedRate       float64       // B inserts per second (the feeder slows down on a loaded machine)
	aRequests     int64         // requests A received…
	aElapsed      time.Duration // …from the dispatcher's start until they were counted
}

const (
	neighbourBacklog = 300 // A's deliveries waiting at the start
	neighbourRate    = 300 // B's deliveries per second
	neighbourFeed    = 2 * time.Second
	neighbourWorkers = 64
	neighbourTimeout = time.Second // both endpoints' attempt timeout
)

func runNeighbours(tb testing.TB, c neighbourCase) neighbourResult {
	ctx := context.Background()
	store := memstore.New()
	now := time.Now()
	ten, err := store.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "t", APIKeyHash: []byte("k"), Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{t: tb, ctx: ctx, store: store, tenant: ten.ID}
	fatal := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	destA, destB := newNeighbourDest(tb, c.sick), newNeighbourDest(tb, false)
	addEndpoint := func(url string) kapsel.EndpointID {
		ep, err := store.EndpointInsert(ctx, &kapsel.EndpointInsertParams{
			Endpoint: &kapsel.Endpoint{TenantID: ten.ID, Name: "e", URL: url, Timeout: neighbourTimeout, RetryPolicy: kapsel.DefaultRetryPolicy()},
			Now:      now,
		})
		fatal(err)
		return ep.ID
	}
	a, b := addEndpoint(destA.srv.URL), addEndpoint(destB.srv.URL)

	var mu sync.Mutex
	var latencies []time.Duration
	var last time.Time
	cfg := &delivery.Config{
		Workers: neighbourWorkers, PerEndpointConcurrency: c.per, AllowPrivateDestinations: true,
		Logger: slog.New(slog.DiscardHandler),
		Hooks: kapsel.Hooks{OnAttempt: func(i kapsel.AttemptInfo) {
			if i.EndpointID == b && i.Outcome == kapsel.OutcomeDelivered {
				mu.Lock()
				latencies = append(latencies, i.EndToEnd)
				last = time.Now()
				mu.Unlock()
			}
		}},
	}
	if c.breakers {
		set, err := breaker.New(store, &breaker.Config{Logger: slog.New(slog.DiscardHandler)})
		fatal(err)
		cfg.Breakers = set
	}
	d, err := delivery.New(store, cfg)
	fatal(err)

	e.insert(a, neighbourBacklog, time.Now())
	started := time.Now()
	fatal(d.Start(ctx))
	defer func() {
		destA.unhang()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		fatal(d.Stop(sctx))
	}()

	// Feed B at a fixed rate, in batches every 10 ms.
	start := time.Now()
	total := int(neighbourRate * neighbourFeed / time.Second)
	perTick := neighbourRate / 100
	tick := time.NewTicker(10 * time.Millisecond)
	for sent := 0; sent < total; sent += perTick {
		<-tick.C
		e.insert(b, perTick, time.Now())
		d.Wake()
	}
	tick.Stop()
	fed := time.Now()
	deadline := time.Now().Add(20 * time.Second)
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for {
		mu.Lock()
		n := len(latencies)
		mu.Unlock()
		if n >= total {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%+v: %d of %d deliveries to B made after 20 s", c, n, total)
		}
		<-poll.C
	}
	aRequests := destA.hits.Load()
	aElapsed := time.Since(started)

	mu.Lock()
	defer mu.Unlock()
	slices.Sort(latencies)
	q := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
	return neighbourResult{
		p50: q(0.5), p99: q(0.99), max: latencies[len(latencies)-1],
		lag:       max(last.Sub(fed), 0),
		rate:      float64(total) / last.Sub(start).Seconds(),
		fedRate:   float64(total) / fed.Sub(start).Seconds(),
		aRequests: aRequests,
		aElapsed:  aElapsed,
	}
}

func newNeighbourDest(tb testing.TB, sick bool) *destination {
	d := &destination{release: make(chan struct{})}
	d.status.Store(http.StatusOK)
	d.hang.Store(sick)
	d.srv = newServer(d)
	tb.Cleanup(d.srv.Close)
	tb.Cleanup(d.unhang)
	return d
}

// TestSickNeighbourDoesNotHurt compares B with A healthy and with A timing
// out on every attempt, with the default per-endpoint cap (half of the
// pool), with and without breakers. It runs in CI with -race next to other
// packages on a loaded machine, so it asserts what a sick A structurally
// changes rather than tight latency percentiles: B keeping up with its
// feed, no B event waiting as long as A's timeout, B's p99 within a
// generous margin of the healthy run's, and the number of requests A can
// have received. Without the cap (a default letting A take every worker) B's
// p99 reaches A's timeout and its rate halves. docs/breaker.md records
// measured numbers.
func TestSickNeighbourDoesNotHurt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds on the wall clock")
	}
	healthy := runNeighbours(t, neighbourCase{breakers: true})
	t.Logf("A healthy: B p50 %s p99 %s max %s lag %s rate %.0f/s (fed %.0f/s)", healthy.p50, healthy.p99, healthy.max, healthy.lag, healthy.rate, healthy.fedRate)
	const per = neighbourWorkers / 2 // the default cap
	for _, c := range []struct {
		name string
		c    neighbourCase
	}{
		{"breaker+cap", neighbourCase{sick: true, breakers: true}},
		{"cap-only", neighbourCase{sick: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sick := runNeighbours(t, c.c)
			t.Logf("A sick: B p50 %s p99 %s max %s lag %s rate %.0f/s (fed %.0f/s); A requests %d in %s",
				sick.p50, sick.p99, sick.max, sick.lag, sick.rate, sick.fedRate, sick.aRequests, sick.aElapsed.Round(time.Millisecond))
			// Against this run's own feed, not the healthy run's: on a
			// loaded machine the feeder itself falls behind its 300/s.
			if sick.rate < 0.8*sick.fedRate {
				t.Errorf("B was delivered at %.0f/s with A sick, under 80%% of the %.0f/s it was fed at", sick.rate, sick.fedRate)
			}
			// A B event that waited for a worker or a claim held up by A
			// waits up to A's timeout. The latency bounds leave room for
			// stalls of a loaded machine (up to 0.7 s seen under -race with
			// other packages' tests alongside); the cap itself is checked
			// by the request counts below, which no load can break.
			if sick.max >= neighbourTimeout {
				t.Errorf("a B delivery took %s with A sick, as long as A's timeout: it waited behind A", sick.max)
			}
			if bound := 2*healthy.p99 + 750*time.Millisecond; sick.p99 > bound {
				t.Errorf("B's p99 with A sick is %s, over %s (2× healthy + 750 ms)", sick.p99, bound)
			}
			// Every request to A lasts its whole timeout and at most per run
			// at once, so per "lanes" of back-to-back requests bound them.
			if lanes := per * (int64(sick.aElapsed/neighbourTimeout) + 1); sick.aRequests > lanes {
				t.Errorf("A received %d requests in %s: more than %d at once", sick.aRequests, sick.aElapsed, per)
			}
			// With the breaker: A's first wave (per requests) and at most
			// the attempts that started between its first failure and the
			// trip (ConsecutiveFailures-1); no probe before the cool-down.
			if most := int64(per + breaker.DefaultConsecutiveFailures); c.c.breakers && sick.aRequests > most {
				t.Errorf("A received %d requests, over %d: the breaker should have stopped it after the first wave", sick.aRequests, most)
			}
		})
	}
}

// BenchmarkNeighbours measures B next to a sick A with and without breakers
// and the per-endpoint cap. Run with -benchtime=1x; each run takes ~3 s.
func BenchmarkNeighbours(b *testing.B) {
	cases := []struct {
		name string
		c    neighbourCase
	}{
		{"A-healthy", neighbourCase{breakers: true}},
		{"A-sick/breaker+cap", neighbourCase{sick: true, breakers: true}},
		{"A-sick/cap-only", neighbourCase{sick: true}},
		{"A-sick/breaker-only", neighbourCase{sick: true, breakers: true, per: neighbourWorkers}},
		{"A-sick/neither", neighbourCase{sick: true, per: neighbourWorkers}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			var r neighbourResult
			for range b.N {
				r = runNeighbours(b, bc.c)
			}
			b.ReportMetric(float64(r.p50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(r.p99.Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(r.max.Microseconds())/1000, "max-ms")
			b.ReportMetric(r.rate, "B-deliveries/s")
			b.ReportMetric(float64(r.aRequests), "A-requests")
			b.ReportMetric(0, "ns/op")
		})
	}
}
