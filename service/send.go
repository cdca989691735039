package service

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/ingest"
)

// Send is an event the application sends itself. It goes to every endpoint
// of the tenant whose subscription filter matches it (by Type and
// Channels; a sent event has no source), or, with EndpointIDs, to exactly
// those endpoints.
type Send struct {
	// Type is the event type, such as "invoice.paid": at most 255 bytes of
	// printable text (kapsel.ValidEventType). Endpoints subscribe to types,
	// and events are listed by it. Defaults to none (then only endpoints
	// that take any type receive it).
	Type string
	// Channels are the channels the event is sent on: at most
	// kapsel.MaxEventChannels, each 1–255 bytes of printable ASCII without
	// space or "*", none twice (kapsel.CheckEventChannels, E1009).
	// Endpoints subscribe to channels. Defaults to none.
	Channels []string
	// EndpointIDs, when set, are the endpoints that receive the event,
	// whatever their filters: at most kapsel.MaxSendEndpoints, each one of
	// the tenant's (E1011 otherwise; nothing is stored). Defaults (nil) to
	// the endpoints subscribed to it.
	EndpointIDs []kapsel.EndpointID
	// Payload, when not nil, is the body as JSON: json.Marshal of it
	// (a json.RawMessage is taken as it is, compacted). Set Payload or
	// Body, not both.
	Payload any
	// Body is delivered byte for byte.
	Body []byte
	// ContentType is delivered as the Content-Type. Defaults to
	// "application/json".
	ContentType string
	// Headers are stored with the event and delivered with it (end-to-end
	// headers only, as for ingest). Defaults to none.
	Headers http.Header
	// IdempotencyKey makes a repeated send within the idempotency window
	// (24 h) return the first event instead of storing another: 1–255
	// printable ASCII characters, unique per tenant. Defaults to none.
	IdempotencyKey string
	// Trace is the W3C trace context the send continues (POST /v1/events:
	// the request's traceparent and tracestate), kept with the event so
	// that its deliveries join that trace; one that is not valid is
	// dropped (kapsel.TraceContext.Storable). Defaults to none — with
	// tracing on (tracing/oteltracing), the span in ctx is the parent then.
	Trace kapsel.TraceContext
}

// SendResult is what a send stored.
type SendResult struct {
	// Event is the stored event; the first one when Duplicate.
	Event *kapsel.Event
	// Deliveries is the number of deliveries the event was fanned out to,
	// all pending; 0 when it matched no endpoint, and for a duplicate.
	Deliveries int
	// Duplicate is true when IdempotencyKey was already used, with the same
	// body, within its window; Event is then the first event.
	Duplicate bool
}

// row checks what a send names and builds its stored event;
// ingest.CheckSend checks the rest.
func row(tenant kapsel.TenantID, in *Send) (*kapsel.EventInsertParams, error) {
	body := in.Body
	if in.Payload != nil {
		if in.Body != nil {
			return nil, invalid("set the payload or the body, not both")
		}
		b, err := json.Marshal(in.Payload)
		if err != nil {
			return nil, invalid("payload is not JSON: %s", jsonErrorDetail(err))
		}
		body = b
	}
	if in.EndpointIDs != nil && len(in.EndpointIDs) == 0 {
		return nil, invalid("endpoint_ids must name at least one endpoint; leave it out to send to the subscribed endpoints")
	}
	if len(in.EndpointIDs) > kapsel.MaxSendEndpoints {
		return nil, invalid("endpoint_ids names at most %d endpoints, got %d", kapsel.MaxSendEndpoints, len(in.EndpointIDs))
	}
	for i, id := range in.EndpointIDs {
		if _, err := kapsel.ParseEndpointID(string(id)); err != nil {
			return nil, invalid("endpoint_ids[%d] is not an endpoint id", i)
		}
	}
	r := &kapsel.EventInsertParams{
		TenantID: tenant, EndpointIDs: in.EndpointIDs, Type: in.Type, Channels: in.Channels, Body: body,
		ContentType: in.ContentType, Headers: ingest.ForwardedHeaders(in.Headers), IdempotencyKey: in.IdempotencyKey,
		Trace: in.Trace,
	}
	if r.ContentType == "" {
		r.ContentType = "application/json"
	}
	return r, nil
}

