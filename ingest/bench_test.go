package ingest_test

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel/ingest"
)

// benchBody is a 1 KiB JSON webhook body.
var benchBody = fmt.Appendf(nil, `{"action":"opened","payload":"%0990d"}`, 0)

// BenchmarkIngestPostgres measures the ingest handler against pgstore: GitHub
// signature checked, a distinct delivery id (idempotency key) per request,
// each answered after its commit, with group commit and with one
// transaction per request, at 1, 16 and 64 concurrent clients. The HTTP
// stack is left out (the handler is called directly) so the numbers show
// the commit strategy. Run (Postgres required):
//
//	KAPSEL_TEST_DATABASE_URL='postgres://root@127.0.0.1:5432/kapsel_test?sslmode=disable' \
//	  go test ./ingest/ -run '^$' -bench IngestPostgres -benchtime 3s
func BenchmarkIngestPostgres(b *testing.B) {
	for _, mode := range []struct {
		name   string
		single bool
	}{{"group", false}, {"single", true}} {
		for _, clients := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/clients=%d", mode.name, clients), func(b *testing.B) {
				// Enough connections for one transaction per client.
				f := newPGFixture(b, clients+4, &ingest.Config{DisableGroupCommit: mode.single})
				var next atomic.Int64
				var failed atomic.Int64
				lat := make([][]time.Duration, clients)
				var wg sync.WaitGroup
				b.ResetTimer()
				for c := range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := next.Add(1)
							if i > int64(b.N) {
								return
							}
							r := f.request(benchBody, fmt.Sprint(b.Name(), "-", i))
							w := httptest.NewRecorder()
							start := time.Now()
							f.h.ServeHTTP(w, r)
							lat[c] = append(lat[c], time.Since(start))
							if w.Code != 202 {
								failed.Add(1)
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				if n := failed.Load(); n > 0 {
					b.Fatalf("%d of %d requests not accepted", n, b.N)
				}
				all := slices.Concat(lat...)
				slices.Sort(all)
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99_ms")
				b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50_ms")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
