package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kapsel-dev/kapsel"
)

func TestRequestEventType(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", kapsel.MaxEventTypeLen-1) + "é" // 256 bytes, a character across the limit
	for _, tc := range []struct {
		name   string
		scheme string
		kv     []string
		body   string
		want   string
		parses bool // whether the body must be parsed
	}{
		{"github header", kapsel.SchemeGitHub, []string{"X-GitHub-Event", "pull_request"}, `{"type":"no"}`, "pull_request", false},
		{"github without the header", kapsel.SchemeGitHub, nil, `{"type":"no"}`, "", false},
		{"shopify header", kapsel.SchemeShopify, []string{"X-Shopify-Topic", "orders/create"}, `{"type":"no"}`, "orders/create", false},
		{"stripe body type", kapsel.SchemeStripe, nil, stripeEventBody, "payment_intent.succeeded", true},
		{"stripe ignores headers", kapsel.SchemeStripe, []string{"X-GitHub-Event", "push"}, `{}`, "", true},
		{"standard webhooks body type", kapsel.SchemeStandardWebhooks, nil, `{"type":"invoice.paid","data":{}}`, "invoice.paid", true},
		{"slack event.type", kapsel.SchemeSlack, nil, slackEventBody, "app_mention", true},
		{"slack type without an event", kapsel.SchemeSlack, nil, `{"type":"app_rate_limited"}`, "app_rate_limited", true},
		{"slack empty event.type", kapsel.SchemeSlack, nil, `{"type":"event_callback","event":{"type":""}}`, "event_callback", true},
		{"none reads nothing", kapsel.SchemeNone, []string{"X-GitHub-Event", "push"}, stripeEventBody, "", false},
		{"hmac-sha256 reads nothing", kapsel.SchemeHMACSHA256, []string{"X-Shopify-Topic", "t"}, stripeEventBody, "", false},
		{"an application's scheme reads nothing", "acme", nil, stripeEventBody, "", false},
		{"not JSON", kapsel.SchemeStripe, nil, "type=charge.failed", "", true},
		{"not a string", kapsel.SchemeStripe, nil, `{"type":42}`, "", true},
		{"nested type is not the type", kapsel.SchemeStandardWebhooks, nil, `{"data":{"type":"x"}}`, "", true},
		{"long header cut at a character", kapsel.SchemeGitHub, []string{"X-GitHub-Event", long}, "", long[:kapsel.MaxEventTypeLen-1], false},
		{"long body type cut", kapsel.SchemeStripe, nil, `{"type":"` + strings.Repeat("a", 300) + `"}`, strings.Repeat("a", kapsel.MaxEventTypeLen), true},
		{"invalid bytes made safe", kapsel.SchemeGitHub, []string{"X-GitHub-Event", "pu\xffsh\x00"}, "", "pu\uFFFDsh\uFFFD", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for i := 0; i+1 < len(tc.kv); i += 2 {
				h.Add(tc.kv[i], tc.kv[i+1])
			}
			body := newJSONBody([]byte(tc.body))
			if got := requestEventType(tc.scheme, h, body); got != tc.want {
				t.Fatalf("type %q, want %q", got, tc.want)
			}
			if body.parsed != tc.parses {
				t.Fatalf("body parsed: %v, want %v", body.parsed, tc.parses)
			}
			if got := RequestEventType(tc.scheme, h, []byte(tc.body)); got != tc.want {
				t.Fatalf("RequestEventType = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestEventTypeStored sends a request signed as each provider signs it and
// checks the type stored on the event.
func TestEventTypeStored(t *testing.T) {
	t.Parallel()
	swhKey := []byte("0123456789abcdef0123456789abcdef")
	swhSecret := "whsec_" + base64.StdEncoding.EncodeToString(swhKey)
	shopifySign := func(secret, body string) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(body))
		return base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	longType := strings.Repeat("ü", 200) // 400 bytes
	for _, tc := range []struct {
		name    string
		scheme  string
		secrets []string
		body    string
		sign    func(body string, ts int64) []string
		want    string
	}{
		{"github", kapsel.SchemeGitHub, []string{"k"}, `{"zen":"Keep it logically awesome."}`, func(body string, _ int64) []string {
			return []string{"X-Hub-Signature-256", "sha256=" + hmacHex("k", body), "X-GitHub-Event", "ping", "X-GitHub-Delivery", "d-1"}
		}, "ping"},
		{"github long type", kapsel.SchemeGitHub, []string{"k"}, `{}`, func(body string, _ int64) []string {
			return []string{"X-Hub-Signature-256", "sha256=" + hmacHex("k", body), "X-GitHub-Event", longType}
		}, strings.Repeat("ü", 127)},
		{"stripe", kapsel.SchemeStripe, []string{"whsec_test"}, stripeEventBody, func(body string, ts int64) []string {
			return []string{"Stripe-Signature", signStripe("whsec_test", body, ts)}
		}, "payment_intent.succeeded"},
		{"standard-webhooks", kapsel.SchemeStandardWebhooks, []string{swhSecret}, `{"type":"invoice.paid","data":{"id":"in_1"}}`,
			func(body string, ts int64) []string {
				t := strconv.FormatInt(ts, 10)
				m := hmac.New(sha256.New, swhKey)
				m.Write([]byte("msg_1." + t + "." + body))
				return []string{"webhook-id", "msg_1", "webhook-timestamp", t, "webhook-signature", "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))}
			}, "invoice.paid"},
		{"shopify", kapsel.SchemeShopify, []string{"k"}, `{"id":820982911946154508}`, func(body string, _ int64) []string {
			return []string{"X-Shopify-Hmac-Sha256", shopifySign("k", body), "X-Shopify-Topic", "orders/create"}
		}, "orders/create"},
		{"slack", kapsel.SchemeSlack, []string{"s"}, slackEventBody, func(body string, ts int64) []string {
			return signSlack("s", body, ts)
		}, "app_mention"},
		{"hmac-sha256", kapsel.SchemeHMACSHA256, []string{"k"}, `{"type":"not.read"}`, func(body string, _ int64) []string {
			return []string{"X-Kapsel-Signature", hmacHex("k", body), "X-GitHub-Event", "not-read"}
		}, ""},
		{"none", kapsel.SchemeNone, nil, `{"type":"not.read"}`, func(string, int64) []string {
			return []string{"X-GitHub-Event", "not-read"}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, nil)
			src := e.source(nil, kapsel.VerifierConfig{Scheme: tc.scheme, Secrets: tc.secrets})
			r := accepted(t, e.post(src.ID, tc.body, append(tc.sign(tc.body, e.clock.Now().Unix()), "Content-Type", "application/json")...), 202)
			evs := e.events(src.ID)
			if len(evs) != 1 || evs[0].ID != r.ID {
				t.Fatalf("stored %d events, want the one answered (%s)", len(evs), r.ID)
			}
			if evs[0].Type != tc.want {
				t.Fatalf("stored type %q, want %q", evs[0].Type, tc.want)
			}
			if len(evs[0].Type) > kapsel.MaxEventTypeLen || !utf8.ValidString(evs[0].Type) {
				t.Fatalf("stored type of %d bytes, valid UTF-8 %v", len(evs[0].Type), utf8.ValidString(evs[0].Type))
			}
			if tc.want != "" {
				list, err := e.store.EventList(e.ctx, &kapsel.EventListParams{TenantID: src.TenantID, Type: tc.want})
				if err != nil || len(list) != 1 {
					t.Fatalf("listing by type: %d events, %v", len(list), err)
				}
			}
		})
	}
}

// TestSendType: an application's send keeps its type, and one that is not
// printable text of at most 255 bytes is refused with E1009 before anything
// is stored.
func TestSendType(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	tn := e.tenant(0, 0)
	res, err := e.in.Send(e.ctx, &kapsel.EventInsertParams{TenantID: tn.ID, Type: "invoice.paid", Body: []byte(`{}`)})
	if err != nil || res.Event.Type != "invoice.paid" {
		t.Fatalf("Send: %+v, %v", res, err)
	}
	for _, bad := range []string{strings.Repeat("a", kapsel.MaxEventTypeLen+1), "a\nb", "a\xffb", "a\x00"} {
		_, err := e.in.Send(e.ctx, &kapsel.EventInsertParams{TenantID: tn.ID, Type: bad, Body: []byte(`{}`)})
		var ke *kapsel.Error
		if !errors.As(err, &ke) || ke.Code != kapsel.CodeMalformedRequest {
			t.Fatalf("Send with type %q: %v, want E1009", bad, err)
		}
	}
	if list, err := e.store.EventList(e.ctx, &kapsel.EventListParams{TenantID: tn.ID}); err != nil || len(list) != 1 {
		t.Fatalf("%d events stored (%v), want 1", len(list), err)
	}
}
