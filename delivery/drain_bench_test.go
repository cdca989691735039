package delivery_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/internal/testdb"
	"github.com/kapsel-dev/kapsel/kapseltest"
)

// BenchmarkBacklogDrain measures how fast one dispatcher drains a backlog of
// b.N deliveries (b.N events to one endpoint, inserted before it starts) on Postgres into a trivial local
// destination: claims, HTTP attempts and batched completions together.
// Run it with a fixed count, e.g. -benchtime 20000x.
func BenchmarkBacklogDrain(b *testing.B) {
	s := openPG(b, testdb.New(b), true)
	var got atomic.Int64
	done := make(chan struct{})
	total := int64(b.N)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got.Add(1) == total {
			close(done)
		}
	}))
	b.Cleanup(srv.Close)
	ep := pgEndpoint(b, s, &kapseltest.Destination{URL: srv.URL}, newSecret(b))
	body := []byte(`{"type":"backlog","payload":"0123456789abcdef0123456789abcdef"}`)
	for left := b.N; left > 0; {
		in := make([]*kapsel.EventInsertParams, min(left, 1000))
		for i := range in {
			in[i] = &kapsel.EventInsertParams{TenantID: ep.TenantID, Body: body, ContentType: "application/json"}
		}
		if _, err := s.EventInsertMany(context.Background(), &kapsel.EventInsertManyParams{Events: in, Now: time.Now()}); err != nil {
			b.Fatal(err)
		}
		left -= len(in)
	}
	b.ResetTimer()
	start := time.Now()
	startDispatcher(b, s, &delivery.Config{AllowedCIDRs: kapseltest.Loopback, Logger: slog.New(slog.DiscardHandler)})
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("drained %d of %d", got.Load(), total)
	}
	b.StopTimer()
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "deliveries/s")
}
