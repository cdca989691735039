package delivery_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/internal/testdb"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// BenchmarkEndToEndLatency measures, at low load (one event at a time), the
// time from an event's commit (EventInsertMany returned) to the destination
// receiving it:
//
//   - memstore/wake: in-process store, ingest calls Dispatcher.Wake.
//   - pgstore/wake: Postgres, same process, Wake after the commit.
//   - pgstore/notify: Postgres, the event is inserted through another pool
//     (another process) and only LISTEN/NOTIFY wakes the dispatcher.
//
// It reports p50, p99 and max in milliseconds.
func BenchmarkEndToEndLatency(b *testing.B) {
	b.Run("memstore/wake", func(b *testing.B) {
		s := memstore.New()
		benchLatency(b, s, s, true)
	})
	b.Run("pgstore/wake", func(b *testing.B) {
		s := openPG(b, testdb.New(b), true)
		benchLatency(b, s, s, true)
	})
	b.Run("pgstore/notify", func(b *testing.B) {
		url := testdb.New(b)
		dispatcherSide := openPG(b, url, true)
		ingestSide := openPG(b, url, false)
		benchLatency(b, dispatcherSide, ingestSide, false)
	})
}

func benchLatency(b *testing.B, dispatcherStore kapsel.Store, ingestStore kapsel.EventInserter, wake bool) {
	dest := kapseltest.NewDestination(b)
	ep := pgEndpoint(b, dispatcherStore, dest, newSecret(b))
	d := startDispatcher(b, dispatcherStore, &delivery.Config{
		AllowedCIDRs: kapseltest.Loopback,
		Logger:       slog.New(slog.DiscardHandler),
	})
	body := []byte(`{"type":"latency.probe"}`)
	send := func(n int) time.Duration {
		_, err := ingestStore.EventInsertMany(context.Background(), &kapsel.EventInsertManyParams{
			Events: []*kapsel.EventInsertParams{{TenantID: ep.TenantID, Body: body, ContentType: "application/json"}},
			Now:    time.Now(),
		})
		if err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		if wake {
			d.Wake()
		}
		reqs := dest.WaitForRequests(b, n, 10*time.Second)
		return reqs[n-1].ReceivedAt.Sub(committed)
	}
	for i := range 20 { // warm up connections and caches
		send(i + 1)
	}
	lat := make([]time.Duration, 0, b.N)
	n := 20
	b.ResetTimer()
	for range b.N {
		n++
		lat = append(lat, send(n))
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
}
