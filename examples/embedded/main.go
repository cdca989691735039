// Command embedded shows Kapsel embedded in an application's own HTTP server:
// the ingest handler mounted on the application's mux, and a dispatcher in the
// same process delivering to a destination. It uses the in-memory store so it
// runs anywhere; swap in store/pgstore for durability.
//
//	go run ./examples/embedded
//
// It ingests one webhook through its own HTTP listener, prints what the
// destination receives, and exits.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/api"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/ingest"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	store := memstore.New()

	// A destination the application owns (in real life: another service).
	got := make(chan string, 1)
	dest, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- fmt.Sprintf("webhook-id=%s body=%s", r.Header.Get("webhook-id"), body)
	}))
	if err != nil {
		return err
	}

	now := time.Now()
	// The tenant's management API key is stored only as its hash.
	tenant, err := store.TenantInsert(ctx, &kapsel.TenantInsertParams{
		Name: "example", APIKeyHash: api.HashAPIKey("kap_example-key"), Now: now,
	})
	if err != nil {
		return err
	}
	ep, err := store.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Now: now, Endpoint: &kapsel.Endpoint{
		TenantID:       tenant.ID,
		Name:           "example",
		URL:            "http://" + dest + "/hook",
		IngestVerifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeGitHub, Secrets: []string{"It's a Secret to Everybody"}},
		SigningSecrets: []kapsel.SigningSecret{{Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
		RetryPolicy:    kapsel.DefaultRetryPolicy(),
	}})
	if err != nil {
		return err
	}

	dispatcher, err := delivery.New(store, &delivery.Config{
		// The destination is on loopback, which the SSRF guard blocks by default.
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	if err != nil {
		return err
	}
	if err := dispatcher.Start(ctx); err != nil {
		return err
	}
	defer dispatcher.Stop(ctx)

	ingester, err := ingest.New(store, &ingest.Config{Waker: dispatcher})
	if err != nil {
		return err
	}
	if err := ingester.Start(ctx); err != nil {
		return err
	}
	defer ingester.Stop(ctx)

	// The application's own mux, with Kapsel's ingest handler mounted on it.
	mux := http.NewServeMux()
	mux.Handle(ingest.Pattern, ingester)
	addr, err := serve(mux)
	if err != nil {
		return err
	}

	// A provider sends a GitHub-signed webhook (GitHub's published test vector).
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://"+addr+"/ingest/"+string(ep.ID), bytes.NewReader([]byte("Hello, World!")))
	req.Header.Set("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	req.Header.Set("X-GitHub-Delivery", "delivery-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Fprintf(os.Stdout, "ingest answered %d %s", resp.StatusCode, answer)

	select {
	case s := <-got:
		fmt.Println("destination received", s)
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("not delivered within 10 s")
	}
}

// serve serves h on a free loopback port and returns its address.
func serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}
