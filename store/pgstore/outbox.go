package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

// EventInsertTxParams are the arguments of EventInsertTx.
type EventInsertTxParams struct {
	// Event is the event to create, with its TenantID; it fans out as
	// EventInsertMany's do (to EndpointIDs, or to the tenant's subscribed
	// endpoints).
	Event *kapsel.EventInsertParams
	// IdempotencyWindow is how long the event's idempotency key stays taken.
	// Defaults to kapsel.DefaultIdempotencyWindow (24 h).
	IdempotencyWindow time.Duration
	// Now is the event's creation time. Defaults to the wall clock.
	Now time.Time
}

// EventInsertTx creates an event and its deliveries inside the
// application's own transaction (the transactional outbox): they are
// committed with the application's business write, or rolled back with it,
// never one without the other. The dispatcher wakes up when tx commits
// (the NOTIFY is queued in tx and delivered only at commit) or at its next
// poll. The fan-out takes the tenant's lock, shared, in tx (see
// tenant_lock.go), so an EndpointDelete or TenantDelete of the tenant waits
// for tx to end; an EndpointUpdate does not (an update that commits
// meanwhile is ordered after tx's event, which fanned out by the
// subscription it read).
//
//	tx, _ := pool.Begin(ctx)
//	defer tx.Rollback(ctx)
//	orderID, _ := insertOrder(ctx, tx, order)
//	res, err := store.EventInsertTx(ctx, tx, &pgstore.EventInsertTxParams{
//		Event: &kapsel.EventInsertParams{TenantID: tenant, Type: "order.placed", Body: body, BodyHash: sum[:],
//			ContentType: "application/json", IdempotencyKey: "order-" + orderID},
//	})
//	…
//	tx.Commit(ctx)
//
// Applications go through the front door, service.SendTx, which validates
// the send first. tx must be on the database and search_path of Kapsel's
// schema. Errors are as EventInsertMany's. ErrInvalid and a result whose
// Err is set (an endpoint named that is unknown, deleted or another
// tenant's; an idempotency key reused with another body) wrote nothing and
// leave tx usable: ErrInvalid (an idempotency key without a
// BodyHash, see kapsel.EventInsertParams.Storable) is decided before any
// statement runs in tx, and text Postgres could not store (invalid UTF-8,
// NUL) is made safe by kapsel.SafeText rather than sent, so it cannot abort
// tx either. After any other error tx is aborted: roll it back, and on
// kapsel.ErrUnavailable — which includes serialization failures under
// REPEATABLE READ or SERIALIZABLE — retry it whole.
func (s *Store) EventInsertTx(ctx context.Context, tx pgx.Tx, params *EventInsertTxParams) (*kapsel.EventInsertResult, error) {
	res, err := s.EventInsertManyTx(ctx, tx, &kapsel.EventInsertManyParams{
		Events:            []*kapsel.EventInsertParams{params.Event},
		IdempotencyWindow: params.IdempotencyWindow,
		Now:               params.Now,
	})
	if err != nil {
		return nil, err
	}
	return &res[0], nil
}

// EventInsertManyTx is EventInsertMany inside the application's transaction
// tx: see EventInsertTx. A zero Now means the wall clock.
func (s *Store) EventInsertManyTx(ctx context.Context, tx pgx.Tx, params *kapsel.EventInsertManyParams) ([]kapsel.EventInsertResult, error) {
	if tx == nil {
		return nil, fmt.Errorf("inserting events in a transaction: %w: nil tx", kapsel.ErrInvalid)
	}
	p := *params
	if p.Now.IsZero() {
		p.Now = time.Now()
	}
	b, err := newInsertBatch(&p)
	if err != nil {
		return nil, fmt.Errorf("inserting events in a transaction: %w", err)
	}
	if len(b.in) == 0 {
		return []kapsel.EventInsertResult{}, nil
	}
	res, err := b.run(ctx, tx, false)
	if err != nil {
		return nil, fmt.Errorf("inserting events in a transaction: %w", err)
	}
	return res, nil
}
