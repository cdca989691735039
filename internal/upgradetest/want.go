package upgradetest

import (
	"cmp"
	"slices"

	"github.com/kapsel-dev/kapsel"
)

// The 0.1 → 0.2 mapping, one rule per kind of row: what a store must read
// back after the upgrade. Both stores' migrations implement it; Check
// compares with it field for field.

// WantSource is the source the upgrade makes of a 0.1 endpoint (deleted
// endpoints too; their source is deleted, so SourceGet does not find it):
// id [kapsel.LegacySourceID], the endpoint's tenant, name and ingest
// verifier, state active, no EventTypeFrom or IdempotencyKeyFrom (0.1 had
// none: the scheme defaults apply, as they did), the endpoint's CreatedAt
// and UpdatedAt.
func (f *Fixture) WantSource(e *Endpoint) *kapsel.Source {
	return &kapsel.Source{
		ID: kapsel.LegacySourceID(e.ID), TenantID: e.TenantID, Name: e.Name, State: kapsel.SourceActive,
		Verifier: kapsel.VerifierConfig{
			Scheme: e.IngestVerifier.Scheme, Secrets: slices.Clone(e.IngestVerifier.Secrets), Header: e.IngestVerifier.Header,
		},
		CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt,
	}
}

// WantEndpoint is the endpoint after the upgrade: the same, without its
// ingest verifier (now its source's), subscribed to its legacy source and
// nothing else — Subscription.SourceIDs is exactly
// [LegacySourceID(e.ID)], EventTypes and Channels are empty. Filters that
// schemas before 0005 stored were never applied (an event went to the
// endpoint it named), so they are not kept: kept, they would filter out
// the traffic the legacy URL still brings, which has no channels and, for
// most schemes, no type. UpdatedAt is unchanged.
func (f *Fixture) WantEndpoint(e *Endpoint) *kapsel.Endpoint {
	return &kapsel.Endpoint{
		ID: e.ID, TenantID: e.TenantID, Name: e.Name, URL: e.URL, State: e.State, DisabledReason: e.DisabledReason,
		SigningSecrets: slices.Clone(e.SigningSecrets), RetryPolicy: e.RetryPolicy, Timeout: e.Timeout, Headers: e.Headers,
		Subscription: kapsel.Subscription{SourceIDs: []kapsel.SourceID{kapsel.LegacySourceID(e.ID)}},
		CreatedAt:    e.CreatedAt, UpdatedAt: e.UpdatedAt,
	}
}

// WantEvent is the event after the upgrade: its immutable part, with
// SourceID the legacy source of its 0.1 endpoint and a summary counting its
// one delivery (WantDelivery) by status.
func (f *Fixture) WantEvent(e *Event) *kapsel.Event {
	out := &kapsel.Event{
		ID: e.ID, TenantID: e.TenantID, SourceID: kapsel.LegacySourceID(e.EndpointID), Type: e.Type,
		Channels: slices.Clone(e.Channels), Body: e.Body, ContentType: e.ContentType, Headers: e.Headers,
		IdempotencyKey: e.IdempotencyKey, BodyHash: e.BodyHash, Size: e.Size, CreatedAt: e.CreatedAt,
	}
	out.Deliveries.Add(f.WantDelivery(e).Status, 1)
	return out
}

// WantDelivery is the delivery the upgrade makes of a 0.1 event, whatever
// its status (so history, retry and replay keep working): id
// [LegacyDeliveryID], the event's tenant, id and endpoint, and its queue
// state as it was — status, attempts, next attempt, next trigger, lease
// token and expiry, last error, delivered time — with the event's
// CreatedAt.
//
// One exception, so that the upgraded store holds nothing 0.2 could not
// have made: a pending or delivering event of a deleted endpoint (0.1 left
// those as they were, never to be claimed) becomes a failed delivery with
// LastError [kapsel.LastErrorEndpointDeleted], as 0.2's EndpointDelete
// ends them; a delivering one keeps its lease token and expiry, as
// EndpointDelete leaves them, so the completion of an attempt in flight
// is still recorded (kapsel.DeliveryQueue.DeliveryComplete).
func (f *Fixture) WantDelivery(e *Event) *kapsel.Delivery {
	d := &kapsel.Delivery{
		ID: LegacyDeliveryID(e.ID), TenantID: e.TenantID, EventID: e.ID, EndpointID: e.EndpointID,
		Status: e.Status, Attempts: e.Attempts, NextAttemptAt: e.NextAttemptAt, NextTrigger: e.NextTrigger,
		LeaseToken: e.LeaseToken, LeaseExpiresAt: e.LeaseExpiresAt, LastError: e.LastError,
		CreatedAt: e.CreatedAt, DeliveredAt: e.DeliveredAt,
	}
	if _, deleted := f.DeletedAt[e.EndpointID]; deleted && !e.Status.Terminal() {
		d.Status, d.LastError = kapsel.DeliveryFailed, kapsel.LastErrorEndpointDeleted
	}
	return d
}

// WantAttempt is the attempt after the upgrade: the same, with DeliveryID
// the legacy delivery of its event.
func (f *Fixture) WantAttempt(a *kapsel.Attempt) *kapsel.Attempt {
	out := *a
	out.ResponseBody = slices.Clone(a.ResponseBody)
	out.DeliveryID = LegacyDeliveryID(a.EventID)
	return &out
}

// WantKeyScope is the scope a 0.1 idempotency key (scoped by endpoint)
// has after the upgrade: the endpoint's tenant and legacy source, so that
// a provider retrying through the old ingest URL is still deduplicated.
func (f *Fixture) WantKeyScope(k Key) (kapsel.TenantID, kapsel.SourceID) {
	return f.endpoint(k.EndpointID).TenantID, kapsel.LegacySourceID(k.EndpointID)
}

// endpoint returns the fixture's endpoint with the id.
func (f *Fixture) endpoint(id kapsel.EndpointID) *Endpoint {
	for _, e := range f.Endpoints {
		if e.ID == id {
			return e
		}
	}
	panic("upgradetest: no endpoint " + string(id))
}

// liveEndpoints returns the tenant's endpoints that are not deleted, as
// WantEndpoint maps them, in id order.
func (f *Fixture) liveEndpoints(tenant kapsel.TenantID) []*kapsel.Endpoint {
	var out []*kapsel.Endpoint
	for _, e := range f.Endpoints {
		if _, deleted := f.DeletedAt[e.ID]; !deleted && e.TenantID == tenant {
			out = append(out, f.WantEndpoint(e))
		}
	}
	slices.SortFunc(out, func(a, b *kapsel.Endpoint) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// fanOut returns the ids of the endpoints that an event with routing ev
// goes to after the upgrade, by the root matching rule, in id order.
func (f *Fixture) fanOut(ev kapsel.EventRouting) []kapsel.EndpointID {
	var out []kapsel.EndpointID
	for _, e := range f.liveEndpoints(ev.TenantID) {
		if e.Receives(ev) {
			out = append(out, e.ID)
		}
	}
	return out
}