// Send stores an event and its deliveries and returns once they are
// committed; the dispatcher then delivers them like those of an ingested
// webhook (in-process wake-up, within milliseconds). It is group-committed
// with ingests and follows their rules. Errors: E1009 for a payload and a
// body both set, a malformed endpoint id, an empty EndpointIDs or one of
// more than kapsel.MaxSendEndpoints ids; E1011 when an endpoint it names is
// not the tenant's (unknown, deleted, another tenant's); E1002, E1004,
// E1009 for a body, idempotency key or content type ingest would refuse;
// E1009 for a type that is not printable text of at most 255 bytes, or for
// channels kapsel.CheckEventChannels refuses; E1005 for an idempotency key
// reused with another body; E1006 over the tenant's rate; E3001 or E3003
// when nothing could be stored (retry).
func (s *Service) Send(ctx context.Context, tenant kapsel.TenantID, in Send) (*SendResult, error) {
	r, err := row(tenant, &in)
	if err != nil {
		return nil, err
	}
	res, err := s.ingester.Send(ctx, r)
	if err != nil {
		return nil, sendNotFound(err, &in)
	}
	return sendResult(res.Event, res.Duplicate), nil
}

// sendResult builds the result of a stored or duplicate send.
func sendResult(e *kapsel.Event, duplicate bool) *SendResult {
	out := &SendResult{Event: e, Duplicate: duplicate}
	if !duplicate {
		out.Deliveries = e.Deliveries.Total
	}
	return out
}

// sendNotFound turns a send's kapsel.ErrNotFound — an endpoint it names is
// unknown, deleted or another tenant's, or the tenant is unknown — into
// E1011 with a detail that says so; other errors pass through.
func sendNotFound(err error, in *Send) error {
	var ke *kapsel.Error
	if !errors.Is(err, kapsel.ErrNotFound) || (errors.As(err, &ke) && ke.Code == kapsel.CodeNotFound) {
		return err
	}
	detail := "tenant not found"
	if len(in.EndpointIDs) > 0 {
		detail = "an endpoint of endpoint_ids was not found (unknown, deleted or another tenant's)"
	}
	return &kapsel.Error{Code: kapsel.CodeNotFound, Detail: detail, Err: err}
}

// TxStore is the store capability SendTx needs: inserting events inside a
// transaction the application owns. store/pgstore's Store has it.
type TxStore interface {
	EventInsertManyTx(ctx context.Context, tx pgx.Tx, params *kapsel.EventInsertManyParams) ([]kapsel.EventInsertResult, error)
}

// SendTx stores an event and its deliveries inside the application's own
// transaction tx (the transactional outbox): they are committed with the
// application's business write, or rolled back with it, never one without
// the other. The fan-out is decided in tx, from the endpoints it sees. The
// service's store must be a [TxStore] (pgstore), and tx must be on the
// same database and schema. The dispatcher learns of the deliveries when tx
// commits (a NOTIFY queued in tx) or at its next poll.
//
// The rules and errors are Send's, except that SendTx takes no part in
// group commit or in the tenant's rate limit (the application's transaction
// is the batch), and answers E1011 when the tenant does not exist. An error
// that is a *kapsel.Error with a code of the E1xxx range was decided before
// anything was written in tx, which stays usable; after any other error,
// roll tx back.
func (s *Service) SendTx(ctx context.Context, tx pgx.Tx, tenant kapsel.TenantID, in Send) (*SendResult, error) {
	ts, ok := kapsel.StoreAs[TxStore](s.store)
	if !ok {
		return nil, kapsel.NewError(kapsel.CodeInternal, "SendTx needs a store that inserts in the caller's transaction (pgstore)")
	}
	r, err := row(tenant, &in)
	if err != nil {
		return nil, err
	}
	if _, err := s.GetTenant(ctx, tenant); err != nil {
		return nil, err
	}
	// The store refuses an unknown endpoint too, without writing the row;
	// checked here first, so that the answer is decided before tx is used.
	for _, id := range r.EndpointIDs {
		if _, err := s.GetEndpoint(ctx, tenant, id); err != nil {
			return nil, err
		}
	}
	if err := ingest.CheckSend(r, s.maxBody); err != nil {
		return nil, err
	}
	res, err := ts.EventInsertManyTx(ctx, tx, &kapsel.EventInsertManyParams{
		Events: []*kapsel.EventInsertParams{r}, IdempotencyWindow: s.cfg.Ingest.IdempotencyWindow, Now: s.now(),
	})
	if err != nil {
		return nil, err
	}
	switch err := res[0].Err; {
	case errors.Is(err, kapsel.ErrNotFound):
		// Refused before the row was written: tx stays usable.
		return nil, sendNotFound(err, &in)
	case err != nil:
		return nil, &kapsel.Error{Code: kapsel.CodeIdempotencyReused, Detail: "idempotency key reused with another body", Err: err}
	}
	return sendResult(res[0].Event, res[0].Duplicate), nil
}

// sendRequestLimit is the largest POST /v1/events request: a body of the
// ingest limit in base64, and room for the JSON around it.
func (s *Service) sendRequestLimit() int64 {
	return max(s.cfg.MaxRequestBytes, (s.maxBody+2)/3*4+64<<10)
}
