package memstore

import (
	"context"
	"fmt"

	"github.com/kapsel-dev/kapsel"
)

// BreakerGet returns the endpoint's breaker state; ErrNotFound when none was
// saved.
func (s *Store) BreakerGet(ctx context.Context, params *kapsel.BreakerGetParams) (*kapsel.BreakerState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.breakers[params.EndpointID]
	if !ok {
		return nil, fmt.Errorf("getting breaker of endpoint %s: %w", params.EndpointID, kapsel.ErrNotFound)
	}
	return copyBreaker(b), nil
}

// BreakerSave writes the state when the stored version is ExpectedVersion (0
// for none stored) and returns it with Version incremented and UpdatedAt =
// Now; ErrConflict otherwise.
func (s *Store) BreakerSave(ctx context.Context, params *kapsel.BreakerSaveParams) (*kapsel.BreakerState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := params.State.EndpointID
	var version int64
	if b, ok := s.breakers[id]; ok {
		version = b.Version
	}
	if version != params.ExpectedVersion {
		return nil, fmt.Errorf("saving breaker of endpoint %s: %w: version is %d, expected %d",
			id, kapsel.ErrConflict, version, params.ExpectedVersion)
	}
	b := copyBreaker(params.State)
	b.OpenUntil, b.ProbeUntil, b.FailingSince = ts(b.OpenUntil), ts(b.ProbeUntil), ts(b.FailingSince)
	b.LastSuccessAt, b.LastFailureAt = ts(b.LastSuccessAt), ts(b.LastFailureAt)
	b.Version = version + 1
	b.UpdatedAt = ts(params.Now)
	s.breakers[id] = b
	return copyBreaker(b), nil
}

// BreakerDelete forgets the endpoint's breaker state; forgetting a state that
// does not exist is not an error.
func (s *Store) BreakerDelete(ctx context.Context, params *kapsel.BreakerDeleteParams) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.breakers, params.EndpointID)
	return nil
}
