package ingest

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/kapseltest"
)

// deliverTo creates a source with the verifier and an endpoint of a new
// tenant pointing at dest, signing its deliveries with secret, and starts a
// dispatcher on the env's store and clock. The dispatcher is stopped when
// the test ends.
func (e *env) deliverTo(dest *kapseltest.Destination, secret string, v kapsel.VerifierConfig) (*kapsel.Source, *delivery.Dispatcher) {
	e.t.Helper()
	tn := e.tenant(0, 0)
	src := e.source(tn, v)
	if _, err := e.store.EndpointInsert(e.ctx, &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
		TenantID: tn.ID, Name: "ep", URL: dest.URL + "/hook",
		SigningSecrets: []kapsel.SigningSecret{{Secret: secret}},
	}, Now: e.clock.Now()}); err != nil {
		e.t.Fatal(err)
	}
	d, err := delivery.New(e.store, &delivery.Config{AllowedCIDRs: kapseltest.Loopback, Clock: e.clock,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := d.Start(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Stop(ctx)
	})
	return src, d
}

// TestSvixProviderDeliveredWithoutItsHeaders (issue 9 item 14): a webhook
// from a Svix-powered provider (signed by Svix's library with svix-id,
// svix-timestamp, svix-signature) is delivered with Kapsel's own webhook-*
// headers only, so that both the Standard Webhooks library and Svix's —
// which reads svix-* first — verify the delivery with the endpoint's
// signing secret.
func TestSvixProviderDeliveredWithoutItsHeaders(t *testing.T) {
	t.Parallel()
	providerSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("the provider's secret 24b"))
	signingSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("kapsel's own signing key"))
	for _, scheme := range []string{kapsel.SchemeNone, kapsel.SchemeStandardWebhooks} {
		t.Run(scheme, func(t *testing.T) {
			t.Parallel()
			e := setup(t, nil)
			dest := kapseltest.NewDestination(t)
			dest.VerifyWith(t, signingSecret)
			v := kapsel.VerifierConfig{Scheme: scheme}
			if scheme != kapsel.SchemeNone {
				v.Secrets = []string{providerSecret}
			}
			src, d := e.deliverTo(dest, signingSecret, v)

			const body = `{"type":"invoice.paid","data":{"id":"in_1"}}`
			wh, err := svix.NewWebhook(providerSecret)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := wh.Sign("msg_2Lh9KRb0pzN4LePd3XiA0bnY", e.clock.Now(), []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			accepted(t, e.post(src.ID, body, "Content-Type", "application/json", "svix-id", "msg_2Lh9KRb0pzN4LePd3XiA0bnY",
				"svix-timestamp", strconv.FormatInt(e.clock.Now().Unix(), 10), "svix-signature", sig, "X-Provider", "kept"), 202)
			d.Wake()

			got := dest.WaitForRequests(t, 1, 10*time.Second)[0]
			for name := range got.Header {
				if strings.HasPrefix(http.CanonicalHeaderKey(name), "Svix-") {
					t.Errorf("delivered with the provider's %s: %q", name, got.Header[name])
				}
			}
			if got.Header.Get("X-Provider") != "kept" {
				t.Errorf("other provider headers not forwarded: %v", got.Header)
			}
			if got.SignatureErr != nil {
				t.Fatalf("Standard Webhooks library refuses the delivery: %v", got.SignatureErr)
			}
			own, err := svix.NewWebhook(signingSecret)
			if err != nil {
				t.Fatal(err)
			}
			// The delivery is signed at the fake clock's time.
			if err := own.VerifyIgnoringTimestamp(got.Body, got.Header); err != nil {
				t.Fatalf("Svix's library refuses the delivery: %v", err)
			}
		})
	}
}
