package ingest

import (
	"fmt"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

func TestEndpointCache(t *testing.T) {
	t.Parallel()
	e, f := setupFault(t, nil)
	ep := e.endpoint(nil, kapsel.VerifierConfig{Scheme: kapsel.SchemeHMACSHA256, Secrets: []string{"old"}})
	sign := func(secret string) []string { return []string{"X-Kapsel-Signature", hmacHex(secret, "b")} }

	for range 10 {
		accepted(t, e.post(ep.ID, "b", sign("old")...), 202)
	}
	if n := f.lookupCount(); n != 1 {
		t.Fatalf("%d endpoint lookups for 10 requests within the TTL, want 1", n)
	}

	// A secret rotation is seen once the TTL has passed, not before.
	if _, err := e.store.EndpointUpdate(e.ctx, &kapsel.EndpointUpdateParams{
		ID: ep.ID, TenantID: ep.TenantID, Now: e.clock.Now(),
		Update: func(e *kapsel.Endpoint) error { e.IngestVerifier.Secrets = []string{"new"}; return nil },
	}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(DefaultEndpointCacheTTL - time.Nanosecond)
	accepted(t, e.post(ep.ID, "b", sign("old")...), 202)
	e.clock.Advance(time.Nanosecond)
	refused(t, e.post(ep.ID, "b", sign("old")...), 401, kapsel.CodeSignature)
	accepted(t, e.post(ep.ID, "b", sign("new")...), 202)
	if n := f.lookupCount(); n != 2 {
		t.Fatalf("%d lookups, want 2", n)
	}

	// Unknown ids are cached too, so a flood of them costs one lookup per TTL.
	unknown := kapsel.NewEndpointID()
	for range 5 {
		refused(t, e.post(unknown, "b"), 404, kapsel.CodeUnknownEndpoint)
	}
	if n := f.lookupCount(); n != 3 {
		t.Fatalf("%d lookups, want 3", n)
	}

	// A storage error is not cached.
	f.set(func(f *faultStore) { f.failGet = fmt.Errorf("%w: down", kapsel.ErrUnavailable) })
	e.clock.Advance(DefaultEndpointCacheTTL)
	refused(t, e.post(ep.ID, "b", sign("new")...), 503, kapsel.CodeStorageUnavailable)
	f.set(func(f *faultStore) { f.failGet = nil })
	accepted(t, e.post(ep.ID, "b", sign("new")...), 202)
}

func TestEndpointCacheDisabled(t *testing.T) {
	t.Parallel()
	e, f := setupFault(t, &Config{EndpointCacheTTL: -1})
	ep := e.endpoint(nil, kapsel.VerifierConfig{})
	for range 3 {
		accepted(t, e.post(ep.ID, "b"), 202)
	}
	if n := f.lookupCount(); n != 3 {
		t.Fatalf("%d lookups with the cache disabled, want 3", n)
	}
}

func TestEndpointCacheBounded(t *testing.T) {
	t.Parallel()
	e, _ := setupFault(t, &Config{EndpointCacheSize: 8})
	for range 50 {
		refused(t, e.post(kapsel.NewEndpointID(), "b"), 404, kapsel.CodeUnknownEndpoint)
	}
	e.in.endpoints.mu.Lock()
	n := len(e.in.endpoints.entries)
	e.in.endpoints.mu.Unlock()
	if n > 8 {
		t.Fatalf("cache holds %d entries, bound is 8", n)
	}
}
