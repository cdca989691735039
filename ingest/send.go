package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/internal/reqbody"
)

// Send stores an event an application sends itself (nothing to verify):
// row.TenantID names the tenant; row.EndpointIDs, when set, the endpoints
// it goes to (else the store fans it out to the tenant's subscribed
// endpoints); row.SourceID must be empty (a send has no source, and its
// idempotency key is scoped to the tenant); row.Type, Channels, Body,
// ContentType, Headers and IdempotencyKey are the event; BodyHash is
// computed here. It is group-committed with ingests and returns after its
// own commit, the event's deliveries included (the result's
// Event.Deliveries.Total counts them). The front door's Send calls it;
// OnIngest hooks see it like an ingest, with no SourceID.
//
// Errors, in the order they are checked: 404 E1011 when the tenant does
// not exist (as for every operation a tenant calls by API key; E1003 is an
// ingest URL's answer); 400 E1009 for a row with a SourceID; CheckSend's
// 413 E1002, 400 E1004 and 400 E1009; 429 E1006 over the tenant's rate; 422
// E1005 for a key reused with another body; 404 E1011 when an endpoint of
// EndpointIDs is unknown, deleted or another tenant's (nothing is stored);
// 503 E3001 or E3003 when nothing could be stored.
func (in *Ingester) Send(ctx context.Context, row *kapsel.EventInsertParams) (*kapsel.IngestResult, error) {
	start := time.Now()
	info := kapsel.IngestInfo{TenantID: row.TenantID, Send: true}
	ctx, sp := in.startSpan(ctx, kapsel.IngestStart{TenantID: row.TenantID, Send: true, Trace: row.Trace.Storable()})
	if sp != nil && sp.store != row.Trace {
		r := *row // the caller's row is left as it is
		r.Trace = sp.store
		row = &r
	}
	res, err := in.send(ctx, row)
	in.report(ctx, sp, &info, res, err, start)
	return res, err
}

func (in *Ingester) send(ctx context.Context, row *kapsel.EventInsertParams) (*kapsel.IngestResult, error) {
	release, err := in.admit()
	if err != nil {
		return nil, err
	}
	defer release()
	tenant, err := in.tenants.get(ctx, row.TenantID)
	switch {
	case errors.Is(err, kapsel.ErrNotFound):
		return nil, &kapsel.Error{Code: kapsel.CodeNotFound, Detail: fmt.Sprintf("tenant %q not found", kapsel.SafeText(string(row.TenantID))), Err: err}
	case err != nil:
		return nil, in.unavailable("storage unavailable; retry later", err)
	}
	if row.SourceID != "" {
		return nil, &kapsel.Error{Code: kapsel.CodeMalformedRequest, Detail: "a sent event has no source", Err: kapsel.ErrInvalid}
	}
	if err := CheckSend(row, in.cfg.MaxBodyBytes); err != nil {
		return nil, err
	}
	if err := in.allowRate(tenant, in.cfg.Clock.Now()); err != nil {
		return nil, err
	}
	return in.submit(ctx, row)
}

// CheckSend applies ingest's rules to an event an application sends and
// sets its BodyHash: the body at most maxBody bytes (E1002), the
// idempotency key empty or 1–255 printable ASCII (E1004), the type empty or
// at most 255 bytes of printable text (kapsel.ValidEventType, E1009), the
// channels as kapsel.CheckEventChannels wants them (E1009), at most
// kapsel.MaxSendEndpoints endpoints named (E1009), the content type
// storable as it is (E1009). Forwarded header values are made
// safe by the store, as for ingest.
func CheckSend(row *kapsel.EventInsertParams, maxBody int64) error {
	if int64(len(row.Body)) > maxBody {
		return reqbody.TooLarge(maxBody)
	}
	if row.IdempotencyKey != "" {
		if err := ValidIdempotencyKey(row.IdempotencyKey); err != nil {
			return &kapsel.Error{Code: kapsel.CodeBadIdempotencyKey, Detail: err.Error(), Err: err}
		}
	}
	if err := kapsel.ValidEventType(row.Type); err != nil {
		return &kapsel.Error{Code: kapsel.CodeMalformedRequest, Detail: err.Error(), Err: err}
	}
	if err := kapsel.CheckEventChannels(row.Channels); err != nil {
		return err // a *kapsel.Error with E1009
	}
	if err := checkContentType(row.ContentType); err != nil {
		return err
	}
	if n := countDistinct(row.EndpointIDs); n > kapsel.MaxSendEndpoints {
		return &kapsel.Error{Code: kapsel.CodeMalformedRequest,
			Detail: fmt.Sprintf("an event may name at most %d endpoints, got %d", kapsel.MaxSendEndpoints, n), Err: kapsel.ErrInvalid}
	}
	sum := sha256.Sum256(row.Body)
	row.BodyHash = sum[:]
	return nil
}

// countDistinct counts the distinct ids, as the store sees them.
func countDistinct(ids []kapsel.EndpointID) int {
	if len(ids) <= kapsel.MaxSendEndpoints {
		return len(ids)
	}
	seen := make(map[kapsel.EndpointID]bool, len(ids))
	for _, id := range ids {
		seen[id] = true
	}
	return len(seen)
}
