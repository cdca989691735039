package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// badConfig is an endpoint configuration the store must refuse, and the
// code of the *kapsel.Error it must refuse it with.
type badConfig struct {
	name   string
	code   kapsel.Code
	change func(e *kapsel.Endpoint)
}

// badConfigs are the endpoint configurations kapsel.Endpoint.ValidateConfig
// refuses: the one URL, header, retry, filter and signing-secret policy that the
// management API also applies (docs/api.md, I8; issue 9 items 10 and 18).
func badConfigs() []badConfig {
	header := func(kv ...string) func(*kapsel.Endpoint) {
		return func(e *kapsel.Endpoint) {
			e.Headers = map[string]string{}
			for i := 0; i < len(kv); i += 2 {
				e.Headers[kv[i]] = kv[i+1]
			}
		}
	}
	signing := func(secrets ...string) func(*kapsel.Endpoint) {
		return func(e *kapsel.Endpoint) {
			e.SigningSecrets = nil
			for _, s := range secrets {
				e.SigningSecrets = append(e.SigningSecrets, kapsel.SigningSecret{Secret: s})
			}
		}
	}
	const good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	return []badConfig{
		{"ftp URL", kapsel.CodeInvalidURL, func(e *kapsel.Endpoint) { e.URL = "ftp://example.com/hook" }},
		{"URL with credentials", kapsel.CodeInvalidURL, func(e *kapsel.Endpoint) { e.URL = "https://user:pw@example.com/" }},
		{"URL without host", kapsel.CodeInvalidURL, func(e *kapsel.Endpoint) { e.URL = "https:///hook" }},
		{"relative URL", kapsel.CodeInvalidURL, func(e *kapsel.Endpoint) { e.URL = "/hook" }},
		{"Host header", kapsel.CodeInvalidHeader, header("Host", "internal.example")},
		{"retry max age over a year", kapsel.CodeMalformedRequest, func(e *kapsel.Endpoint) { e.RetryPolicy.MaxAge = kapsel.MaxRetryAge + time.Second }},
		{"retry interval over a week", kapsel.CodeMalformedRequest, func(e *kapsel.Endpoint) {
			e.RetryPolicy.MaxInterval = kapsel.MaxRetryInterval + time.Second
		}},
		{"negative max attempts", kapsel.CodeMalformedRequest, func(e *kapsel.Endpoint) { e.RetryPolicy.MaxAttempts = -1 }},
		{"timeout over the maximum", kapsel.CodeMalformedRequest, func(e *kapsel.Endpoint) { e.Timeout = kapsel.MaxAttemptTimeout + time.Second }},
		{"Content-Length header", kapsel.CodeInvalidHeader, header("content-length", "0")},
		{"User-Agent header", kapsel.CodeInvalidHeader, header("User-Agent", "x")},
		{"Proxy-* header", kapsel.CodeInvalidHeader, header("Proxy-Authorization", "Basic x")},
		{"webhook-* header", kapsel.CodeInvalidHeader, header("webhook-signature", "v1,x")},
		{"names differing only in case", kapsel.CodeInvalidHeader, header("x-a", "1", "X-A", "2")},
		{"CR LF in a value", kapsel.CodeInvalidHeader, header("X-Team", "a\r\nHost: b")},
		{"value over the limit", kapsel.CodeInvalidHeader, header("X-Big", strings.Repeat("a", kapsel.MaxHeaderValueLength+1))},
		{"empty signing secret", kapsel.CodeMalformedRequest, signing("whsec_")},
		{"signing secret without prefix", kapsel.CodeMalformedRequest, signing(good[len("whsec_"):])},
		{"short signing secret", kapsel.CodeMalformedRequest, signing("whsec_c2VjcmV0")},
		{"too many signing secrets", kapsel.CodeMalformedRequest, signing(good, good, good, good, good, good)},
		{"empty event type in the filter", kapsel.CodeMalformedRequest, func(e *kapsel.Endpoint) { e.Subscription.EventTypes = []string{""} }},
		{"mid-pattern wildcard", kapsel.CodeMalformedRequest, func(e *kapsel.Endpoint) { e.Subscription.EventTypes = []string{"invoice.*.paid"} }},
		{"event type listed twice", kapsel.CodeMalformedRequest, func(e *kapsel.Endpoint) { e.Subscription.EventTypes = []string{"a", "a"} }},
		{"malformed source id", kapsel.CodeMalformedRequest, func(e *kapsel.Endpoint) { e.Subscription.SourceIDs = []kapsel.SourceID{"src_nope"} }},
		{"endpoint id as source id", kapsel.CodeMalformedRequest, func(e *kapsel.Endpoint) {
			e.Subscription.SourceIDs = []kapsel.SourceID{kapsel.SourceID(kapsel.NewEndpointID())}
		}},
		{"channel with a space", kapsel.CodeMalformedRequest, func(e *kapsel.Endpoint) { e.Subscription.Channels = []string{"a b"} }},
		{"too many channels", kapsel.CodeMalformedRequest, func(e *kapsel.Endpoint) {
			e.Subscription.Channels = make([]string, kapsel.MaxSubscriptionItems+1)
			for i := range e.Subscription.Channels {
				e.Subscription.Channels[i] = fmt.Sprint("c", i)
			}
		}},
	}
}

