package breaker_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/breaker"
)

// fakeStore is a breaker.Store in memory that counts its calls and can be
// made to fail, for the unit tests (the integration tests use memstore and
// pgstore).
type fakeStore struct {
	mu       sync.Mutex
	breakers map[kapsel.EndpointID]kapsel.BreakerState
	states   map[kapsel.EndpointID]kapsel.EndpointSetStateParams
	gets     int
	saves    int
	// fail, when set, is returned by every call.
	fail error
}

var _ breaker.Store = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{
		breakers: map[kapsel.EndpointID]kapsel.BreakerState{},
		states:   map[kapsel.EndpointID]kapsel.EndpointSetStateParams{},
	}
}

func (f *fakeStore) BreakerGet(ctx context.Context, p *kapsel.BreakerGetParams) (*kapsel.BreakerState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.fail != nil {
		return nil, f.fail
	}
	b, ok := f.breakers[p.EndpointID]
	if !ok {
		return nil, fmt.Errorf("breaker %s: %w", p.EndpointID, kapsel.ErrNotFound)
	}
	return &b, nil
}

func (f *fakeStore) BreakerSave(ctx context.Context, p *kapsel.BreakerSaveParams) (*kapsel.BreakerState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	id := p.State.EndpointID
	if f.breakers[id].Version != p.ExpectedVersion {
		return nil, fmt.Errorf("breaker %s: %w", id, kapsel.ErrConflict)
	}
	f.saves++
	b := *p.State
	b.Version = p.ExpectedVersion + 1
	b.UpdatedAt = p.Now
	f.breakers[id] = b
	return &b, nil
}

func (f *fakeStore) BreakerDelete(ctx context.Context, p *kapsel.BreakerDeleteParams) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	delete(f.breakers, p.EndpointID)
	return nil
}

func (f *fakeStore) EndpointSetState(ctx context.Context, p *kapsel.EndpointSetStateParams) (*kapsel.Endpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	f.states[p.ID] = *p
	return &kapsel.Endpoint{ID: p.ID, State: p.State, DisabledReason: p.DisabledReason}, nil
}

// breaker returns the stored state, and false when none is stored.
func (f *fakeStore) breaker(id kapsel.EndpointID) (kapsel.BreakerState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.breakers[id]
	return b, ok
}

// counts returns the number of reads and writes so far.
func (f *fakeStore) counts() (gets, saves int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets, f.saves
}

func (f *fakeStore) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *fakeStore) endpointState(id kapsel.EndpointID) (kapsel.EndpointSetStateParams, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.states[id]
	return s, ok
}

// hookLog records the hooks a Set calls.
type hookLog struct {
	mu       sync.Mutex
	breaker  []kapsel.BreakerInfo
	disabled []kapsel.EndpointDisabledInfo
}

func (h *hookLog) hooks() kapsel.Hooks {
	return kapsel.Hooks{
		OnBreaker: func(_ context.Context, i kapsel.BreakerInfo) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.breaker = append(h.breaker, i)
		},
		OnEndpointDisabled: func(_ context.Context, i kapsel.EndpointDisabledInfo) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.disabled = append(h.disabled, i)
		},
	}
}

// transitions returns "from>to" for each OnBreaker call so far.
func (h *hookLog) transitions() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, len(h.breaker))
	for i, b := range h.breaker {
		out[i] = string(b.From) + ">" + string(b.To)
	}
	return out
}

func (h *hookLog) disables() []kapsel.EndpointDisabledInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]kapsel.EndpointDisabledInfo(nil), h.disabled...)
}
