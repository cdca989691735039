package ingest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// faultStore wraps a memstore to count calls, hold commits and inject
// failures.
type faultStore struct {
	*memstore.Store

	mu        sync.Mutex
	batches   []int         // rows per EventInsertMany call, in call order
	lookups   int           // SourceGet calls
	hold      chan struct{} // when set, commits wait until it is closed
	failBatch func(rows []*kapsel.EventInsertParams) error
	failGet   error
}

func newFaultStore(m *memstore.Store) *faultStore { return &faultStore{Store: m} }

func (f *faultStore) EventInsertMany(ctx context.Context, p *kapsel.EventInsertManyParams) ([]kapsel.EventInsertResult, error) {
	f.mu.Lock()
	f.batches = append(f.batches, len(p.Events))
	hold, fail := f.hold, f.failBatch
	f.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail != nil {
		if err := fail(p.Events); err != nil {
			return nil, err
		}
	}
	return f.Store.EventInsertMany(ctx, p)
}

func (f *faultStore) SourceGet(ctx context.Context, p *kapsel.SourceGetParams) (*kapsel.Source, error) {
	f.mu.Lock()
	f.lookups++
	err := f.failGet
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return f.Store.SourceGet(ctx, p)
}

func (f *faultStore) set(fn func(f *faultStore)) { f.mu.Lock(); fn(f); f.mu.Unlock() }

func (f *faultStore) batchSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.batches...)
}

func (f *faultStore) lookupCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.lookups }

// setupFault is setup on a faultStore.
func setupFault(t *testing.T, cfg *Config) (*env, *faultStore) {
	t.Helper()
	m := memstore.New()
	f := newFaultStore(m)
	e := setup(t, cfg, f)
	e.store = m
	return e, f
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (e *env) wakeCount() int { e.mu.Lock(); defer e.mu.Unlock(); return e.wakes }
