package delivery

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Outbound header names (docs/delivery.md).
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
	HeaderAttempt          = "X-Kapsel-Attempt"
	HeaderEventType        = "X-Kapsel-Event-Type"
)

// DefaultUserAgent is the User-Agent of every delivery.
const DefaultUserAgent = "Kapsel/" + kapsel.Version

// notForwarded are forwarded headers the dispatcher drops because it sets
// them itself or because they describe a connection, not the message.
// Accept-Encoding is dropped so that the response body recorded on the
// attempt is the destination's plain answer. A provider's svix-* headers,
// which events stored before ingest stopped forwarding them may carry, are
// dropped because Svix's verifiers read them before Kapsel's webhook-*.
var notForwarded = []string{
	"Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
	"Proxy-Connection", "Te", "Trailer", "Upgrade", "Accept-Encoding",
	"User-Agent", HeaderAttempt, HeaderEventType,
	HeaderWebhookID, HeaderWebhookTimestamp, HeaderWebhookSignature,
	"Svix-Id", "Svix-Timestamp", "Svix-Signature",
}

// NewRequest builds the HTTP request of one delivery attempt exactly as
// docs/delivery.md says: POST to the endpoint URL with the event body byte for byte; the
// forwarded headers, then the stored Content-Type, then the endpoint's custom
// headers, then Kapsel's own — User-Agent, webhook-id (the event id, the same
// on every attempt and replay, and to every endpoint the event fans out to),
// webhook-timestamp (now, unix seconds), webhook-signature (one
// "v1,<base64>" per active signing secret, space-separated),
// X-Kapsel-Attempt (attempt, the delivery's attempt number) and
// X-Kapsel-Event-Type when the event has a type. Later headers win. It fails when the URL cannot be used
// or a signing secret cannot be decoded; an endpoint with no signing secret
// is delivered without webhook-signature.
func NewRequest(ctx context.Context, ep *kapsel.Endpoint, ev *kapsel.Event, attempt int, now time.Time, userAgent string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(ev.Body))
	if err != nil {
		return nil, invalidURL("endpoint url cannot be used")
	}
	// No GetBody: net/http resends a request by itself after a broken
	// reused connection when it can rewind the body and the request looks
	// idempotent — and a forwarded Idempotency-Key header makes a POST look
	// so. That second request would have no attempt record (I5); every
	// request Kapsel sends must be one attempt it records.
	req.GetBody = nil
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return nil, invalidURL("url scheme must be http or https")
	}
	h := make(http.Header, len(ev.Headers)+len(ep.Headers)+6)
	for k, vs := range ev.Headers {
		h[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	for _, k := range notForwarded {
		h.Del(k)
	}
	if ev.ContentType != "" {
		h.Set("Content-Type", ev.ContentType)
	}
	for k, v := range ep.Headers {
		h.Set(k, v)
	}
	if userAgent == "" {
		userAgent = DefaultUserAgent
	}
	h.Set("User-Agent", userAgent)
	id := string(ev.ID)
	h.Set(HeaderWebhookID, id)
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	if secrets := ep.ActiveSigningSecrets(now); len(secrets) > 0 {
		sig, err := SignatureHeader(secrets, id, now, ev.Body)
		if err != nil {
			return nil, err
		}
		h.Set(HeaderWebhookSignature, sig)
	}
	h.Set(HeaderAttempt, strconv.Itoa(attempt))
	if ev.Type != "" {
		h.Set(HeaderEventType, ev.Type)
	}
	req.Header = h
	return req, nil
}
