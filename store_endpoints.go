package kapsel

import (
	"context"
	"fmt"
	"time"
)

// EndpointGetter reads endpoints.
//
// For store implementers: a role interface of [Store]. Applications do not
// call it to create or change anything; the front door (package service)
// does, after validating.
type EndpointGetter interface {
	// EndpointGet returns the endpoint; ErrNotFound when it does not exist,
	// was deleted, or (TenantID set) belongs to another tenant.
	EndpointGet(ctx context.Context, params *EndpointGetParams) (*Endpoint, error)
}

// EndpointStateSetter changes an endpoint's state.
//
// For store implementers: a role interface of [Store]. Applications do not
// call it to create or change anything; the front door (package service)
// does, after validating.
type EndpointStateSetter interface {
	// EndpointSetState sets State and DisabledReason (cleared unless the state
	// is disabled). ErrNotFound as EndpointGet.
	EndpointSetState(ctx context.Context, params *EndpointSetStateParams) (*Endpoint, error)
}

// EndpointStore keeps endpoints.
//
// For store implementers: a role interface of [Store]. Applications do not
// call it to create or change anything; the front door (package service)
// does, after validating.
type EndpointStore interface {
	EndpointGetter
	EndpointStateSetter
	// EndpointInsert creates an endpoint with a new, unguessable id;
	// ErrNotFound when the tenant does not exist; ErrInvalid (a *Error with
	// code E1007, E1008 or E1009) when [Endpoint.ValidateConfig] refuses it,
	// in which case nothing is written.
	EndpointInsert(ctx context.Context, params *EndpointInsertParams) (*Endpoint, error)
	// EndpointList lists a tenant's endpoints in id order, after Cursor.
	EndpointList(ctx context.Context, params *EndpointListParams) ([]*Endpoint, error)
	// EndpointUpdate changes the endpoint's configuration by a function of
	// its current value, atomically: the store reads the visible endpoint
	// and, under its lock or in its transaction with the row locked, calls
	// Update on a copy, validates the result and writes it, so no
	// concurrent write lands between the read and the write and no change
	// already answered is undone (I8 of docs/guarantees.md). Only the
	// configuration is written — Name, URL, RetryPolicy,
	// Timeout, Headers, Subscription — with UpdatedAt = Now; what Update does to the
	// other fields (state, signing secrets, ids, times) is ignored: signing
	// secrets change only through EndpointRotateSecret.
	//
	// The store calls Update exactly once when the endpoint is visible, and
	// not at all otherwise; since a lock is held meanwhile, Update must be
	// quick, do no I/O, call no store method and keep no reference to its
	// argument. Errors, none of which writes anything: ErrNotFound as
	// EndpointGet; Update's own error, returned unchanged (not wrapped);
	// ErrInvalid as EndpointInsert when the result is refused (the signing
	// secrets are not checked), or when Update is nil.
	EndpointUpdate(ctx context.Context, params *EndpointUpdateParams) (*Endpoint, error)
	// EndpointRotateSecret makes Secret the endpoint's current signing
	// secret, atomically (one statement or transaction: a concurrent
	// rotation or update never loses it). The stored secrets become
	// [RotateSigningSecrets] of the stored ones, so the previous current
	// secret keeps signing until Now+Grace and at most [MaxSigningSecrets]
	// are kept. ErrNotFound as EndpointGet; ErrInvalid when
	// [CheckSigningSecret] refuses Secret or Grace is negative.
	EndpointRotateSecret(ctx context.Context, params *EndpointRotateSecretParams) (*Endpoint, error)
	// EndpointDelete deletes an endpoint softly: it disappears from gets,
	// lists and fan-out, and in the same transaction its pending and
	// delivering deliveries end as failed with LastError
	// [LastErrorEndpointDeleted] (they stay listed, with the audit trail).
	// Once it returns, no new delivery is created for the endpoint and no
	// claim returns one of its deliveries. A delivering one keeps its lease
	// token, so that the attempt in flight is still recorded: see
	// DeliveryComplete. ErrNotFound as EndpointGet.
	EndpointDelete(ctx context.Context, params *EndpointDeleteParams) error
}

// EndpointInsertParams are the arguments of EndpointInsert. Endpoint.ID,
// CreatedAt and UpdatedAt are assigned by the store; an empty State means
// active.
type EndpointInsertParams struct {
	Endpoint *Endpoint
	Now      time.Time
}

// Validate returns the error of [Endpoint.ValidateConfig] (wrapping
// [ErrInvalid]); stores call it before they touch anything.
func (p *EndpointInsertParams) Validate() error { return p.Endpoint.ValidateConfig() }

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
	ID       EndpointID
	TenantID TenantID
	// Update changes the configuration fields of e, a copy of the stored
	// endpoint, or returns an error to write nothing. Required.
	Update func(e *Endpoint) error
	Now    time.Time
}

// Validate returns an error wrapping [ErrInvalid] when the params cannot be
// applied (Update is nil); stores call it before they touch anything.
func (p *EndpointUpdateParams) Validate() error {
	if p.Update == nil {
		return invalid(CodeMalformedRequest, "endpoint update without an Update function")
	}
	return nil
}

// Apply is the step of EndpointUpdate between the store's read and its
// write, one rule for every store: it calls Update once on a copy of cur —
// the stored endpoint, read under the store's lock or in its transaction —
// and returns the endpoint to write: cur with the configuration fields
// (Name as [SafeText] makes it, URL, RetryPolicy, Timeout,
// Headers, Subscription) of Update's result, and everything else, signing secrets
// included, as stored. Update's error comes back unchanged; a result that
// [Endpoint.ValidateConfig] refuses, signing secrets aside, comes back as
// its error (wrapping [ErrInvalid]). cur is not modified.
func (p *EndpointUpdateParams) Apply(cur *Endpoint) (*Endpoint, error) {
	next := cur.clone()
	if err := p.Update(next); err != nil {
		return nil, err
	}
	out := *cur
	out.Name, out.URL = SafeText(next.Name), next.URL
	out.RetryPolicy, out.Timeout = next.RetryPolicy, next.Timeout
	out.Headers, out.Subscription = next.Headers, next.Subscription
	check := out
	check.SigningSecrets = nil
	if err := check.ValidateConfig(); err != nil {
		return nil, fmt.Errorf("updating endpoint %s: %w", cur.ID, err)
	}
	return out.clone(), nil // sharing nothing with cur or with what Update kept
}

// EndpointRotateSecretParams are the arguments of EndpointRotateSecret.
type EndpointRotateSecretParams struct {
	ID       EndpointID
	TenantID TenantID
	// Secret is the new current signing secret, "whsec_<base64>".
	Secret string
	// Grace is how long the previous current secret keeps signing; 0 drops
	// it at once.
	Grace time.Duration
	Now   time.Time
}

// Validate returns an error wrapping [ErrInvalid] when the params cannot
// be applied; stores call it before they touch anything.
func (p *EndpointRotateSecretParams) Validate() error {
	if err := CheckSigningSecret(p.Secret); err != nil {
		return err
	}
	if p.Grace < 0 {
		return invalid(CodeMalformedRequest, "grace period must not be negative")
	}
	return nil
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
