package delivery_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/ingest"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// A dispatcher on the in-memory store delivers an event to a destination,
// which verifies the signature with the Standard Webhooks reference library.
func ExampleNew() {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("a 24-byte signing secret"))
	received := make(chan string, 1)
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		wh, _ := standardwebhooks.NewWebhook(secret)
		if err := wh.Verify(body, r.Header); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		received <- fmt.Sprintf("%s attempt %s: %s", r.Header.Get("User-Agent"), r.Header.Get("X-Kapsel-Attempt"), body)
	}))
	defer dest.Close()

	ctx := context.Background()
	store := memstore.New()
	// An application creates these through the front door (package
	// service), which validates them; the example writes them to the store
	// directly. The endpoint's empty subscription takes every event of its
	// tenant.
	tenant, _ := store.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "acme", APIKeyHash: []byte("hash"), Now: time.Now()})
	source, _ := store.SourceInsert(ctx, &kapsel.SourceInsertParams{Now: time.Now(), Source: &kapsel.Source{
		TenantID: tenant.ID, Name: "shop", Verifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeNone}}})
	_, _ = store.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Now: time.Now(), Endpoint: &kapsel.Endpoint{
		TenantID: tenant.ID, Name: "warehouse", URL: dest.URL + "/webhooks",
		SigningSecrets: []kapsel.SigningSecret{{Secret: secret}}, RetryPolicy: kapsel.DefaultRetryPolicy()}})

	d, err := delivery.New(store, &delivery.Config{
		AllowedCIDRs: kapseltest.Loopback, // the destination is on 127.0.0.1
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	if err := d.Start(ctx); err != nil {
		panic(err)
	}
	defer d.Stop(ctx)

	// An ingester stores the event, fanned out to the endpoint, and wakes
	// the dispatcher after its commit.
	in, _ := ingest.New(store, &ingest.Config{Waker: d, Logger: slog.New(slog.DiscardHandler)})
	_ = in.Start(ctx)
	defer in.Stop(ctx)
	_, _ = in.Ingest(ctx, &kapsel.IngestRequest{
		SourceID: string(source.ID), Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"type":"order.paid"}`),
	})

	fmt.Println(<-received)
	// Output: Kapsel/0.2.0 attempt 1: {"type":"order.paid"}
}

// Sign computes the webhook-signature of a delivery; this is the Standard
// Webhooks specification's own example.
func ExampleSign() {
	sig, err := delivery.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(sig)
	// Output: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
}

// ValidateURL refuses destinations the SSRF guard would block, with code
// E1007.
func ExampleValidateURL() {
	for _, u := range []string{"https://hooks.example.com/in", "http://169.254.169.254/latest", "https://user:pw@example.com/"} {
		err := delivery.ValidateURL(u, false)
		fmt.Println(kapsel.CodeOf(err) == kapsel.CodeInvalidURL, err != nil)
	}
	// Output:
	// false false
	// true true
	// true true
}
