package ingest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

func TestSourceCache(t *testing.T) {
	t.Parallel()
	e, f := setupFault(t, nil)
	src := e.source(nil, kapsel.VerifierConfig{Scheme: kapsel.SchemeHMACSHA256, Secrets: []string{"old"}})
	sign := func(secret string) []string { return []string{"X-Kapsel-Signature", hmacHex(secret, "b")} }

	for range 10 {
		accepted(t, e.post(src.ID, "b", sign("old")...), 202)
	}
	if n := f.lookupCount(); n != 1 {
		t.Fatalf("%d source lookups for 10 requests within the TTL, want 1", n)
	}

	// A secret rotation is seen once the TTL has passed, not before.
	if _, err := e.store.SourceUpdate(e.ctx, &kapsel.SourceUpdateParams{
		ID: src.ID, TenantID: src.TenantID, Now: e.clock.Now(),
		Update: func(s *kapsel.Source) error { s.Verifier.Secrets = []string{"new"}; return nil },
	}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(DefaultSourceCacheTTL - time.Nanosecond)
	accepted(t, e.post(src.ID, "b", sign("old")...), 202)
	e.clock.Advance(time.Nanosecond)
	refused(t, e.post(src.ID, "b", sign("old")...), 401, kapsel.CodeSignature)
	accepted(t, e.post(src.ID, "b", sign("new")...), 202)
	if n := f.lookupCount(); n != 2 {
		t.Fatalf("%d lookups, want 2", n)
	}

	// Unknown ids are cached too, so a flood of them costs one lookup per TTL.
	unknown := kapsel.NewSourceID()
	for range 5 {
		refused(t, e.post(unknown, "b"), 404, kapsel.CodeUnknownSource)
	}
	if n := f.lookupCount(); n != 3 {
		t.Fatalf("%d lookups, want 3", n)
	}

	// A storage error is not cached.
	f.set(func(f *faultStore) { f.failGet = fmt.Errorf("%w: down", kapsel.ErrUnavailable) })
	e.clock.Advance(DefaultSourceCacheTTL)
	refused(t, e.post(src.ID, "b", sign("new")...), 503, kapsel.CodeStorageUnavailable)
	f.set(func(f *faultStore) { f.failGet = nil })
	accepted(t, e.post(src.ID, "b", sign("new")...), 202)

	// Pausing is seen once the TTL has passed, and so is resuming.
	lookups := f.lookupCount()
	if _, err := e.store.SourceSetState(e.ctx, &kapsel.SourceSetStateParams{ID: src.ID, State: kapsel.SourcePaused, Now: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	accepted(t, e.post(src.ID, "b2", sign2("new", "b2")...), 202)
	e.clock.Advance(DefaultSourceCacheTTL)
	refused(t, e.post(src.ID, "b2", sign2("new", "b2")...), 503, kapsel.CodeStorageUnavailable)
	if n := f.lookupCount(); n != lookups+1 {
		t.Fatalf("%d lookups, want %d", n, lookups+1)
	}
}

// sign2 signs body with the hmac-sha256 scheme.
func sign2(secret, body string) []string {
	return []string{"X-Kapsel-Signature", hmacHex(secret, body)}
}

func TestSourceCacheDisabled(t *testing.T) {
	t.Parallel()
	e, f := setupFault(t, &Config{SourceCacheTTL: -1})
	src := e.source(nil, kapsel.VerifierConfig{})
	for range 3 {
		accepted(t, e.post(src.ID, "b"), 202)
	}
	if n := f.lookupCount(); n != 3 {
		t.Fatalf("%d lookups with the cache disabled, want 3", n)
	}
}

func TestSourceCacheBounded(t *testing.T) {
	t.Parallel()
	e, _ := setupFault(t, &Config{SourceCacheSize: 8})
	for range 50 {
		refused(t, e.post(kapsel.NewSourceID(), "b"), 404, kapsel.CodeUnknownSource)
	}
	e.in.sources.mu.Lock()
	n := len(e.in.sources.entries)
	e.in.sources.mu.Unlock()
	if n > 8 {
		t.Fatalf("cache holds %d entries, bound is 8", n)
	}
}

// TestSourceChangedTakesEffectAtOnce: after SourceChanged, the next ingest
// sees the source as stored, TTL or not — a new verifier, a pause, a resume
// and a delete (also through the 0.1 URL of a legacy source).
func TestSourceChangedTakesEffectAtOnce(t *testing.T) {
	t.Parallel()
	e, f := setupFault(t, nil)
	src := e.source(nil, kapsel.VerifierConfig{Scheme: kapsel.SchemeHMACSHA256, Secrets: []string{"old"}})
	accepted(t, e.post(src.ID, "b1", sign2("old", "b1")...), 202)

	if _, err := e.store.SourceUpdate(e.ctx, &kapsel.SourceUpdateParams{
		ID: src.ID, Now: e.clock.Now(),
		Update: func(s *kapsel.Source) error { s.Verifier.Secrets = []string{"new"}; return nil },
	}); err != nil {
		t.Fatal(err)
	}
	e.in.SourceChanged(src.ID)
	refused(t, e.post(src.ID, "b2", sign2("old", "b2")...), 401, kapsel.CodeSignature)
	accepted(t, e.post(src.ID, "b3", sign2("new", "b3")...), 202)

	if _, err := e.store.SourceSetState(e.ctx, &kapsel.SourceSetStateParams{ID: src.ID, State: kapsel.SourcePaused, Now: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	e.in.SourceChanged(src.ID)
	refused(t, e.post(src.ID, "b4", sign2("new", "b4")...), 503, kapsel.CodeStorageUnavailable)

	if _, err := e.store.SourceSetState(e.ctx, &kapsel.SourceSetStateParams{ID: src.ID, State: kapsel.SourceActive, Now: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	e.in.SourceChanged(src.ID)
	accepted(t, e.post(src.ID, "b5", sign2("new", "b5")...), 202)

	if err := e.store.SourceDelete(e.ctx, &kapsel.SourceDeleteParams{ID: src.ID, Now: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	e.in.SourceChanged(src.ID)
	refused(t, e.post(src.ID, "b6", sign2("new", "b6")...), 404, kapsel.CodeUnknownSource)
	if n := f.lookupCount(); n != 5 {
		t.Fatalf("%d source lookups, want 5: one per change", n)
	}

	// A legacy source, reached by its 0.1 endpoint id, is cached under its
	// source id: SourceChanged of that id reaches the 0.1 URL too.
	ep := kapsel.NewEndpointID()
	legacy := e.sourceWith(nil, &kapsel.Source{ID: kapsel.LegacySourceID(ep), State: kapsel.SourceActive})
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/ingest/"+string(ep), strings.NewReader("{}")))
	accepted(t, w, 202)
	if err := e.store.SourceDelete(e.ctx, &kapsel.SourceDeleteParams{ID: legacy.ID, Now: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	e.in.SourceChanged(legacy.ID)
	w = httptest.NewRecorder()
	e.h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/ingest/"+string(ep), strings.NewReader("{}")))
	refused(t, w, 404, kapsel.CodeUnknownSource)
}
