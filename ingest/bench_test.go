package ingest_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
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
				runClients(b, clients, func(i int64) (time.Duration, bool) {
					r := f.request(benchBody, fmt.Sprint(b.Name(), "-", i))
					w := httptest.NewRecorder()
					start := time.Now()
					f.h.ServeHTTP(w, r)
					return time.Since(start), w.Code == http.StatusAccepted
				})
			})
		}
	}
}

// BenchmarkIngestHTTP is docs/benchmarks.md's ingest number as stated: webhooks over
// real HTTP to the ingest handler on a net/http server (127.0.0.1:0), GitHub
// signature checked, each acknowledged only after its own row's commit in
// pgstore, delivery held back (no dispatcher runs). 64 clients in this
// process send 1 KiB bodies over keep-alive connections, each with its own
// X-GitHub-Delivery (idempotency key). The body, and so its signature, is
// the same for every request, so the load generator does not spend the
// server's CPU on signing. Reports events/s and the ack latency (request
// sent → response read) at p50 and p99.
//
// handler=noop is the calibration: the same clients and requests against a
// handler that only reads the body and answers 202, i.e. what the machine's
// HTTP stack and load generator allow at that moment. Run (Postgres
// required):
//
//	KAPSEL_TEST_DATABASE_URL='postgres://root@127.0.0.1:5432/kapsel_test?sslmode=disable' \
//	  go test ./ingest/ -run '^$' -bench IngestHTTP -benchtime 20000x -count 3
func BenchmarkIngestHTTP(b *testing.B) {
	b.Run("handler=ingest", func(b *testing.B) {
		f := newPGFixture(b, 2*ingest.DefaultMaxFlushes, nil)
		signature := f.request(benchBody, "sign").Header.Get("X-Hub-Signature-256")
		benchHTTP(b, f.h, "/ingest/"+string(f.src.ID), signature)
		if got := f.count(b); got != b.N {
			b.Fatalf("%d events committed for %d acknowledged requests", got, b.N)
		}
	})
	b.Run("handler=noop", func(b *testing.B) {
		noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"id":"evt_01JAAAAAAAAAAAAAAAAAAAAAAA","deliveries":1,"duplicate":false}`+"\n")
		})
		benchHTTP(b, noop, "/ingest/x", "sha256=0")
	})
}

// benchHTTP serves h on 127.0.0.1:0 and has 64 keep-alive clients POST b.N
// GitHub-style deliveries to path, each expecting 202.
func benchHTTP(b *testing.B, h http.Handler, path, signature string) {
	const clients = 64
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	defer client.CloseIdleConnections()
	url := srv.URL + path
	prefix := b.Name()

	runClients(b, clients, func(i int64) (time.Duration, bool) {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(benchBody))
		if err != nil {
			b.Error(err)
			return 0, false
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "GitHub-Hookshot/bench")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", prefix+"-"+strconv.FormatInt(i, 10))
		req.Header.Set("X-Hub-Signature-256", signature)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return time.Since(start), resp.StatusCode == http.StatusAccepted
	})
}

// runClients resets b's timer and has clients goroutines call send for
// request numbers 1 to b.N between them; send returns the request's latency
// and whether it was accepted. It fails b if any was not, else reports
// events/s and the latency percentiles.
func runClients(b *testing.B, clients int, send func(i int64) (time.Duration, bool)) {
	var next, failed atomic.Int64
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	b.ResetTimer()
	for c := range clients {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				d, ok := send(i)
				lat[c] = append(lat[c], d)
				if !ok {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d requests not accepted", n, b.N)
	}
	reportLatency(b, slices.Concat(lat...))
}

// reportLatency reports events/s and the p50 and p99 of lat.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(0, "ns/op")
}
