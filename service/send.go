package service

import (
	"context"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/ingest"
)

// Send is an event the application sends itself, to one of its endpoints.
type Send struct {
	// EndpointID is the endpoint that delivers the event; it must be the
	// tenant's.
	EndpointID kapsel.EndpointID
	// Type is the event type, such as "invoice.paid": at most 255 bytes of
	// printable text (kapsel.ValidEventType). Events are listed by it.
	// Defaults to none.
	Type string
	// Channels are the channels the event is sent on: at most
	// kapsel.MaxEventChannels, each 1–255 bytes of printable ASCII without
	// space or "*", none twice (kapsel.CheckEventChannels, E1009).
	// Endpoints subscribe to channels; until fan-out lands, the event still
	// goes to EndpointID whatever its channels. Defaults to none.
	Channels []string
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
	// printable ASCII characters. Defaults to none.
	IdempotencyKey string
}

// SendResult is what a send stored.
type SendResult struct {
	Event *kapsel.Event
	// Duplicate is true when IdempotencyKey was already used, with the same
	// body, within its window; Event is then the first event.
	Duplicate bool
}

// row builds the stored event of a send; ingest.CheckSend checks it.
func row(tenant kapsel.TenantID, in *Send) *kapsel.EventInsertParams {
	r := &kapsel.EventInsertParams{
		TenantID: tenant, EndpointID: in.EndpointID, Type: in.Type, Channels: in.Channels, Body: in.Body, ContentType: in.ContentType,
		Headers: ingest.ForwardedHeaders(in.Headers), IdempotencyKey: in.IdempotencyKey,
	}
	if r.ContentType == "" {
		r.ContentType = "application/json"
	}
	return r
}

// Send stores an event and returns once it is committed; the dispatcher
// then delivers it like an ingested webhook (in-process wake-up, within
// milliseconds). It is group-committed with ingests and follows their
// rules. Errors: E1011 when the endpoint is not the tenant's; E1002, E1004,
// E1009 for a body, idempotency key or content type ingest would refuse;
// E1009 for a type that is not printable text of at most 255 bytes, or for
// channels kapsel.CheckEventChannels refuses;
// E1005 for an idempotency key reused with another body; E1006 over the
// tenant's rate; E3001 or E3003 when nothing could be stored (retry).
func (s *Service) Send(ctx context.Context, tenant kapsel.TenantID, in Send) (*SendResult, error) {
	res, err := s.ingester.Send(ctx, row(tenant, &in))
	if err != nil {
		return nil, err
	}
	return &SendResult{Event: res.Event, Duplicate: res.Duplicate}, nil
}

// TxStore is the store capability SendTx needs: inserting events inside a
// transaction the application owns. store/pgstore's Store has it.
type TxStore interface {
	EventInsertManyTx(ctx context.Context, tx pgx.Tx, params *kapsel.EventInsertManyParams) ([]kapsel.EventInsertResult, error)
}

// SendTx stores an event inside the application's own transaction tx (the
// transactional outbox): it is committed with the application's business
// write, or rolled back with it, never one without the other. The service's
// store must be a [TxStore] (pgstore), and tx must be on the same database
// and schema. The dispatcher learns of the event when tx commits (a NOTIFY
// queued in tx) or at its next poll.
//
// The rules and errors are Send's, except that SendTx takes no part in
// group commit or in the tenant's rate limit (the application's transaction
// is the batch). An error that is a *kapsel.Error with a code of the E1xxx
// range was decided before anything was written in tx, which stays usable;
// after any other error, roll tx back.
func (s *Service) SendTx(ctx context.Context, tx pgx.Tx, tenant kapsel.TenantID, in Send) (*SendResult, error) {
	ts, ok := kapsel.StoreAs[TxStore](s.store)
	if !ok {
		return nil, kapsel.NewError(kapsel.CodeInternal, "SendTx needs a store that inserts in the caller's transaction (pgstore)")
	}
	if _, err := s.GetEndpoint(ctx, tenant, in.EndpointID); err != nil {
		return nil, err
	}
	r := row(tenant, &in)
	if err := ingest.CheckSend(r, s.maxBody); err != nil {
		return nil, err
	}
	res, err := ts.EventInsertManyTx(ctx, tx, &kapsel.EventInsertManyParams{
		Events: []*kapsel.EventInsertParams{r}, IdempotencyWindow: s.cfg.Ingest.IdempotencyWindow, Now: s.now(),
	})
	if err != nil {
		return nil, notFoundErr(err, "endpoint", string(in.EndpointID))
	}
	if err := res[0].Err; err != nil {
		return nil, &kapsel.Error{Code: kapsel.CodeIdempotencyReused, Detail: "idempotency key reused with another body", Err: err}
	}
	return &SendResult{Event: res[0].Event, Duplicate: res[0].Duplicate}, nil
}
