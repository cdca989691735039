package kapsel

import (
	"context"
	"time"
)

// EndpointGetter reads endpoints.
type EndpointGetter interface {
	// EndpointGet returns the endpoint; ErrNotFound when it does not exist,
	// was deleted, or (TenantID set) belongs to another tenant.
	EndpointGet(ctx context.Context, params *EndpointGetParams) (*Endpoint, error)
}

// EndpointStateSetter changes an endpoint's state.
type EndpointStateSetter interface {
	// EndpointSetState sets State and DisabledReason (cleared unless the state
	// is disabled). ErrNotFound as EndpointGet.
	EndpointSetState(ctx context.Context, params *EndpointSetStateParams) (*Endpoint, error)
}

// EndpointStore keeps endpoints.
type EndpointStore interface {
	EndpointGetter
	EndpointStateSetter
	// EndpointInsert creates an endpoint; ErrNotFound when the tenant does not
	// exist.
	EndpointInsert(ctx context.Context, params *EndpointInsertParams) (*Endpoint, error)
	// EndpointList lists a tenant's endpoints in id order, after Cursor.
	EndpointList(ctx context.Context, params *EndpointListParams) ([]*Endpoint, error)
	// EndpointUpdate replaces the endpoint's configuration with Endpoint's
	// (Name, URL, IngestVerifier, SigningSecrets, RetryPolicy, Timeout,
	// Headers); state, ids and creation time are kept. ErrNotFound as
	// EndpointGet.
	EndpointUpdate(ctx context.Context, params *EndpointUpdateParams) (*Endpoint, error)
	// EndpointDelete deletes an endpoint softly: it disappears from gets,
	// lists and ingest, its events are no longer delivered, and its audit
	// trail is kept. ErrNotFound as EndpointGet.
	EndpointDelete(ctx context.Context, params *EndpointDeleteParams) error
}

// EndpointInsertParams are the arguments of EndpointInsert. Endpoint.ID,
// CreatedAt and UpdatedAt are assigned by the store; an empty State means
// active.
type EndpointInsertParams struct {
	Endpoint *Endpoint
	Now      time.Time
}

// EndpointGetParams are the arguments of EndpointGet. An empty TenantID
// skips the tenant check (for the ingester and the dispatcher).
type EndpointGetParams struct {
	ID       EndpointID
	TenantID TenantID
}

// EndpointListParams are the arguments of EndpointList.
type EndpointListParams struct {
	TenantID TenantID
	// Limit defaults to DefaultPageLimit and is capped at MaxPageLimit.
	Limit int
	// Cursor is the last id of the previous page; empty for the first page.
	Cursor EndpointID
}

// EndpointUpdateParams are the arguments of EndpointUpdate.
type EndpointUpdateParams struct {
	TenantID TenantID
	Endpoint *Endpoint
	Now      time.Time
}

// EndpointSetStateParams are the arguments of EndpointSetState.
type EndpointSetStateParams struct {
	ID             EndpointID
	TenantID       TenantID
	State          EndpointState
	DisabledReason DisabledReason
	Now            time.Time
}

// EndpointDeleteParams are the arguments of EndpointDelete.
type EndpointDeleteParams struct {
	ID       EndpointID
	TenantID TenantID
	Now      time.Time
}
