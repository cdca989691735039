// Command embedded shows Kapsel embedded in an application's own HTTP server
// through its front door, package service: the service's handler mounted on
// the application's mux beside its own routes, and delivery running in the
// same process. It uses the in-memory store so it runs anywhere; swap in
// store/pgstore or store/sqlitestore for durability.
//
//	go run ./examples/embedded
//
// It creates a tenant, a source that accepts GitHub-signed webhooks and an
// endpoint subscribed to that source's events, ingests one through its own
// listener on 127.0.0.1, prints what the destination receives, and exits.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run serves the application with Kapsel mounted, ingests one webhook,
// writes what happens to out, and stops.
func run(ctx context.Context, out io.Writer) error {
	svc, err := service.New(memstore.New(), &service.Config{
		Logger: slog.New(slog.DiscardHandler),
		// The destination is on loopback, which the SSRF guard refuses by
		// default.
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	if err != nil {
		return err
	}
	if err := svc.Start(ctx); err != nil {
		return err
	}
	defer stop(svc)

	// A destination the application owns (in real life: another service).
	got := make(chan string, 1)
	dest, closeDest, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- fmt.Sprintf("%s (webhook-id set: %t)", body, r.Header.Get("webhook-id") != "")
	}))
	if err != nil {
		return err
	}
	defer closeDest()

	tenant, _, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "example"})
	if err != nil {
		return err
	}
	// The source: webhooks arriving at its ingest URL must carry GitHub's
	// signature.
	src, err := svc.CreateSource(ctx, tenant.ID, service.SourceCreate{
		Name:     "github",
		Verifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeGitHub, Secrets: []string{"It's a Secret to Everybody"}},
	})
	if err != nil {
		return err
	}
	// The endpoint: where the source's events go.
	if _, _, err := svc.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{
		Name: "ci", URL: "http://" + dest + "/hook", SourceIDs: []kapsel.SourceID{src.ID},
	}); err != nil {
		return err
	}

	// The application's own mux: its routes, and Kapsel's at the root
	// (POST /ingest/{source_id} and the management API under /v1/).
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.Handle("/", svc.Handler())
	addr, closeApp, err := serve(mux)
	if err != nil {
		return err
	}
	defer closeApp()

	// A provider sends a GitHub-signed webhook (GitHub's published test
	// vector), then a forged one.
	ingestURL := "http://" + addr + service.IngestURL(src.ID)
	for _, sig := range []string{
		"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
		"sha256=0000000000000000000000000000000000000000000000000000000000000000",
	} {
		status, err := post(ctx, ingestURL, sig)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "ingest answered %d %s\n", status, http.StatusText(status))
	}

	select {
	case s := <-got:
		fmt.Fprintln(out, "destination received", s)
	case <-time.After(10 * time.Second):
		return errors.New("not delivered within 10 s")
	}
	return nil
}

// post sends "Hello, World!" to url with a GitHub signature header.
func post(ctx context.Context, url, signature string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte("Hello, World!")))
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Hub-Signature-256", signature)
	req.Header.Set("X-GitHub-Delivery", "delivery-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// serve serves h on a free port of 127.0.0.1 and returns its address and a
// function that shuts it down.
func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// stop stops the service within a bounded time.
func stop(svc *service.Service) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = svc.Stop(ctx)
}