// mustRefuse requires err to be ErrInvalid carried by a *kapsel.Error with
// code.
func mustRefuse(t *testing.T, err error, code kapsel.Code, what string) {
	t.Helper()
	mustIs(t, err, kapsel.ErrInvalid, what)
	var ke *kapsel.Error
	if !errors.As(err, &ke) {
		t.Fatalf("%s: error %v is not a *kapsel.Error", what, err)
	}
	equal(t, what+": code", ke.Code, code)
}

func testEndpointPolicy(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	t.Run("InsertRefusesInvalidConfig", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		for _, bc := range badConfigs() {
			e := fullEndpoint(ten)
			bc.change(e)
			_, err := h.s.EndpointInsert(h.ctx, &kapsel.EndpointInsertParams{Endpoint: e, Now: Base})
			mustRefuse(t, err, bc.code, "EndpointInsert with "+bc.name)
		}
		if list := h.listEndpoints(ten.ID, 0, ""); len(list) != 0 {
			t.Fatalf("refused inserts left endpoints %v", endpointIDs(list))
		}
	})

	t.Run("UpdateRefusesInvalidConfig", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		ep, err := h.s.EndpointInsert(h.ctx, &kapsel.EndpointInsertParams{Endpoint: fullEndpoint(ten), Now: Base})
		must(t, err, "EndpointInsert")
		for _, bc := range badConfigs() {
			if strings.Contains(bc.name, "signing secret") {
				continue // EndpointUpdate ignores signing secrets
			}
			_, err := h.s.EndpointUpdate(h.ctx, &kapsel.EndpointUpdateParams{
				ID: ep.ID, TenantID: ten.ID, Now: at(time.Minute),
				Update: func(e *kapsel.Endpoint) error { bc.change(e); return nil },
			})
			mustRefuse(t, err, bc.code, "EndpointUpdate with "+bc.name)
		}
		got := h.getEndpoint(ep.ID, ten.ID)
		sameConfig(t, got, fullEndpoint(ten))
		sameTime(t, "UpdatedAt after refused updates", got.UpdatedAt, Base)
	})

	t.Run("AcceptsTheEdges", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		e := fullEndpoint(ten)
		e.URL = "HTTP://127.0.0.1:8443/hook?q=1#frag" // syntax only: the SSRF guard is not the store's
		e.Headers = map[string]string{"X-Big": strings.Repeat("a", kapsel.MaxHeaderValueLength), "X-Tab": "a\tb"}
		e.SigningSecrets = nil // delivered unsigned
		ep, err := h.s.EndpointInsert(h.ctx, &kapsel.EndpointInsertParams{Endpoint: e, Now: Base})
		must(t, err, "EndpointInsert at the edges of the policy")
		sameConfig(t, h.getEndpoint(ep.ID, ten.ID), e)
	})
}
