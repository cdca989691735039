package delivery

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kapsel-dev/kapsel"
)

var (
	secretA = "whsec_" + base64.StdEncoding.EncodeToString([]byte("first secret key, 32 bytes long!"))
	secretB = "whsec_" + base64.StdEncoding.EncodeToString([]byte("second secret key"))
)

func TestSignMatchesReferenceLibrary(t *testing.T) {
	t.Parallel()
	ts := time.Unix(1_700_000_000, 0)
	for _, body := range [][]byte{nil, []byte(`{"a":1}`), []byte("not json \x00\xff bytes"), make([]byte, 100_000)} {
		got, err := Sign(secretA, "evt_01J0000000000000000000000", ts, body)
		if err != nil {
			t.Fatal(err)
		}
		wh, err := standardwebhooks.NewWebhook(secretA)
		if err != nil {
			t.Fatal(err)
		}
		want, err := wh.Sign("evt_01J0000000000000000000000", ts, body)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("Sign = %q, reference library = %q", got, want)
		}
	}
}

// TestSignKnownVector checks against the Standard Webhooks specification's
// published example, independent of any implementation.
func TestSignKnownVector(t *testing.T) {
	t.Parallel()
	got, err := Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestSignBadSecret(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "whsec_", "whsec_not base64!", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS"} {
		_, err := Sign(s, "evt_x", time.Unix(1, 0), nil)
		if !errors.Is(err, ErrSigningSecret) {
			t.Errorf("Sign(secret %q) error = %v, want ErrSigningSecret", s, err)
		}
		if err != nil && len(s) > 8 && strings.Contains(err.Error(), s[6:]) {
			t.Errorf("error %q contains the secret", err)
		}
	}
}

func testEndpoint(url string, secrets ...kapsel.SigningSecret) *kapsel.Endpoint {
	return &kapsel.Endpoint{
		ID:             kapsel.NewEndpointID(),
		TenantID:       kapsel.NewTenantID(),
		URL:            url,
		State:          kapsel.EndpointActive,
		SigningSecrets: secrets,
		RetryPolicy:    kapsel.DefaultRetryPolicy(),
	}
}

func testEvent(ep *kapsel.Endpoint, body string) *kapsel.Event {
	return &kapsel.Event{
		ID:          kapsel.NewEventID(),
		TenantID:    ep.TenantID,
		Body:        []byte(body),
		ContentType: "application/json",
		Headers:     http.Header{},
		Size:        len(body),
	}
}

