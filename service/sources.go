package service

import (
	"context"
	"strings"

	"github.com/kapsel-dev/kapsel"
)

// SourceCreate is the input of [Service.CreateSource].
type SourceCreate struct {
	// Name is optional, at most MaxNameLength bytes once trimmed.
	Name string
	// Verifier checks the webhooks providers send to the source's ingest
	// URL: a scheme of Config.Verifiers (the built-in ones, or one the
	// application registered) and its secrets, all tried (rotation).
	// Defaults (zero) to scheme "none", which checks nothing.
	Verifier kapsel.VerifierConfig
	// EventTypeFrom overrides where the event type is read from:
	// "header:<Name>" or "json:<pointer>" (kapsel.FieldRef). Defaults ("")
	// to the scheme's own rule (docs/ingest.md).
	EventTypeFrom kapsel.FieldRef
	// IdempotencyKeyFrom names where the idempotency key is read from when
	// a request carries neither an Idempotency-Key header nor the
	// provider's delivery id, as a kapsel.FieldRef. Defaults ("") to none.
	IdempotencyKeyFrom kapsel.FieldRef
}

// SourceUpdate is the input of [Service.UpdateSource]: a nil field keeps
// the stored value, a set one replaces it whole (Verifier with its
// secrets: to rotate a secret, set the new one beside the old, then the new
// one alone once the provider signs with it). A set FieldRef of "" removes
// the override.
type SourceUpdate struct {
	Name               *string
	Verifier           *kapsel.VerifierConfig
	EventTypeFrom      *kapsel.FieldRef
	IdempotencyKeyFrom *kapsel.FieldRef
}

// CreateSource creates a source and returns it; providers send to its
// ingest URL, [IngestURL] of its id. Errors: E1009 for a name too long, a
// verifier that is not one of Config.Verifiers' schemes or that
// kapsel.VerifierConfig.Validate refuses (an empty secret, none for a
// scheme that needs one, a header the scheme does not take), or a field
// reference kapsel.FieldRef.Validate refuses. Error messages never contain
// a secret.
func (s *Service) CreateSource(ctx context.Context, tenant kapsel.TenantID, in SourceCreate) (*kapsel.Source, error) {
	src := &kapsel.Source{TenantID: tenant, State: kapsel.SourceActive}
	u := SourceUpdate{Name: &in.Name, Verifier: &in.Verifier, EventTypeFrom: &in.EventTypeFrom, IdempotencyKeyFrom: &in.IdempotencyKeyFrom}
	if err := s.applySourceUpdate(&u, src); err != nil {
		return nil, err
	}
	return s.store.SourceInsert(ctx, &kapsel.SourceInsertParams{Source: src, Now: s.now()})
}

// GetSource returns one of the tenant's sources. Errors: E1011 when it is
// unknown, deleted or another tenant's.
func (s *Service) GetSource(ctx context.Context, tenant kapsel.TenantID, id kapsel.SourceID) (*kapsel.Source, error) {
	src, err := s.store.SourceGet(ctx, &kapsel.SourceGetParams{ID: id, TenantID: tenant})
	if err != nil {
		return nil, notFoundErr(err, "source", string(id))
	}
	return src, nil
}

// ListSources lists the tenant's sources in id order. Errors: E1009 for a
// bad limit or a malformed cursor.
func (s *Service) ListSources(ctx context.Context, tenant kapsel.TenantID, o ListOptions) (*Page[*kapsel.Source], error) {
	limit, err := o.check(func(c string) error { _, err := kapsel.ParseSourceID(c); return err })
	if err != nil {
		return nil, err
	}
	return list(limit, o.Cursor, func(limit int, cursor string) ([]*kapsel.Source, error) {
		return s.store.SourceList(ctx, &kapsel.SourceListParams{TenantID: tenant, Limit: limit, Cursor: kapsel.SourceID(cursor)})
	}, func(src *kapsel.Source) string { return string(src.ID) })
}

// UpdateSource changes the fields of a source that u sets, with the rules
// and errors of CreateSource, and E1011 as GetSource. The change is merged
// into the source as stored at the moment of the write, in one store
// operation, so no concurrent update is undone by it. Before it returns,
// the service's ingester forgets its cached copy of the source
// (ingest.Ingester.SourceChanged): requests arriving later are checked with
// the new verifier. Ingesters of other processes may use the previous one
// for up to their cache's TTL (ingest.Config.SourceCacheTTL, 1 s by
// default; docs/ingest.md).
func (s *Service) UpdateSource(ctx context.Context, tenant kapsel.TenantID, id kapsel.SourceID, u SourceUpdate) (*kapsel.Source, error) {
	src, err := s.store.SourceUpdate(ctx, &kapsel.SourceUpdateParams{
		ID: id, TenantID: tenant, Now: s.now(),
		Update: func(src *kapsel.Source) error { return s.applySourceUpdate(&u, src) },
	})
	if err != nil {
		return nil, notFoundErr(err, "source", string(id))
	}
	s.ingester.SourceChanged(id)
	return src, nil
}

