package ingest_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/ingest"
	"github.com/kapsel-dev/kapsel/ingest/verify"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// A GitHub webhook is verified, stored and answered 202; the same delivery
// again is answered 200 as a duplicate of the first event.
func Example() {
	ctx := context.Background()
	store := memstore.New()
	// The front door's operations create the endpoint; the front door
	// itself would also build and start the ingester.
	ops, _ := service.New(store, &service.Config{})
	tenant, _, _ := ops.CreateTenant(ctx, service.TenantCreate{Name: "acme"})
	ep, _, _ := ops.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{
		Name: "github", URL: "https://example.com/hooks",
		IngestVerifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeGitHub, Secrets: []string{"It's a Secret to Everybody"}},
	})

	in, err := ingest.New(store, nil)
	if err != nil {
		panic(err)
	}
	if err := in.Start(ctx); err != nil {
		panic(err)
	}
	defer in.Stop(ctx)
	srv := httptest.NewServer(in.Handler())
	defer srv.Close()

	send := func() {
		body := `{"zen":"Keep it logically awesome."}`
		mac := hmac.New(sha256.New, []byte("It's a Secret to Everybody"))
		mac.Write([]byte(body))
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ingest/"+string(ep.ID), strings.NewReader(body))
		req.Header.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode, "replayed:", resp.Header.Get("Idempotent-Replayed") == "true")
	}
	send()
	send()
	// Output:
	// 202 replayed: false
	// 200 replayed: true
}

// An application adds its own signature scheme next to the built-in ones;
// endpoints then name it in their VerifierConfig.Scheme.
func ExampleConfig_verifiers() {
	reg := verify.NewRegistry()
	err := reg.Register("acme-token", verify.Func(func(p *verify.Params) error {
		for _, s := range p.Secrets {
			if hmac.Equal([]byte(p.Header.Get("X-Acme-Token")), []byte(s)) {
				return nil
			}
		}
		return fmt.Errorf("X-Acme-Token: %w", verify.ErrMismatch)
	}))
	if err != nil {
		panic(err)
	}
	_, err = ingest.New(memstore.New(), &ingest.Config{Verifiers: reg})
	fmt.Println(err, reg.Schemes())
	// Output:
	// <nil> [acme-token github hmac-sha256 none shopify slack standard-webhooks stripe]
}
