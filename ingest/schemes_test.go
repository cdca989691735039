package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// TestSchemesThroughHandler signs a request for every scheme at the fake
// clock's time and checks that the handler passes that clock to the
// verifiers: accepted at exactly the tolerance, refused one step later.
func TestSchemesThroughHandler(t *testing.T) {
	t.Parallel()
	const body = `{"type":"ping"}`
	swhKey := []byte("0123456789abcdef0123456789abcdef")
	swhSecret := "whsec_" + base64.StdEncoding.EncodeToString(swhKey)
	for _, tc := range []struct {
		scheme  string
		secrets []string
		header  string
		sign    func(ts int64) []string
		timed   bool
	}{
		{kapsel.SchemeNone, nil, "", func(int64) []string { return nil }, false},
		{kapsel.SchemeHMACSHA256, []string{"k"}, "X-Acme", func(int64) []string {
			return []string{"X-Acme", "sha256=" + hmacHex("k", body)}
		}, false},
		{kapsel.SchemeGitHub, []string{"old", "k"}, "", func(int64) []string {
			return []string{"X-Hub-Signature-256", "sha256=" + hmacHex("k", body)}
		}, false},
		{kapsel.SchemeShopify, []string{"k"}, "", func(int64) []string {
			m := hmac.New(sha256.New, []byte("k"))
			m.Write([]byte(body))
			return []string{"X-Shopify-Hmac-Sha256", base64.StdEncoding.EncodeToString(m.Sum(nil))}
		}, false},
		{kapsel.SchemeStripe, []string{"whsec_k"}, "", func(ts int64) []string {
			t := strconv.FormatInt(ts, 10)
			return []string{"Stripe-Signature", "t=" + t + ",v1=" + hmacHex("whsec_k", t+"."+body)}
		}, true},
		{kapsel.SchemeSlack, []string{"k"}, "", func(ts int64) []string {
			t := strconv.FormatInt(ts, 10)
			return []string{"X-Slack-Request-Timestamp", t, "X-Slack-Signature", "v0=" + hmacHex("k", "v0:"+t+":"+body)}
		}, true},
		{kapsel.SchemeStandardWebhooks, []string{swhSecret}, "", func(ts int64) []string {
			t := strconv.FormatInt(ts, 10)
			m := hmac.New(sha256.New, swhKey)
			m.Write([]byte("msg_1." + t + "." + body))
			return []string{"webhook-id", "msg_1", "webhook-timestamp", t, "webhook-signature", "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))}
		}, true},
	} {
		t.Run(tc.scheme, func(t *testing.T) {
			t.Parallel()
			e := setup(t, nil)
			src := e.source(nil, kapsel.VerifierConfig{Scheme: tc.scheme, Secrets: tc.secrets, Header: tc.header})
			hdr := tc.sign(e.clock.Now().Unix())
			accepted(t, e.post(src.ID, body, hdr...), 202)
			// The same request again is a duplicate when it carries a
			// provider delivery id, otherwise a new event.
			e.clock.Advance(300 * time.Second)
			if w := e.post(src.ID, body, hdr...); w.Code != 202 && w.Code != 200 {
				t.Fatalf("at exactly the tolerance: %d %s", w.Code, w.Body)
			}
			e.clock.Advance(time.Second)
			w := e.post(src.ID, body, hdr...)
			if tc.timed {
				refused(t, w, 401, kapsel.CodeSignature)
			} else if w.Code != 202 && w.Code != 200 {
				t.Fatalf("untimed scheme refused later: %d", w.Code)
			}
			if tc.scheme != kapsel.SchemeNone {
				refused(t, e.post(src.ID, body+" ", hdr...), 401, kapsel.CodeSignature)
			}
		})
	}
}