// PauseSource pauses a source: its ingest URL answers 503 E3001 with
// Retry-After, so providers keep their webhooks and send them again later;
// in this process from its return on, in others within the ingest cache's
// TTL (as UpdateSource). Errors: E1011 as GetSource.
func (s *Service) PauseSource(ctx context.Context, tenant kapsel.TenantID, id kapsel.SourceID) (*kapsel.Source, error) {
	return s.setSourceState(ctx, tenant, id, kapsel.SourcePaused)
}

// ResumeSource makes a paused source accept webhooks again. Errors: E1011
// as GetSource.
func (s *Service) ResumeSource(ctx context.Context, tenant kapsel.TenantID, id kapsel.SourceID) (*kapsel.Source, error) {
	return s.setSourceState(ctx, tenant, id, kapsel.SourceActive)
}

func (s *Service) setSourceState(ctx context.Context, tenant kapsel.TenantID, id kapsel.SourceID, state kapsel.SourceState) (*kapsel.Source, error) {
	src, err := s.store.SourceSetState(ctx, &kapsel.SourceSetStateParams{ID: id, TenantID: tenant, State: state, Now: s.now()})
	if err != nil {
		return nil, notFoundErr(err, "source", string(id))
	}
	s.ingester.SourceChanged(id)
	return src, nil
}

// DeleteSource deletes a source: its ingest URL answers 404 E1003 from then
// on — in this process from DeleteSource's return (the ingester's cached
// copy is dropped first), in other processes within their ingest cache's
// TTL (docs/ingest.md); its events and their deliveries are left as they
// are. Endpoints that list it in their source_ids keep it there, matching
// nothing new. Errors: E1011 as GetSource.
func (s *Service) DeleteSource(ctx context.Context, tenant kapsel.TenantID, id kapsel.SourceID) error {
	err := s.store.SourceDelete(ctx, &kapsel.SourceDeleteParams{ID: id, TenantID: tenant, Now: s.now()})
	if err != nil {
		return notFoundErr(err, "source", string(id))
	}
	s.ingester.SourceChanged(id)
	return nil
}

// applySourceUpdate merges u into src (a new source or the stored one) and
// validates it: the verifier by checkVerifier, the field references and
// the rest by kapsel.Source.ValidateConfig. It does no I/O, since the store
// calls it with the source locked.
func (s *Service) applySourceUpdate(u *SourceUpdate, src *kapsel.Source) error {
	if u.Name != nil {
		name, err := checkName(*u.Name, false)
		if err != nil {
			return err
		}
		src.Name = name
	}
	if u.Verifier != nil {
		v, err := s.checkVerifier(*u.Verifier)
		if err != nil {
			return err
		}
		src.Verifier = v
	}
	if u.EventTypeFrom != nil {
		src.EventTypeFrom = kapsel.FieldRef(strings.TrimSpace(string(*u.EventTypeFrom)))
	}
	if u.IdempotencyKeyFrom != nil {
		src.IdempotencyKeyFrom = kapsel.FieldRef(strings.TrimSpace(string(*u.IdempotencyKeyFrom)))
	}
	if err := src.ValidateConfig(); err != nil {
		return invalid("%s", detail(err))
	}
	return nil
}

// checkVerifier returns v ready to store: the scheme "none" when empty, the
// header trimmed; E1009 unless the scheme is one of Config.Verifiers' and
// v passes kapsel.VerifierConfig.Validate.
func (s *Service) checkVerifier(v kapsel.VerifierConfig) (kapsel.VerifierConfig, error) {
	v.Header = strings.TrimSpace(v.Header)
	if v.Scheme == "" {
		v.Scheme = kapsel.SchemeNone
	}
	if _, ok := s.cfg.Verifiers.Lookup(v.Scheme); !ok {
		return v, invalid("verifier.scheme %q is not one of %s", clip(v.Scheme), strings.Join(s.cfg.Verifiers.Schemes(), ", "))
	}
	if err := v.Validate(); err != nil {
		return v, invalid("%s", detail(err))
	}
	return v, nil
}

// IngestURL returns the path providers send a source's webhooks to,
// "/ingest/src_…".
func IngestURL(id kapsel.SourceID) string { return "/ingest/" + string(id) }
