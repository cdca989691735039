package verify

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

// svixHeader builds the headers of a request from a Svix-powered provider:
// svix-id, svix-timestamp, svix-signature.
func svixHeader(id string, ts int64, sig string) http.Header {
	return hdr("svix-id", id, "svix-timestamp", strconv.FormatInt(ts, 10), "svix-signature", sig)
}

// TestStandardWebhooksSvixNames: the standard-webhooks scheme accepts the
// published Standard Webhooks vector sent under Svix's header names, and
// refuses its must_fail signatures, as Svix's own verifier does.
func TestStandardWebhooksSvixNames(t *testing.T) {
	t.Parallel()
	v := loadVectors(t).StandardWebhooks
	now := time.Unix(v.Timestamp, 0)
	// Svix's library agrees with the vector under these names: the test
	// checks the semantic Kapsel copies, not only Kapsel.
	wh, err := svix.NewWebhook(v.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.VerifyIgnoringTimestamp([]byte(v.Payload), svixHeader(v.MsgID, v.Timestamp, v.Signature)); err != nil {
		t.Fatalf("Svix's library refuses the published vector under svix-* names: %v", err)
	}
	s := []string{v.Secret}
	cases := []verifyCase{
		{name: "published vector", header: svixHeader(v.MsgID, v.Timestamp, v.Signature), body: v.Payload, secrets: s, now: now},
		{name: "301 s old", header: svixHeader(v.MsgID, v.Timestamp, v.Signature), body: v.Payload, secrets: s, now: now.Add(301 * time.Second), want: ErrTimestamp},
		{name: "id tampered", header: svixHeader(v.MsgID+"x", v.Timestamp, v.Signature), body: v.Payload, secrets: s, now: now, want: ErrMismatch},
		{name: "body tampered", header: svixHeader(v.MsgID, v.Timestamp, v.Signature), body: v.Payload + " ", secrets: s, now: now, want: ErrMismatch},
		// A set is taken whole: one spelling's id with the other's
		// signature is not a request either library accepts.
		{name: "mixed spellings", header: hdr("svix-id", v.MsgID, "webhook-timestamp", strconv.FormatInt(v.Timestamp, 10), "svix-signature", v.Signature),
			body: v.Payload, secrets: s, now: now, want: ErrMissing},
		// Either complete set may carry the valid signature: the
		// Standard Webhooks library reads only webhook-*, Svix's reads
		// svix-* first; Kapsel accepts what either accepts.
		{name: "valid webhook-*, stale svix-*", header: both(v.MsgID, v.Timestamp, v.Signature, v.MustFail[0]), body: v.Payload, secrets: s, now: now},
		{name: "stale webhook-*, valid svix-*", header: both(v.MsgID, v.Timestamp, v.MustFail[0], v.Signature), body: v.Payload, secrets: s, now: now},
		{name: "both stale", header: both(v.MsgID, v.Timestamp, v.MustFail[0], v.MustFail[1]), body: v.Payload, secrets: s, now: now, want: ErrMismatch},
	}
	runCases(t, StandardWebhooks{}, cases)
	for _, bad := range v.MustFail {
		p := &Params{Header: svixHeader(v.MsgID, v.Timestamp, bad), Body: []byte(v.Payload), Secrets: s, Now: now}
		if err := (StandardWebhooks{}).Verify(p); err == nil {
			t.Errorf("must_fail signature %q accepted under svix-* names", bad)
		}
	}
}

// TestStandardWebhooksSignedBySvix: a signature made by Svix's library
// (an implementation independent of Kapsel's) verifies under both names.
func TestStandardWebhooksSignedBySvix(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign("msg_svix", testNow, []byte(testBody))
	if err != nil {
		t.Fatal(err)
	}
	runCases(t, StandardWebhooks{}, []verifyCase{
		{name: "svix names", header: svixHeader("msg_svix", testTS, sig), secrets: []string{secret}},
		{name: "webhook names", header: hdr("webhook-id", "msg_svix", "webhook-timestamp", strconv.Itoa(testTS), "webhook-signature", sig), secrets: []string{secret}},
		{name: "svix names, wrong secret", header: svixHeader("msg_svix", testTS, sig), secrets: []string{"whsec_AAAAAAAA"}, want: ErrMismatch},
	})
}

// both carries a request's id and timestamp under both spellings, with
// webhook-signature wsig and svix-signature ssig.
func both(id string, ts int64, wsig, ssig string) http.Header {
	h := svixHeader(id, ts, ssig)
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", wsig)
	return h
}

// TestShopifyUnprefixedHeader: Shopify's newer Shopify-Hmac-Sha256 is
// accepted like X-Shopify-Hmac-Sha256 (signature computed with Python's
// hmac module, see testShopifyB64).
func TestShopifyUnprefixedHeader(t *testing.T) {
	t.Parallel()
	s := []string{"shpss_secret"}
	runCases(t, Shopify{}, []verifyCase{
		{name: "unprefixed", header: hdr(ShopifyUnprefixedHeader, testShopifyB64), secrets: s},
		{name: "unprefixed, wrong secret", header: hdr(ShopifyUnprefixedHeader, testShopifyB64), secrets: []string{"x"}, want: ErrMismatch},
		{name: "unprefixed, body tampered", header: hdr(ShopifyUnprefixedHeader, testShopifyB64), body: testBody + " ", secrets: s, want: ErrMismatch},
		{name: "unprefixed, malformed", header: hdr(ShopifyUnprefixedHeader, "%%%"), secrets: s, want: ErrMalformed},
		{name: "both, prefixed valid", header: hdr(ShopifyHeader, testShopifyB64, ShopifyUnprefixedHeader, "AAAA"), secrets: s},
		{name: "both, unprefixed valid", header: hdr(ShopifyHeader, "AAAA", ShopifyUnprefixedHeader, testShopifyB64), secrets: s},
		{name: "both, one malformed", header: hdr(ShopifyHeader, "%%%", ShopifyUnprefixedHeader, testShopifyB64), secrets: s},
		{name: "both wrong", header: hdr(ShopifyHeader, "AAAA", ShopifyUnprefixedHeader, "AAAA"), secrets: s, want: ErrMismatch},
	})
}
