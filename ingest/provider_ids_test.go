package ingest

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Bodies shaped as the providers send them.
const (
	stripeEventBody = `{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","api_version":"2024-06-20",` +
		`"type":"payment_intent.succeeded","data":{"object":{"id":"pi_3MtwBwLkdIwHu7ix28a3tqPa","amount":2000}}}`
	slackEventBody = `{"token":"XXYYZZ","team_id":"T123ABC456","api_app_id":"A123ABC456",` +
		`"event":{"type":"app_mention","user":"U123ABC456","text":"<@U0LAN0Z89> is it everything?","ts":"1515449522.000016"},` +
		`"type":"event_callback","event_id":"Ev123ABC456","event_time":1515449522000016}`
)

func TestRequestIdempotencyKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		scheme string
		kv     []string
		body   string
		want   string
		bad    bool
	}{
		{"stripe body id", kapsel.SchemeStripe, nil, stripeEventBody, "evt_1NG8Du2eZvKYlo2CUI79vXWy", false},
		{"slack body event_id", kapsel.SchemeSlack, nil, slackEventBody, "Ev123ABC456", false},
		{"slack ignores a body id", kapsel.SchemeSlack, nil, `{"id":"x"}`, "", false},
		{"header before body", kapsel.SchemeStripe, []string{"Idempotency-Key", "mine"}, stripeEventBody, "mine", false},
		{"provider header before body", kapsel.SchemeSlack, []string{"X-GitHub-Delivery", "gh"}, slackEventBody, "gh", false},
		{"a bad header is not rescued by the body", kapsel.SchemeStripe, []string{"Idempotency-Key", "\x01"}, stripeEventBody, "", true},
		{"other schemes do not read the body", kapsel.SchemeNone, nil, stripeEventBody, "", false},
		{"github does not read the body", kapsel.SchemeGitHub, nil, stripeEventBody, "", false},
		{"standard-webhooks does not read the body", kapsel.SchemeStandardWebhooks, nil, stripeEventBody, "", false},
		{"invalid JSON", kapsel.SchemeStripe, nil, `{"id":"evt_1"`, "", false},
		{"not an object", kapsel.SchemeStripe, nil, `["evt_1"]`, "", false},
		{"number id", kapsel.SchemeStripe, nil, `{"id":42}`, "", false},
		{"null id", kapsel.SchemeStripe, nil, `{"id":null}`, "", false},
		{"empty id", kapsel.SchemeStripe, nil, `{"id":""}`, "", false},
		{"id too long", kapsel.SchemeStripe, nil, `{"id":"` + strings.Repeat("e", 256) + `"}`, "", false},
		{"id not printable ASCII", kapsel.SchemeStripe, nil, `{"id":"evt_\u00e9"}`, "", false},
		{"nested id is not the delivery id", kapsel.SchemeStripe, nil, `{"data":{"id":"pi_1"}}`, "", false},
		{"keys match exactly", kapsel.SchemeStripe, nil, `{"ID":"evt_1"}`, "", false},
		{"escaped string", kapsel.SchemeStripe, nil, `{"id":"evt\u005f1"}`, "evt_1", false},
		{"form body (slash command)", kapsel.SchemeSlack, nil, "token=x&event_id=Ev1", "", false},
		{"empty body", kapsel.SchemeStripe, nil, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for i := 0; i+1 < len(tc.kv); i += 2 {
				h.Add(tc.kv[i], tc.kv[i+1])
			}
			got, err := RequestIdempotencyKey(tc.scheme, h, []byte(tc.body))
			if tc.bad {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// signStripe returns a Stripe-Signature for body at ts.
func signStripe(secret, body string, ts int64) string {
	t := strconv.FormatInt(ts, 10)
	return "t=" + t + ",v1=" + hmacHex(secret, t+"."+body)
}

// signSlack returns Slack's timestamp and signature headers for body at ts.
func signSlack(secret, body string, ts int64) []string {
	t := strconv.FormatInt(ts, 10)
	return []string{"X-Slack-Request-Timestamp", t, "X-Slack-Signature", "v0=" + hmacHex(secret, "v0:"+t+":"+body)}
}

// TestProviderRetryStoredOnce (issue 9 item 16): Stripe and Slack retry a
// webhook with the same body and a fresh signature; the retry is answered
// 200 duplicate with the first event's id and stored once. Another event of
// theirs is a new event.
func TestProviderRetryStoredOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		scheme, secret, body, other string
		sign                        func(secret, body string, ts int64) []string
		retryHeaders                []string
	}{
		{kapsel.SchemeStripe, "whsec_test_secret", stripeEventBody, strings.Replace(stripeEventBody, "evt_1NG8", "evt_2NG8", 1),
			func(secret, body string, ts int64) []string {
				return []string{"Stripe-Signature", signStripe(secret, body, ts), "Content-Type", "application/json; charset=utf-8"}
			}, nil},
		{kapsel.SchemeSlack, "8f742231b10e8888abcd99yyyzzz85a5", slackEventBody, strings.Replace(slackEventBody, "Ev123", "Ev999", 1),
			func(secret, body string, ts int64) []string {
				return append(signSlack(secret, body, ts), "Content-Type", "application/json")
			}, []string{"X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_timeout"}},
	} {
		t.Run(tc.scheme, func(t *testing.T) {
			t.Parallel()
			e := setup(t, nil)
			src := e.source(nil, kapsel.VerifierConfig{Scheme: tc.scheme, Secrets: []string{tc.secret}})
			first := accepted(t, e.post(src.ID, tc.body, tc.sign(tc.secret, tc.body, e.clock.Now().Unix())...), 202)

			e.clock.Advance(time.Minute) // the provider retries later, signing again
			retry := append(tc.sign(tc.secret, tc.body, e.clock.Now().Unix()), tc.retryHeaders...)
			w := e.post(src.ID, tc.body, retry...)
			dup := accepted(t, w, 200)
			if !dup.Duplicate || dup.ID != first.ID || w.Header().Get("Idempotent-Replayed") != "true" {
				t.Fatalf("retry answered %+v (Idempotent-Replayed %q), want a duplicate of %s", dup, w.Header().Get("Idempotent-Replayed"), first.ID)
			}
			if n := len(e.events(src.ID)); n != 1 {
				t.Fatalf("%d events after a retry, want 1", n)
			}

			other := accepted(t, e.post(src.ID, tc.other, tc.sign(tc.secret, tc.other, e.clock.Now().Unix())...), 202)
			if other.ID == first.ID || other.Duplicate {
				t.Fatalf("another event answered %+v", other)
			}
			if n := len(e.events(src.ID)); n != 2 {
				t.Fatalf("%d events, want 2", n)
			}
		})
	}
}
