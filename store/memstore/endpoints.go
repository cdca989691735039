package memstore

import (
	"context"
	"fmt"

	"github.com/kapsel-dev/kapsel"
)

// endpoint returns the live endpoint row visible to tenant (any tenant when
// empty); ErrNotFound when it is unknown, deleted or foreign. s.mu is held.
func (s *Store) endpoint(id kapsel.EndpointID, tenant kapsel.TenantID) (*endpointRow, error) {
	r, ok := s.endpoints[id]
	if !ok || r.deleted() || (tenant != "" && r.endpoint.TenantID != tenant) {
		return nil, fmt.Errorf("endpoint %s: %w", id, kapsel.ErrNotFound)
	}
	return r, nil
}

// EndpointInsert creates an endpoint; ErrNotFound when the tenant does not
// exist or was deleted; ErrInvalid when kapsel.Endpoint.ValidateConfig refuses it.
func (s *Store) EndpointInsert(ctx context.Context, params *kapsel.EndpointInsertParams) (*kapsel.Endpoint, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("inserting endpoint: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.tenant(params.Endpoint.TenantID); err != nil {
		return nil, fmt.Errorf("inserting endpoint: %w", err)
	}
	e := copyEndpoint(params.Endpoint)
	e.ID, e.Name = kapsel.NewEndpointID(), kapsel.SafeText(e.Name)
	if e.State == "" {
		e.State = kapsel.EndpointActive
	}
	if e.State != kapsel.EndpointDisabled {
		e.DisabledReason = kapsel.DisabledNone
	}
	e.CreatedAt, e.UpdatedAt = ts(params.Now), ts(params.Now)
	s.endpoints[e.ID] = &endpointRow{endpoint: e}
	return copyEndpoint(e), nil
}

// EndpointGet returns the endpoint; ErrNotFound when it does not exist, was
// deleted, or belongs to another tenant.
func (s *Store) EndpointGet(ctx context.Context, params *kapsel.EndpointGetParams) (*kapsel.Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.endpoint(params.ID, params.TenantID)
	if err != nil {
		return nil, fmt.Errorf("getting %w", err)
	}
	return copyEndpoint(r.endpoint), nil
}

// EndpointList lists a tenant's live endpoints in id order, after Cursor.
func (s *Store) EndpointList(ctx context.Context, params *kapsel.EndpointListParams) ([]*kapsel.Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	visible := func(yield func(*kapsel.Endpoint) bool) {
		for _, r := range s.endpoints {
			if !r.deleted() && r.endpoint.TenantID == params.TenantID && !yield(r.endpoint) {
				return
			}
		}
	}
	return page(visible, func(e *kapsel.Endpoint) kapsel.EndpointID { return e.ID }, params.Cursor, params.Limit, copyEndpoint), nil
}

// EndpointUpdate applies params.Update to a copy of the endpoint under the
// store's lock and writes the result's configuration, so no concurrent
// write interleaves between the read and the write. Update's error comes
// back unchanged; ErrInvalid as EndpointInsert.
func (s *Store) EndpointUpdate(ctx context.Context, params *kapsel.EndpointUpdateParams) (*kapsel.Endpoint, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("updating endpoint %s: %w", params.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.endpoint(params.ID, params.TenantID)
	if err != nil {
		return nil, fmt.Errorf("updating %w", err)
	}
	e, err := params.Apply(r.endpoint)
	if err != nil {
		return nil, err
	}
	e.UpdatedAt = ts(params.Now)
	r.endpoint = e
	return copyEndpoint(e), nil
}

// EndpointRotateSecret makes params.Secret the current signing secret under
// the store's lock, so no concurrent write interleaves.
func (s *Store) EndpointRotateSecret(ctx context.Context, params *kapsel.EndpointRotateSecretParams) (*kapsel.Endpoint, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("rotating the signing secret of endpoint %s: %w", params.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.endpoint(params.ID, params.TenantID)
	if err != nil {
		return nil, fmt.Errorf("rotating the signing secret of %w", err)
	}
	r.endpoint.SigningSecrets = kapsel.RotateSigningSecrets(r.endpoint.SigningSecrets, params.Secret, ts(params.Now), params.Grace)
	r.endpoint.UpdatedAt = ts(params.Now)
	return copyEndpoint(r.endpoint), nil
}

// EndpointSetState sets State and DisabledReason (cleared unless disabled).
func (s *Store) EndpointSetState(ctx context.Context, params *kapsel.EndpointSetStateParams) (*kapsel.Endpoint, error) {
	if !params.State.Valid() {
		return nil, fmt.Errorf("setting endpoint state: %w: state %q", kapsel.ErrInvalid, params.State)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.endpoint(params.ID, params.TenantID)
	if err != nil {
		return nil, fmt.Errorf("setting state of %w", err)
	}
	setState(r.endpoint, params.State, params.DisabledReason)
	r.endpoint.UpdatedAt = ts(params.Now)
	return copyEndpoint(r.endpoint), nil
}

func setState(e *kapsel.Endpoint, state kapsel.EndpointState, reason kapsel.DisabledReason) {
	e.State, e.DisabledReason = state, reason
	if state != kapsel.EndpointDisabled {
		e.DisabledReason = kapsel.DisabledNone
	}
}

// EndpointDelete deletes the endpoint softly: it disappears from gets,
// lists, fan-out and claims, and its pending and delivering deliveries end
// as failed with LastError kapsel.LastErrorEndpointDeleted. A delivering
// one keeps its lease, so that DeliveryComplete still records the attempt
// in flight. Its deliveries and attempts are kept.
func (s *Store) EndpointDelete(ctx context.Context, params *kapsel.EndpointDeleteParams) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.endpoint(params.ID, params.TenantID)
	if err != nil {
		return fmt.Errorf("deleting %w", err)
	}
	r.deletedAt = ts(params.Now)
	s.endDeliveries(map[kapsel.EndpointID]bool{params.ID: true})
	return nil
}

// endDeliveries ends the pending and delivering deliveries of the
// endpoints: failed, LastError kapsel.LastErrorEndpointDeleted, leases
// kept. s.mu is held.
func (s *Store) endDeliveries(endpoints map[kapsel.EndpointID]bool) {
	for _, d := range s.deliveries {
		if endpoints[d.EndpointID] && !d.Status.Terminal() {
			d.Status, d.LastError = kapsel.DeliveryFailed, kapsel.LastErrorEndpointDeleted
		}
	}
}
