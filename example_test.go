package kapsel_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/ingest"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// Embedding Kapsel: an ingester accepts a webhook into a store, and a
// dispatcher in the same process delivers it to its destination, signed per
// Standard Webhooks. The in-memory store keeps the example self-contained;
// production code uses store/pgstore.
func Example() {
	ctx := context.Background()
	store := memstore.New()

	// The destination: prints what it receives.
	received := make(chan string, 1)
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		received <- fmt.Sprintf("%s %s attempt=%s signed=%t", r.Method, body,
			r.Header.Get("X-Kapsel-Attempt"), r.Header.Get("webhook-signature") != "")
	}))
	defer dest.Close()

	// A tenant's API key authenticates it to the management API; the store
	// keeps only its hash.
	keyHash := sha256.Sum256([]byte("kap_example-key"))
	tenant, err := store.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "acme", APIKeyHash: keyHash[:], Now: time.Now()})
	if err != nil {
		panic(err)
	}
	ep, err := store.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Now: time.Now(), Endpoint: &kapsel.Endpoint{
		TenantID:       tenant.ID,
		Name:           "orders",
		URL:            dest.URL,
		IngestVerifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeNone},
		SigningSecrets: []kapsel.SigningSecret{{Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
		RetryPolicy:    kapsel.DefaultRetryPolicy(),
	}})
	if err != nil {
		panic(err)
	}

	// The dispatcher; the destination is on loopback, which the SSRF guard
	// blocks unless allowed.
	dispatcher, err := delivery.New(store, &delivery.Config{
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	if err != nil {
		panic(err)
	}
	if err := dispatcher.Start(ctx); err != nil {
		panic(err)
	}
	defer dispatcher.Stop(ctx)

	// The ingester wakes the dispatcher after each commit.
	ingester, err := ingest.New(store, &ingest.Config{Waker: dispatcher})
	if err != nil {
		panic(err)
	}
	if err := ingester.Start(ctx); err != nil {
		panic(err)
	}
	defer ingester.Stop(ctx)

	body := []byte(`{"order":42}`)
	res, err := ingester.Ingest(ctx, &kapsel.IngestRequest{
		EndpointID: string(ep.ID),
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       body,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("accepted:", res.Event.Status, "duplicate:", res.Duplicate)

	select {
	case got := <-received:
		fmt.Println("destination got:", got)
	case <-time.After(10 * time.Second):
		fmt.Println("not delivered")
	}
	// Output:
	// accepted: pending duplicate: false
	// destination got: POST {"order":42} attempt=1 signed=true
}
