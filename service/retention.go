package service

import (
	"context"
	"fmt"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Expunging erases event bodies at once, whatever the retention policy
// says: a customer's erasure request (GDPR article 17), a payload sent by
// mistake. The event keeps its metadata, its deliveries and their attempts
// (the audit trail), and shows the fact and time of the erasure
// (BodyErasure "expunged", BodyErasedAt). Its forwarded headers are erased
// with the body: providers put tokens and user data in them. Its body hash
// stays, so that a provider's retry with the same idempotency key is still
// recognised within the window. The deliveries of an expunged event that
// had not ended end as failed (kapsel.LastErrorBodyExpunged): there is
// nothing left to send. docs/operations.md, "Retention", has the rest.

// ExpungeEvent erases the body and forwarded headers of the tenant's event
// id now and returns the event as it is then. Expunging an event whose
// body was erased already changes nothing (the first erasure stays). When
// it returns, no request carrying the body starts in this process; another
// node holding a delivery of it already claimed may still start one for
// at most the dispatcher's LeaseDuration/3 (delivery/expunge.go).
// Errors: E1011 when the event is not the tenant's; kapsel.ErrInvalid when
// the store does not implement kapsel.RetentionStore.
func (s *Service) ExpungeEvent(ctx context.Context, tenant kapsel.TenantID, id kapsel.EventID) (*kapsel.Event, error) {
	if s.expunger == nil {
		return nil, errNoExpunge
	}
	start := time.Now()
	res, err := s.expunger.EventExpunge(ctx, &kapsel.EventExpungeParams{TenantID: tenant, ID: id, Now: s.now()})
	if err != nil {
		return nil, notFoundErr(err, "event", string(id))
	}
	s.dispatcher.EventExpunged(id)
	s.reportExpunge(res, time.Since(start))
	return s.GetEvent(ctx, tenant, id, false)
}

// errNoExpunge is the expunges' error on a store without kapsel.RetentionStore.
var errNoExpunge = fmt.Errorf("%w: the store does not support expunge (kapsel.RetentionStore)", kapsel.ErrInvalid)

// ExpungeTenantBodies erases the body and forwarded headers of the
// tenant's events created up to the call (by event id, which carries the
// creating node's clock to the millisecond), batch by batch (each batch one
// short transaction), and returns how many it erased. Events that arrive
// during the call are left alone, so that it ends even while the tenant
// ingests faster than it erases; a few that arrive during its last batch
// may be erased with it. It works on a deleted tenant too (whose events are
// kept): that is when an erasure request usually comes. An unknown tenant
// has no events: 0. Each batch is reported to the dispatcher as it
// commits, as ExpungeEvent. It returns when all are erased, or with ctx's
// error, having erased what it reached (call it again to finish).
func (s *Service) ExpungeTenantBodies(ctx context.Context, tenant kapsel.TenantID) (int, error) {
	if _, err := kapsel.ParseTenantID(string(tenant)); err != nil {
		return 0, notFoundErr(kapsel.ErrNotFound, "tenant", string(tenant))
	}
	if s.expunger == nil {
		return 0, errNoExpunge
	}
	// bound sorts after every event id made up to now on this node (ids are
	// time-ordered, and this one is newer).
	bound := kapsel.NewEventID()
	p := &kapsel.EventExpungeParams{TenantID: tenant, Now: s.now()}
	total := 0
	for {
		start := time.Now()
		res, err := s.expunger.EventExpunge(ctx, p)
		if err != nil {
			return total, err
		}
		// Every event of the tenant below res.Next was examined, and with
		// Done every one up to it; "~" sorts after every id character.
		examined := res.Next
		if res.Done {
			examined += "~"
		}
		if examined != "" {
			s.dispatcher.TenantExpunged(tenant, examined)
		}
		s.reportExpunge(res, time.Since(start))
		total += res.Events
		if res.Done || res.Next > bound {
			return total, nil
		}
		p.From = res.Next
	}
}

// reportExpunge tells the hooks what an expunge erased.
func (s *Service) reportExpunge(res *kapsel.RetentionSweepResult, took time.Duration) {
	if h := s.cfg.Hooks.OnRetention; h != nil && res.Events > 0 {
		h(kapsel.RetentionInfo{Table: kapsel.RetentionEventBodies, Rows: res.Events, Bytes: res.Bytes,
			Cause: kapsel.BodyExpunged, Duration: took})
	}
}
