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

// Send stores an event an application sends itself (nothing to verify) to
// one of a tenant's endpoints: row.TenantID and row.EndpointID name them;
// row.Type, Channels, Body, ContentType, Headers and IdempotencyKey are the
// event; BodyHash is computed here. It is group-committed with ingests and
// returns after its own commit. The front door's Send calls it; OnIngest
// hooks see it like an ingest.
//
// Errors, in the order they are checked: 404 E1011 when the endpoint is
// not the tenant's (as for every operation a tenant calls by API key; E1003
// is an ingest URL's answer); CheckSend's 413 E1002, 400 E1004 and 400
// E1009; 429 E1006 over the tenant's rate; 422 E1005 for a key reused with
// another body; 503 E3001 or E3003 when nothing could be stored.
func (in *Ingester) Send(ctx context.Context, row *kapsel.EventInsertParams) (*kapsel.IngestResult, error) {
	start := time.Now()
	info := kapsel.IngestInfo{EndpointID: row.EndpointID, TenantID: row.TenantID}
	res, err := in.send(ctx, row)
	in.report(&info, res, err, start)
	return res, err
}

func (in *Ingester) send(ctx context.Context, row *kapsel.EventInsertParams) (*kapsel.IngestResult, error) {
	release, err := in.admit()
	if err != nil {
		return nil, err
	}
	defer release()
	tgt, err := in.endpoints.get(ctx, row.EndpointID)
	switch {
	case errors.Is(err, kapsel.ErrNotFound) || (err == nil && tgt.tenant.ID != row.TenantID):
		return nil, endpointNotFound(row.EndpointID, kapsel.ErrNotFound)
	case err != nil:
		return nil, in.unavailable("storage unavailable; retry later", err)
	}
	if err := CheckSend(row, in.cfg.MaxBodyBytes); err != nil {
		return nil, err
	}
	if err := in.allowRate(tgt.tenant, in.cfg.Clock.Now()); err != nil {
		return nil, err
	}
	res, err := in.submit(ctx, row)
	if err != nil && kapsel.CodeOf(err) == kapsel.CodeUnknownEndpoint {
		// Deleted since it was looked up: still E1011, not an ingest URL's
		// E1003.
		return nil, endpointNotFound(row.EndpointID, err)
	}
	return res, err
}

// endpointNotFound is a send's answer for an endpoint that is unknown,
// deleted or another tenant's: 404 E1011, as for every operation a tenant
// calls (E1003 is the answer of an ingest URL).
func endpointNotFound(id kapsel.EndpointID, err error) error {
	return &kapsel.Error{Code: kapsel.CodeNotFound, Detail: fmt.Sprintf("endpoint %q not found", id), Err: err}
}

// CheckSend applies ingest's rules to an event an application sends and
// sets its BodyHash: the body at most maxBody bytes (E1002), the
// idempotency key empty or 1–255 printable ASCII (E1004), the type empty or
// at most 255 bytes of printable text (kapsel.ValidEventType, E1009), the
// channels as kapsel.CheckEventChannels wants them (E1009), the content
// type storable as it is (E1009). Forwarded header values are made
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
	sum := sha256.Sum256(row.Body)
	row.BodyHash = sum[:]
	return nil
}
