package kapsel

import (
	"context"
	"time"
)

// SourceGetter reads sources.
//
// For store implementers: a role interface of [Store]. Applications do not
// call it to create or change anything; the front door (package service)
// does, after validating.
type SourceGetter interface {
	// SourceGet returns the source; ErrNotFound when it does not exist, was
	// deleted, or (TenantID set) belongs to another tenant.
	SourceGet(ctx context.Context, params *SourceGetParams) (*Source, error)
}

// SourceStore keeps sources.
//
// For store implementers: a role interface of [Store]. Applications do not
// call it to create or change anything; the front door (package service)
// does, after validating.
type SourceStore interface {
	SourceGetter
	// SourceInsert creates a source with a new, unguessable id (or
	// Source.ID when set: the migration of a 0.1 endpoint keeps its
	// [LegacySourceID]); ErrNotFound when the tenant does not exist;
	// ErrInvalid (E1009) when [Source.ValidateConfig] refuses it, writing
	// nothing; ErrDuplicate when the given ID is taken.
	SourceInsert(ctx context.Context, params *SourceInsertParams) (*Source, error)
	// SourceList lists a tenant's sources in id order, after Cursor.
	SourceList(ctx context.Context, params *SourceListParams) ([]*Source, error)
	// SourceUpdate changes the source's configuration by a function of its
	// current value, atomically, as EndpointUpdate does: Name, Verifier,
	// EventTypeFrom and IdempotencyKeyFrom are written (see
	// [SourceUpdateParams.Apply]) with UpdatedAt = Now. ErrNotFound as
	// SourceGet; Update's own error unchanged; ErrInvalid when the result
	// is refused.
	SourceUpdate(ctx context.Context, params *SourceUpdateParams) (*Source, error)
	// SourceSetState sets State. ErrNotFound as SourceGet.
	SourceSetState(ctx context.Context, params *SourceSetStateParams) (*Source, error)
	// SourceDelete deletes a source softly: its ingest URL answers 404 from
	// then on, and its events stay as they are. ErrNotFound as SourceGet.
	SourceDelete(ctx context.Context, params *SourceDeleteParams) error
}

// SourceInsertParams are the arguments of SourceInsert. CreatedAt and
// UpdatedAt are assigned by the store; an empty State means active.
type SourceInsertParams struct {
	Source *Source
	Now    time.Time
}

// SourceGetParams are the arguments of SourceGet. An empty TenantID skips
// the tenant check (for the ingester).
type SourceGetParams struct {
	ID       SourceID
	TenantID TenantID
}

// SourceListParams are the arguments of SourceList.
type SourceListParams struct {
	TenantID TenantID
	// Limit defaults to DefaultPageLimit and is capped at MaxPageLimit.
	Limit int
	// Cursor is the last id of the previous page; empty for the first page.
	Cursor SourceID
}

// SourceUpdateParams are the arguments of SourceUpdate.
type SourceUpdateParams struct {
	ID       SourceID
	TenantID TenantID
	// Update changes the configuration fields of s, a copy of the stored
	// source, or returns an error to write nothing. Required.
	Update func(s *Source) error
	Now    time.Time
}

// Validate returns an error wrapping [ErrInvalid] when the params cannot be
// applied (Update is nil); stores call it before they touch anything.
func (p *SourceUpdateParams) Validate() error {
	if p.Update == nil {
		return invalid(CodeMalformedRequest, "source update without an Update function")
	}
	return nil
}

// Apply is the step of SourceUpdate between the store's read and its
// write, as [EndpointUpdateParams.Apply]: Update is called once on a copy
// of cur, and the result is cur with Name ([SafeText]), Verifier,
// EventTypeFrom and IdempotencyKeyFrom taken from it, validated. cur is not
// modified.
func (p *SourceUpdateParams) Apply(cur *Source) (*Source, error) {
	next := cur.Clone()
	if err := p.Update(next); err != nil {
		return nil, err
	}
	out := *cur
	out.Name = SafeText(next.Name)
	out.Verifier, out.EventTypeFrom, out.IdempotencyKeyFrom = next.Verifier, next.EventTypeFrom, next.IdempotencyKeyFrom
	if err := out.ValidateConfig(); err != nil {
		return nil, err
	}
	return out.Clone(), nil
}

// SourceSetStateParams are the arguments of SourceSetState.
type SourceSetStateParams struct {
	ID       SourceID
	TenantID TenantID
	State    SourceState
	Now      time.Time
}

// SourceDeleteParams are the arguments of SourceDelete.
type SourceDeleteParams struct {
	ID       SourceID
	TenantID TenantID
	Now      time.Time
}
