package memstore

import (
	"context"
	"fmt"

	"github.com/kapsel-dev/kapsel"
)

// source returns the live source row visible to tenant (any tenant when
// empty); ErrNotFound when it is unknown, deleted or foreign. s.mu is held.
func (s *Store) source(id kapsel.SourceID, tenant kapsel.TenantID) (*sourceRow, error) {
	r, ok := s.sources[id]
	if !ok || r.deleted() || (tenant != "" && r.source.TenantID != tenant) {
		return nil, fmt.Errorf("source %s: %w", id, kapsel.ErrNotFound)
	}
	return r, nil
}

// SourceInsert creates a source, with a new id or the one given;
// ErrNotFound when the tenant does not exist or was deleted; ErrInvalid when
// kapsel.Source.ValidateConfig refuses it; ErrDuplicate when the given id is
// taken, by a deleted source too.
func (s *Store) SourceInsert(ctx context.Context, params *kapsel.SourceInsertParams) (*kapsel.Source, error) {
	if err := params.Source.ValidateConfig(); err != nil {
		return nil, fmt.Errorf("inserting source: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.tenant(params.Source.TenantID); err != nil {
		return nil, fmt.Errorf("inserting source: %w", err)
	}
	src := copySource(params.Source)
	if src.ID == "" {
		src.ID = kapsel.NewSourceID()
	} else if _, ok := s.sources[src.ID]; ok {
		return nil, fmt.Errorf("inserting source %s: %w", src.ID, kapsel.ErrDuplicate)
	}
	src.Name = kapsel.SafeText(src.Name)
	if src.State == "" {
		src.State = kapsel.SourceActive
	}
	src.CreatedAt, src.UpdatedAt = ts(params.Now), ts(params.Now)
	s.sources[src.ID] = &sourceRow{source: src}
	return copySource(src), nil
}

// SourceGet returns the source; ErrNotFound when it does not exist, was
// deleted, or belongs to another tenant.
func (s *Store) SourceGet(ctx context.Context, params *kapsel.SourceGetParams) (*kapsel.Source, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.source(params.ID, params.TenantID)
	if err != nil {
		return nil, fmt.Errorf("getting %w", err)
	}
	return copySource(r.source), nil
}

// SourceList lists a tenant's live sources in id order, after Cursor.
func (s *Store) SourceList(ctx context.Context, params *kapsel.SourceListParams) ([]*kapsel.Source, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	visible := func(yield func(*kapsel.Source) bool) {
		for _, r := range s.sources {
			if !r.deleted() && r.source.TenantID == params.TenantID && !yield(r.source) {
				return
			}
		}
	}
	return page(visible, func(src *kapsel.Source) kapsel.SourceID { return src.ID }, params.Cursor, params.Limit, copySource), nil
}

// SourceUpdate applies params.Update to a copy of the source under the
// store's lock and writes the result's configuration. Update's error comes
// back unchanged; ErrInvalid when the result is refused.
func (s *Store) SourceUpdate(ctx context.Context, params *kapsel.SourceUpdateParams) (*kapsel.Source, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("updating source %s: %w", params.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.source(params.ID, params.TenantID)
	if err != nil {
		return nil, fmt.Errorf("updating %w", err)
	}
	src, err := params.Apply(r.source)
	if err != nil {
		return nil, err
	}
	src.UpdatedAt = ts(params.Now)
	r.source = src
	return copySource(src), nil
}

// SourceSetState sets State; ErrInvalid for an unknown state.
func (s *Store) SourceSetState(ctx context.Context, params *kapsel.SourceSetStateParams) (*kapsel.Source, error) {
	if !params.State.Valid() {
		return nil, fmt.Errorf("setting source state: %w: state %q", kapsel.ErrInvalid, params.State)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.source(params.ID, params.TenantID)
	if err != nil {
		return nil, fmt.Errorf("setting state of %w", err)
	}
	r.source.State = params.State
	r.source.UpdatedAt = ts(params.Now)
	return copySource(r.source), nil
}

// SourceDelete deletes the source softly: it disappears from gets and lists;
// its events are kept as they are.
func (s *Store) SourceDelete(ctx context.Context, params *kapsel.SourceDeleteParams) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.source(params.ID, params.TenantID)
	if err != nil {
		return fmt.Errorf("deleting %w", err)
	}
	r.deletedAt = ts(params.Now)
	return nil
}
