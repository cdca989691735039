package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/service"
)

// pausingStore holds the first EndpointUpdate or SourceUpdate after arm
// inside its Update function — the store has read the endpoint or source,
// with its lock or transaction held, and has not written yet — until
// release is closed.
type pausingStore struct {
	kapsel.Store
	armed   atomic.Bool
	reached chan struct{}
	release chan struct{}
}

func newPausingStore(st kapsel.Store) *pausingStore {
	return &pausingStore{Store: st, reached: make(chan struct{}), release: make(chan struct{})}
}

func (s *pausingStore) EndpointUpdate(ctx context.Context, p *kapsel.EndpointUpdateParams) (*kapsel.Endpoint, error) {
	if s.armed.CompareAndSwap(true, false) {
		q, update := *p, p.Update
		q.Update = func(e *kapsel.Endpoint) error {
			close(s.reached)
			<-s.release
			return update(e)
		}
		p = &q
	}
	return s.Store.EndpointUpdate(ctx, p)
}

func (s *pausingStore) SourceUpdate(ctx context.Context, p *kapsel.SourceUpdateParams) (*kapsel.Source, error) {
	if s.armed.CompareAndSwap(true, false) {
		q, update := *p, p.Update
		q.Update = func(src *kapsel.Source) error {
			close(s.reached)
			<-s.release
			return update(src)
		}
		p = &q
	}
	return s.Store.SourceUpdate(ctx, p)
}

// interleave runs first until the store holds it between its read and its
// write, then runs second and gives it a bounded moment to complete (a
// store that serialises writes holds it until first has written), then
// lets first go on. It returns both answers.
func interleave(t *testing.T, ps *pausingStore, first, second func() *httptest.ResponseRecorder) (a, b *httptest.ResponseRecorder) {
	t.Helper()
	ps.armed.Store(true)
	firstDone := make(chan *httptest.ResponseRecorder, 1)
	go func() { firstDone <- first() }()
	select {
	case <-ps.reached: // first has read the endpoint and is about to write
	case a = <-firstDone:
		t.Fatalf("the first request never reached the store's Update: status %d; body %s", a.Code, a.Body)
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never reached the store's Update")
	}
	secondDone := make(chan *httptest.ResponseRecorder, 1)
	go func() { secondDone <- second() }()
	select {
	case b = <-secondDone: // answered while first was in flight
	case <-time.After(200 * time.Millisecond): // held until first has written
	}
	close(ps.release)
	a = <-firstDone
	if b == nil {
		b = <-secondDone
	}
	return a, b
}

// TestPatchDoesNotUndoRotation interleaves, deterministically, a PATCH that
// has read the endpoint with a rotation sent before the PATCH writes: the
// secret the rotation answered must be the one that signs afterwards (I8 of
// docs/guarantees.md; issue 9 item 7 — the PATCH wrote the endpoint back
// whole, old secrets included, and the rotation was lost).
func TestPatchDoesNotUndoRotation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ps := newPausingStore(f.store)
	f.handler = managementHandler(t, ps, service.Config{AdminToken: adminToken, Clock: f.clock})
	_, key := f.tenant("acme")
	created := f.endpoint(key, nil)
	id, first := created["id"].(string), created["signing_secret"].(string)

	patched, rotated := interleave(t, ps,
		func() *httptest.ResponseRecorder {
			return f.do("PATCH", "/v1/endpoints/"+id, key, map[string]any{"name": "renamed"})
		},
		func() *httptest.ResponseRecorder {
			return f.do("POST", "/v1/endpoints/"+id+"/rotate-signing-secret", key, map[string]any{"grace_period_s": 3600})
		})
	if patched.Code != http.StatusOK {
		t.Fatalf("PATCH: status %d; body %s", patched.Code, patched.Body)
	}
	if rotated.Code != http.StatusOK {
		t.Fatalf("rotation: status %d; body %s", rotated.Code, rotated.Body)
	}
	var answer struct {
		SigningSecret string `json:"signing_secret"`
	}
	if err := json.Unmarshal(rotated.Body.Bytes(), &answer); err != nil || answer.SigningSecret == "" {
		t.Fatalf("rotation answer %s: %v", rotated.Body, err)
	}
	next := answer.SigningSecret

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

// TestConcurrentPatchesKeepBothChanges interleaves two PATCHes of different
// fields of a source: A (the name) is held by the store once it has read
// the source, and B (the verifier's secrets) is sent meanwhile. Both changes
// must survive: A must not write back the secrets it read (I8 of
// docs/guarantees.md — the provider's new secret would be refused with 401
// from then on). The same holds for an endpoint's fields.
func TestConcurrentPatchesKeepBothChanges(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ps := newPausingStore(f.store)
	f.handler = managementHandler(t, ps, service.Config{AdminToken: adminToken, Clock: f.clock})
	_, key := f.tenant("acme")
	src := f.source(key, map[string]any{"verifier": map[string]any{"scheme": "github", "secrets": []string{"old"}}})["id"].(string)

	recA, recB := interleave(t, ps,
		func() *httptest.ResponseRecorder {
			return f.do("PATCH", "/v1/sources/"+src, key, map[string]any{"name": "renamed"})
		},
		func() *httptest.ResponseRecorder {
			return f.do("PATCH", "/v1/sources/"+src, key, map[string]any{
				"verifier": map[string]any{"scheme": "github", "secrets": []string{"new"}},
			})
		})
	if recA.Code != http.StatusOK || recB.Code != http.StatusOK {
		t.Fatalf("PATCH A: %d %s; PATCH B: %d %s", recA.Code, recA.Body, recB.Code, recB.Body)
	}
	got, err := f.store.SourceGet(t.Context(), &kapsel.SourceGetParams{ID: kapsel.SourceID(src)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "renamed" || !slices.Equal(got.Verifier.Secrets, []string{"new"}) {
		t.Errorf("source after PATCH A ∥ PATCH B: name %q, secrets %q; want A's name and B's [new]", got.Name, got.Verifier.Secrets)
	}

	ps = newPausingStore(f.store)
	f.handler = managementHandler(t, ps, service.Config{AdminToken: adminToken, Clock: f.clock})
	ep := f.endpoint(key, map[string]any{"event_types": []string{"a"}})["id"].(string)
	recA, recB = interleave(t, ps,
		func() *httptest.ResponseRecorder {
			return f.do("PATCH", "/v1/endpoints/"+ep, key, map[string]any{"name": "renamed"})
		},
		func() *httptest.ResponseRecorder {
			return f.do("PATCH", "/v1/endpoints/"+ep, key, map[string]any{"event_types": []string{"b"}})
		})
	if recA.Code != http.StatusOK || recB.Code != http.StatusOK {
		t.Fatalf("endpoint PATCH A: %d %s; PATCH B: %d %s", recA.Code, recA.Body, recB.Code, recB.Body)
	}
	e, err := f.store.EndpointGet(t.Context(), &kapsel.EndpointGetParams{ID: kapsel.EndpointID(ep)})
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "renamed" || !slices.Equal(e.Subscription.EventTypes, []string{"b"}) {
		t.Errorf("endpoint after PATCH A ∥ PATCH B: name %q, event types %q; want both changes", e.Name, e.Subscription.EventTypes)
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
