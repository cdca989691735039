// Command embedded shows Kapsel embedded in an application's own HTTP
// server: the front door built in one call, its handler mounted on the
// application's mux, an endpoint created through a validated operation, and
// a webhook ingested and delivered in the same process. It uses the
// in-memory store so it runs anywhere; swap in store/pgstore or
// store/sqlitestore for durability.
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
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, w io.Writer) error {
	// A destination the application owns (in real life: another service).
	got := make(chan string, 1)
	dest, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- fmt.Sprintf("body %q, signed: %t", body, r.Header.Get("webhook-signature") != "")
	}))
	if err != nil {
		return err
	}

	// Kapsel, in one call. The destination is on loopback, which the SSRF
	// guard refuses unless allowed.
	k, err := service.New(memstore.New(), service.Config{
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	if err != nil {
		return err
	}
	if err := k.Start(ctx); err != nil {
		return err
	}
	defer k.Stop(context.Background())

	// The application's own mux, with Kapsel mounted on it.
	mux := http.NewServeMux()
	mux.Handle("/", k.Handler())
	addr, err := serve(mux)
	if err != nil {
		return err
	}

	tenant, _, err := k.CreateTenant(ctx, service.TenantCreate{Name: "example"})
	if err != nil {
		return err
	}
	ep, _, err := k.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{
		Name:           "github",
		URL:            "http://" + dest + "/hook",
		IngestVerifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeGitHub, Secrets: []string{"It's a Secret to Everybody"}},
	})
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
	resp.Body.Close()
	fmt.Fprintln(w, "ingest answered", resp.StatusCode)

	select {
	case s := <-got:
		fmt.Fprintln(w, "destination received", s)
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
