package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkServerTracing is BenchmarkServer (64 clients, closed loop,
// GitHub-signed 1 KiB webhooks over real HTTP, each delivered to a local
// destination, embedded store) with tracing off and on, in alternating
// rounds so that the machine's load weighs on both alike. With tracing on,
// kapseld exports every span (the SDK's default sampler, parentbased
// always_on) over OTLP/HTTP to a local receiver that reads and drops them.
//
//	go test ./cmd/kapseld -run '^$' -bench ServerTracing -benchtime 3000x
func BenchmarkServerTracing(b *testing.B) {
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer recv.Close()
	for round := 1; round <= 3; round++ {
		for _, on := range []bool{false, true} {
			name := fmt.Sprintf("round=%d/tracing=off", round)
			if on {
				name = fmt.Sprintf("round=%d/tracing=on", round)
			}
			b.Run(name, func(b *testing.B) {
				vars := map[string]string{"KAPSEL_DATA_DIR": b.TempDir()}
				if on {
					vars["OTEL_EXPORTER_OTLP_ENDPOINT"] = recv.URL
				}
				benchServer(b, vars, 0)
			})
		}
	}
}
