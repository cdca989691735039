package kapsel

import (
	"fmt"
	"slices"
)

// Storable returns the copy of p that a store writes, or an error wrapping
// ErrInvalid when p cannot be stored. Every store calls it on each input of
// EventInsertMany before it writes anything, so a refused input leaves
// nothing behind (and, for a store writing in its caller's transaction,
// leaves that transaction usable).
//
//   - TenantID, SourceID and EndpointIDs go through [SafeText] too: an id
//     with bytes no id has names nothing, and the insert answers
//     ErrNotFound for that row as for any unknown endpoint. EndpointIDs
//     is cut to its distinct ids, in order; more than [MaxSendEndpoints]
//     of them is refused (E1009).
//   - ContentType, the names and values of Headers, and IdempotencyKey go
//     through [SafeText] (see [SafeHeader]); Body and BodyHash are kept byte
//     for byte. The ingester refuses a Content-Type it would have to change
//     (400 E1009) before it gets here; this is the rule for every other
//     caller.
//   - Type is outside text too (a provider's header or body field): it goes
//     through [StorableEventType] — SafeText, then cut to MaxEventTypeLen
//     bytes at a character boundary. Made to fit, never refused, so one
//     odd type cannot fail the batch it is committed in. The front door's
//     Send refuses a type [ValidEventType] refuses (400 E1009) before it
//     gets here; the ingester cuts a provider's type itself.
//   - Channels are given by the application, never by a provider: a list
//     [CheckEventChannels] refuses is refused here (a *Error with code
//     E1009). The front door's Send checks them first, so a send with bad
//     channels never reaches a batch.
//   - Trace goes through [TraceContext.Storable]: a traceparent that is
//     not valid drops the trace context (never refused, like Type).
//   - An IdempotencyKey without a BodyHash is refused: the store could not
//     tell a retry from another event reusing the key (I2 of docs/guarantees.md: an insert
//     that could not compare bodies is refused, never deduplicated).
//
// p itself is not changed.
func (p *EventInsertParams) Storable() (*EventInsertParams, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: event to insert is nil", ErrInvalid)
	}
	if p.IdempotencyKey != "" && len(p.BodyHash) == 0 {
		return nil, fmt.Errorf("%w: event with idempotency key %q has no BodyHash to compare duplicates by",
			ErrInvalid, SafeText(p.IdempotencyKey))
	}
	if err := CheckEventChannels(p.Channels); err != nil {
		return nil, err
	}
	out := *p
	out.Channels = slices.Clone(p.Channels)
	out.TenantID = TenantID(SafeText(string(p.TenantID)))
	out.SourceID = SourceID(SafeText(string(p.SourceID)))
	out.EndpointIDs = nil
	for _, id := range p.EndpointIDs {
		id = EndpointID(SafeText(string(id)))
		if !slices.Contains(out.EndpointIDs, id) {
			out.EndpointIDs = append(out.EndpointIDs, id)
		}
	}
	if len(out.EndpointIDs) > MaxSendEndpoints {
		return nil, invalid(CodeMalformedRequest, "an event may name at most %d endpoints, got %d", MaxSendEndpoints, len(out.EndpointIDs))
	}
	out.Type = StorableEventType(p.Type)
	out.ContentType = SafeText(p.ContentType)
	out.Headers = SafeHeader(p.Headers)
	out.IdempotencyKey = SafeText(p.IdempotencyKey)
	out.Trace = p.Trace.Storable()
	return &out, nil
}
