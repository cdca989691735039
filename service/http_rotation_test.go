package service_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/service"
)

// pausingStore holds the first EndpointUpdate after arm, between the API's
// read of the endpoint and its write, until release is closed.
type pausingStore struct {
	kapsel.Store
	armed   atomic.Bool
	reached chan struct{}
	release chan struct{}
}

func (s *pausingStore) EndpointUpdate(ctx context.Context, p *kapsel.EndpointUpdateParams) (*kapsel.Endpoint, error) {
	if s.armed.CompareAndSwap(true, false) {
		close(s.reached)
		<-s.release
	}
	return s.Store.EndpointUpdate(ctx, p)
}

// TestPatchDoesNotUndoRotation interleaves, deterministically, a PATCH that
// has read the endpoint with a rotation that completes before the PATCH
// writes: the secret the rotation answered must be the one that signs
// afterwards (I8 of docs/guarantees.md; issue 9 item 7 — the PATCH wrote the endpoint back
// whole, old secrets included, and the rotation was lost).
func TestPatchDoesNotUndoRotation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ps := &pausingStore{Store: f.store, reached: make(chan struct{}), release: make(chan struct{})}
	f.handler = managementHandler(t, ps, service.Config{AdminToken: adminToken, Clock: f.clock})
	_, key := f.tenant("acme")
	created := f.endpoint(key, nil)
	id, first := created["id"].(string), created["signing_secret"].(string)

	ps.armed.Store(true)
	patched := make(chan *httptest.ResponseRecorder)
	go func() { patched <- f.do("PATCH", "/v1/endpoints/"+id, key, map[string]any{"name": "renamed"}) }()
	select {
	case <-ps.reached: // the PATCH has read the endpoint and is about to write
	case <-time.After(10 * time.Second):
		t.Fatal("the PATCH never reached EndpointUpdate")
	}
	rotated := f.ok(http.StatusOK, "POST", "/v1/endpoints/"+id+"/rotate-signing-secret", key, map[string]any{"grace_period_s": 3600})
	next := rotated["signing_secret"].(string)
	close(ps.release)
	if rec := <-patched; rec.Code != http.StatusOK {
		t.Fatalf("PATCH: status %d; body %s", rec.Code, rec.Body)
	}

	ep, err := f.store.EndpointGet(t.Context(), &kapsel.EndpointGetParams{ID: kapsel.EndpointID(id)})
	if err != nil {
		t.Fatal(err)
	}
	if ep.Name != "renamed" {
		t.Fatalf("name %q, want the PATCH's", ep.Name)
	}
	var got []string
	for _, s := range ep.SigningSecrets {
		got = append(got, s.Secret)
	}
	if !slices.Equal(got, []string{next, first}) {
		t.Fatalf("signing secrets after PATCH ∥ rotation: the answered secret %s… is not current (have %d secrets, current %s…)",
			next[:10], len(got), got[0][:10])
	}
	if ep.SigningSecrets[1].ExpiresAt.IsZero() {
		t.Fatal("the previous secret has no grace expiry")
	}
}

// TestRotateAnswersOnlyForOwnEndpoint: the rotation goes through the store
// with the tenant, so another tenant's id answers 404 and changes nothing.
func TestRotateAnswersOnlyForOwnEndpoint(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, keyA := f.tenant("a")
	_, keyB := f.tenant("b")
	ep := f.endpoint(keyA, nil)
	id := ep["id"].(string)
	f.problem(http.StatusNotFound, kapsel.CodeNotFound, "POST", "/v1/endpoints/"+id+"/rotate-signing-secret", keyB, nil)
	f.problem(http.StatusNotFound, kapsel.CodeNotFound, "POST", "/v1/endpoints/ep_nope/rotate-signing-secret", keyA, nil)
	got, err := f.store.EndpointGet(t.Context(), &kapsel.EndpointGetParams{ID: kapsel.EndpointID(id)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.SigningSecrets) != 1 || got.SigningSecrets[0].Secret != ep["signing_secret"] {
		t.Fatal("a refused rotation changed the secrets")
	}
}

// TestConcurrentPatchesKeepBothChanges interleaves two PATCHes of different
// fields: A (the name) is held by the store wrapper once it has read the
// endpoint, and B (the ingest verifier's secrets) is sent meanwhile. Both
// changes must survive: A must not write back the secrets it read (I8 of
// docs/guarantees.md — the provider's new secret would be refused with 401
// from then on). B is given a bounded moment to complete before A goes on,
// since a store that serialises the two holds B until A has written.
func TestConcurrentPatchesKeepBothChanges(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ps := &pausingStore{Store: f.store, reached: make(chan struct{}), release: make(chan struct{})}
	f.handler = managementHandler(t, ps, service.Config{AdminToken: adminToken, Clock: f.clock})
	_, key := f.tenant("acme")
	id := f.endpoint(key, map[string]any{
		"ingest_verifier": map[string]any{"scheme": "github", "secrets": []string{"old"}},
	})["id"].(string)

	ps.armed.Store(true)
	patchedA := make(chan *httptest.ResponseRecorder, 1)
	go func() { patchedA <- f.do("PATCH", "/v1/endpoints/"+id, key, map[string]any{"name": "renamed"}) }()
	select {
	case <-ps.reached: // A has read the endpoint and is about to write
	case <-time.After(10 * time.Second):
		t.Fatal("PATCH A never reached EndpointUpdate")
	}
	patchedB := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		patchedB <- f.do("PATCH", "/v1/endpoints/"+id, key, map[string]any{
			"ingest_verifier": map[string]any{"scheme": "github", "secrets": []string{"new"}},
		})
	}()
	var recB *httptest.ResponseRecorder
	select {
	case recB = <-patchedB: // B was answered while A was in flight
	case <-time.After(200 * time.Millisecond): // B waits for A: the store serialises them
	}
	close(ps.release)
	if rec := <-patchedA; rec.Code != http.StatusOK {
		t.Fatalf("PATCH A: status %d; body %s", rec.Code, rec.Body)
	}
	if recB == nil {
		recB = <-patchedB
	}
	if recB.Code != http.StatusOK {
		t.Fatalf("PATCH B: status %d; body %s", recB.Code, recB.Body)
	}

	ep, err := f.store.EndpointGet(t.Context(), &kapsel.EndpointGetParams{ID: kapsel.EndpointID(id)})
	if err != nil {
		t.Fatal(err)
	}
	if ep.Name != "renamed" {
		t.Errorf("name %q after PATCH A ∥ PATCH B, want A's %q", ep.Name, "renamed")
	}
	if !slices.Equal(ep.IngestVerifier.Secrets, []string{"new"}) {
		t.Errorf("ingest verifier secrets %q after PATCH A ∥ PATCH B, want B's [new]: A undid B", ep.IngestVerifier.Secrets)
	}
}
