package service

import (
	"context"
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
// body was erased already changes nothing (the first erasure stays).
// Errors: E1011 when the event is not the tenant's.
func (s *Service) ExpungeEvent(ctx context.Context, tenant kapsel.TenantID, id kapsel.EventID) (*kapsel.Event, error) {
	start := time.Now()
	res, err := s.store.EventExpunge(ctx, &kapsel.EventExpungeParams{TenantID: tenant, ID: id, Now: s.now()})
	if err != nil {
		return nil, notFoundErr(err, "event", string(id))
	}
	s.reportExpunge(res, time.Since(start))
	return s.GetEvent(ctx, tenant, id, false)
}

// ExpungeTenantBodies erases the body and forwarded headers of every event
// of the tenant now, batch by batch (each batch one short transaction),
// and returns how many it erased. It works on a deleted tenant too (whose
// events are kept): that is when an erasure request usually comes. An
// unknown tenant has no events: 0. It returns when all are erased, or with
// ctx's error, having erased what it reached (call it again to finish).
func (s *Service) ExpungeTenantBodies(ctx context.Context, tenant kapsel.TenantID) (int, error) {
	if _, err := kapsel.ParseTenantID(string(tenant)); err != nil {
		return 0, notFoundErr(kapsel.ErrNotFound, "tenant", string(tenant))
	}
	p := &kapsel.EventExpungeParams{TenantID: tenant, Now: s.now()}
	total := 0
	for {
		start := time.Now()
		res, err := s.store.EventExpunge(ctx, p)
		if err != nil {
			return total, err
		}
		s.reportExpunge(res, time.Since(start))
		total += res.Events
		if res.Done {
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
