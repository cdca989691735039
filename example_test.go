package kapsel_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"time"

	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// Embedding Kapsel: the front door (package service) is built from a store
// and a Config in one call; a webhook ingested through its handler is
// committed, then delivered to its destination, signed per Standard
// Webhooks. The in-memory store keeps the example self-contained;
// production code uses store/pgstore or store/sqlitestore.
func Example() {
	ctx := context.Background()

	// The destination: prints what it receives.
	received := make(chan string, 1)
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		received <- fmt.Sprintf("%s %s attempt=%s signed=%t", r.Method, body,
			r.Header.Get("X-Kapsel-Attempt"), r.Header.Get("webhook-signature") != "")
	}))
	defer dest.Close()

	// The destination is on loopback, which the SSRF guard blocks unless
	// allowed.
	k, err := service.New(memstore.New(), &service.Config{
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	if err != nil {
		panic(err)
	}
	if err := k.Start(ctx); err != nil {
		panic(err)
	}
	defer k.Stop(ctx)
	kapseld := httptest.NewServer(k.Handler())
	defer kapseld.Close()

	tenant, _, err := k.CreateTenant(ctx, service.TenantCreate{Name: "acme"})
	if err != nil {
		panic(err)
	}
	ep, _, err := k.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{Name: "orders", URL: dest.URL})
	if err != nil {
		panic(err)
	}

	resp, err := http.Post(kapseld.URL+"/ingest/"+string(ep.ID), "application/json", strings.NewReader(`{"order":42}`))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println("ingest answered", resp.StatusCode)

	select {
	case got := <-received:
		fmt.Println("destination got:", got)
	case <-time.After(10 * time.Second):
		fmt.Println("not delivered")
	}
	// Output:
	// ingest answered 202
	// destination got: POST {"order":42} attempt=1 signed=true
}
