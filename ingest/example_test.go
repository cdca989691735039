package ingest_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/ingest"
	"github.com/kapsel-dev/kapsel/ingest/verify"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// A GitHub webhook arrives by a source, is verified, stored with its
// deliveries — one per endpoint of the tenant subscribed to it — and
// answered 202; the same delivery again is answered 200 as a duplicate of
// the first event, with no new delivery.
func Example() {
	ctx := context.Background()
	store := memstore.New()
	// An application creates these through the front door (package
	// service), which validates them and would also build and start the
	// ingester; the example writes them to the store directly.
	now := time.Now()
	tenant, _ := store.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "acme", APIKeyHash: []byte("hash"), Now: now})
	src, _ := store.SourceInsert(ctx, &kapsel.SourceInsertParams{Now: now, Source: &kapsel.Source{
		TenantID: tenant.ID, Name: "github",
		Verifier: kapsel.VerifierConfig{Scheme: kapsel.SchemeGitHub, Secrets: []string{"It's a Secret to Everybody"}},
	}})
	for _, types := range [][]string{{"push"}, {"push", "issues"}, {"issues"}} {
		_, _ = store.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Now: now, Endpoint: &kapsel.Endpoint{
			TenantID: tenant.ID, Name: "ci", URL: "https://example.com/hooks",
			Subscription: kapsel.Subscription{EventTypes: types},
		}})
	}

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
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ingest/"+string(src.ID), strings.NewReader(body))
		req.Header.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		var answer ingest.Response
		_ = json.NewDecoder(resp.Body).Decode(&answer)
		fmt.Println(resp.StatusCode, "deliveries:", answer.Deliveries, "duplicate:", answer.Duplicate,
			"replayed:", resp.Header.Get("Idempotent-Replayed") == "true")
	}
	send()
	send()
	// Output:
	// 202 deliveries: 2 duplicate: false replayed: false
	// 200 deliveries: 0 duplicate: true replayed: true
}

// An application adds its own signature scheme next to the built-in ones;
// sources then name it in their VerifierConfig.Scheme.
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
