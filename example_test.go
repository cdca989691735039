package kapsel_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// Embedding Kapsel: the front door (package service) is built from a store
// and a Config in one call; a webhook ingested at a source through its
// handler is committed with one delivery per subscribed endpoint, then
// delivered to each, signed per Standard Webhooks. The in-memory store
// keeps the example self-contained; production code uses store/pgstore or
// store/sqlitestore.
func Example() {
	ctx := context.Background()

	// The destinations: two paths of one server, which reports what each
	// receives.
	received := make(chan string, 2)
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		received <- fmt.Sprintf("%s %s %s attempt=%s signed=%t", r.Method, r.URL.Path, body,
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
	// The inbound door, and two destinations subscribed to its events.
	src, err := k.CreateSource(ctx, tenant.ID, service.SourceCreate{Name: "shop"})
	if err != nil {
		panic(err)
	}
	for _, name := range []string{"billing", "warehouse"} {
		_, _, err := k.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{
			Name: name, URL: dest.URL + "/" + name, SourceIDs: []kapsel.SourceID{src.ID},
		})
		if err != nil {
			panic(err)
		}
	}

	resp, err := http.Post(kapseld.URL+service.IngestURL(src.ID), "application/json", strings.NewReader(`{"order":42}`))
	if err != nil {
		panic(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("ingest answered", resp.StatusCode, strings.Contains(string(answer), `"deliveries":2`))

	var got []string
	for range 2 {
		select {
		case g := <-received:
			got = append(got, g)
		case <-time.After(10 * time.Second):
			got = append(got, "not delivered")
		}
	}
	slices.Sort(got)
	for _, g := range got {
		fmt.Println("destination got:", g)
	}
	// Output:
	// ingest answered 202 true
	// destination got: POST /billing {"order":42} attempt=1 signed=true
	// destination got: POST /warehouse {"order":42} attempt=1 signed=true
}
