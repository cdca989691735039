package delivery

import (
	"context"
	"net/http"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"github.com/kapsel-dev/kapsel"
)

// TestNewRequestDropsStoredSvixHeaders (issue 9 item 14): an event stored
// with a provider's svix-* headers (ingest forwards none since, but events
// stored before may carry them) is delivered without them, so that Svix's
// library, which reads svix-* first, verifies Kapsel's own signature.
func TestNewRequestDropsStoredSvixHeaders(t *testing.T) {
	t.Parallel()
	now := time.Now().Truncate(time.Second)
	ep := testEndpoint("https://example.com/hook", kapsel.SigningSecret{Secret: secretA})
	ev := testEvent(ep, `{"hello":"world"}`)
	ev.Headers = http.Header{
		"Svix-Id":        {"msg_from_provider"},
		"Svix-Timestamp": {"1767225600"},
		"Svix-Signature": {"v1,c2lnbmVkIGJ5IHRoZSBwcm92aWRlcg=="},
		"X-Provider":     {"kept"},
	}
	req, err := NewRequest(context.Background(), ep, ev, 1, now, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Svix-Id", "Svix-Timestamp", "Svix-Signature"} {
		if v := req.Header.Values(name); len(v) != 0 {
			t.Errorf("%s sent: %q", name, v)
		}
	}
	if req.Header.Get("X-Provider") != "kept" {
		t.Errorf("other forwarded headers dropped: %v", req.Header)
	}
	wh, err := svix.NewWebhook(secretA)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(ev.Body, req.Header); err != nil {
		t.Fatalf("Svix's library refuses the delivery: %v", err)
	}
}