func TestNewRequestHeaders(t *testing.T) {
	t.Parallel()
	now := time.Now().Truncate(time.Second)
	ep := testEndpoint("https://example.com/hook?x=1",
		kapsel.SigningSecret{Secret: secretA},
		kapsel.SigningSecret{Secret: secretB, ExpiresAt: now.Add(time.Hour)},
		kapsel.SigningSecret{Secret: "whsec_" + base64.StdEncoding.EncodeToString([]byte("expired")), ExpiresAt: now.Add(-time.Second)},
	)
	ep.Headers = map[string]string{"X-Custom": "custom", "X-Provider": "overridden"}
	ev := testEvent(ep, `{"hello":"world"}`)
	ev.Type = "invoice.paid"
	ev.Headers = http.Header{
		"X-Kapsel-Event-Type": {"forged.type"},
		"X-Provider":          {"github"},
		"X-Multi":             {"a", "b"},
		"User-Agent":          {"GitHub-Hookshot/abc"},
		"Webhook-Id":          {"msg_from_provider"},
		"Webhook-Signature":   {"v1,forged"},
		"Content-Length":      {"999"},
		"Accept-Encoding":     {"gzip"},
	}
	req, err := NewRequest(context.Background(), ep, ev, 3, now, "")
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != http.MethodPost || req.URL.String() != ep.URL {
		t.Fatalf("request %s %s", req.Method, req.URL)
	}
	want := map[string]string{
		"Content-Type":        "application/json",
		"User-Agent":          "Kapsel/" + kapsel.Version,
		"Webhook-Id":          string(ev.ID),
		"Webhook-Timestamp":   strconv.FormatInt(now.Unix(), 10),
		"X-Kapsel-Attempt":    "3",
		"X-Kapsel-Event-Type": "invoice.paid",
		"X-Custom":            "custom",
		"X-Provider":          "overridden",
		"Content-Length":      "",
		"Accept-Encoding":     "",
	}
	for k, v := range want {
		if got := req.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if got := req.Header.Values("X-Multi"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("X-Multi = %q, want [a b]", got)
	}
	sigs := strings.Split(req.Header.Get("Webhook-Signature"), " ")
	if len(sigs) != 2 {
		t.Fatalf("webhook-signature %q: want two signatures (current + grace), not the expired one", req.Header.Get("Webhook-Signature"))
	}
	// Each secret alone verifies with the reference library.
	for _, s := range []string{secretA, secretB} {
		wh, _ := standardwebhooks.NewWebhook(s)
		if err := wh.Verify(ev.Body, req.Header); err != nil {
			t.Errorf("reference library rejects the signature for one secret: %v", err)
		}
	}
	expired, _ := standardwebhooks.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString([]byte("expired")))
	if err := expired.Verify(ev.Body, req.Header); err == nil {
		t.Error("the expired secret still signs")
	}
	if req.ContentLength != int64(len(ev.Body)) {
		t.Errorf("ContentLength = %d", req.ContentLength)
	}
	if got := req.Header.Values("X-Kapsel-Event-Type"); len(got) != 1 {
		t.Errorf("X-Kapsel-Event-Type = %q, want Kapsel's one value", got)
	}
	// An event without a type carries no X-Kapsel-Event-Type.
	ev.Type = ""
	req, err = NewRequest(context.Background(), ep, ev, 1, now, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Values("X-Kapsel-Event-Type"); len(got) != 0 {
		t.Errorf("X-Kapsel-Event-Type of an untyped event = %q, want none", got)
	}
}

func TestNewRequestFailures(t *testing.T) {
	t.Parallel()
	ep := testEndpoint("ftp://example.com/", kapsel.SigningSecret{Secret: secretA})
	ev := testEvent(ep, "x")
	if _, err := NewRequest(context.Background(), ep, ev, 1, time.Now(), ""); kapsel.CodeOf(err) != kapsel.CodeInvalidURL {
		t.Errorf("ftp url: %v, want E1007", err)
	}
	ep = testEndpoint("https://example.com/", kapsel.SigningSecret{Secret: "whsec_!!"})
	if _, err := NewRequest(context.Background(), ep, ev, 1, time.Now(), ""); !errors.Is(err, ErrSigningSecret) {
		t.Errorf("bad secret: %v, want ErrSigningSecret", err)
	}
}

// TestRequestCannotBeResentByTransport (I5): with a forwarded
// Idempotency-Key header a POST looks idempotent to net/http, which then
// resends it on its own after a broken reused connection when it can
// rewind the body — a request without an attempt record. The fault
// campaign saw 182–198 such resends per long run. The request must have no
// GetBody, so the transport cannot resend it.
func TestRequestCannotBeResentByTransport(t *testing.T) {
	t.Parallel()
	ep := &kapsel.Endpoint{ID: kapsel.NewEndpointID(), URL: "http://127.0.0.1:9/hook",
		SigningSecrets: []kapsel.SigningSecret{{Secret: kapsel.NewSigningSecret()}}}
	ev := &kapsel.Event{ID: kapsel.NewEventID(), Body: []byte(`{"a":1}`),
		Headers: http.Header{"Idempotency-Key": {"k1"}}}
	req, err := NewRequest(context.Background(), ep, ev, 1, time.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	if req.GetBody != nil {
		t.Fatal("the request has a GetBody: net/http may resend it without an attempt record")
	}
	if req.Header.Get("Idempotency-Key") != "k1" {
		t.Fatalf("Idempotency-Key %q, want it forwarded", req.Header.Get("Idempotency-Key"))
	}
}
