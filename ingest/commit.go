package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// outcome is what one row's commit led to: a result, or an error that is
// already a *kapsel.Error ready to answer.
type outcome struct {
	res kapsel.EventInsertResult
	err error
	// committing is when the commit began; set only when ingests are
	// traced (trace.go).
	committing time.Time
}

// commit inserts rows with one EventInsertMany call and returns one outcome
// per row, in order. When the whole call fails for a reason that may be one
// row's fault (not ErrUnavailable, not a timeout), each row is retried on its
// own, so that one bad row cannot take its neighbours down. Each caller is
// answered only from a committed result. The waker is woken once if any new
// event (and so, maybe, new deliveries) was committed.
func (in *Ingester) commit(ctx context.Context, rows []*kapsel.EventInsertParams) []outcome {
	var began time.Time
	if in.tracing() {
		began = time.Now()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.CommitTimeout)
	defer cancel()
	out := make([]outcome, len(rows))
	results, err := in.insert(ctx, rows)
	switch {
	case err == nil:
		for i := range rows {
			out[i] = in.rowOutcome(results[i], rows[i])
		}
	case len(rows) > 1 && !wholeBatchFailure(err):
		in.cfg.Logger.Warn("ingest batch failed; retrying its rows one by one",
			slog.Int("rows", len(rows)), slog.String("error", err.Error()))
		for i, row := range rows {
			res, err := in.insert(ctx, []*kapsel.EventInsertParams{row})
			if err != nil {
				out[i] = outcome{err: in.storeError(err, row)}
				continue
			}
			out[i] = in.rowOutcome(res[0], row)
		}
	default:
		for i, row := range rows {
			out[i] = outcome{err: in.storeError(err, row)}
		}
	}
	for _, o := range out {
		if o.err == nil && !o.res.Duplicate {
			if in.cfg.Waker != nil {
				in.cfg.Waker.Wake()
			}
			break
		}
	}
	if !began.IsZero() {
		for i := range out {
			out[i].committing = began
		}
	}
	return out
}

// insert calls the store and checks the shape of its answer.
func (in *Ingester) insert(ctx context.Context, rows []*kapsel.EventInsertParams) ([]kapsel.EventInsertResult, error) {
	results, err := in.store.EventInsertMany(ctx, &kapsel.EventInsertManyParams{
		Events:            rows,
		IdempotencyWindow: in.cfg.IdempotencyWindow,
		Now:               in.cfg.Clock.Now(),
	})
	if err != nil {
		return nil, err
	}
	if len(results) != len(rows) {
		return nil, fmt.Errorf("%w: store returned %d results for %d events", kapsel.ErrUnavailable, len(results), len(rows))
	}
	for _, r := range results {
		if r.Err == nil && r.Event == nil {
			return nil, fmt.Errorf("%w: store returned a result without event", kapsel.ErrUnavailable)
		}
	}
	return results, nil
}

// wholeBatchFailure reports whether err concerns the storage as a whole
// (unreachable, overloaded, timed out), so retrying rows one by one would
// only add load.
func wholeBatchFailure(err error) bool {
	return errors.Is(err, kapsel.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// rowOutcome maps one row's result to the answer for its caller: 422 E1005
// for a key reused with another body; 404 E1003 for an ingest whose
// source's tenant is gone (deleted since the source was cached); 404 E1011
// for a send naming an endpoint that is not its tenant's (the store wrote
// nothing of that row); else 503 E3001.
func (in *Ingester) rowOutcome(r kapsel.EventInsertResult, row *kapsel.EventInsertParams) outcome {
	if r.Err != nil {
		switch {
		case errors.Is(r.Err, kapsel.ErrIdempotencyConflict):
			return outcome{err: &kapsel.Error{Code: kapsel.CodeIdempotencyReused,
				Detail: "idempotency key was already used with a different body", Err: r.Err}}
		case errors.Is(r.Err, kapsel.ErrNotFound) && row.SourceID != "":
			return outcome{err: &kapsel.Error{Code: kapsel.CodeUnknownSource,
				Detail: fmt.Sprintf("source %s does not exist", row.SourceID), Err: r.Err}}
		case errors.Is(r.Err, kapsel.ErrNotFound):
			return outcome{err: &kapsel.Error{Code: kapsel.CodeNotFound,
				Detail: "an endpoint the event names does not exist", Err: r.Err}}
		}
		return outcome{err: in.unavailable("storage failed; retry later", r.Err)}
	}
	return outcome{res: r}
}

// storeError turns a failed insert into the caller's answer: 404 when what
// the row names disappeared in the meantime (E1003 for an ingest's source,
// E1011 for a send's tenant); 400 E1009 when the store refused the row as
// invalid (kapsel.ErrInvalid: sending it again would never succeed); else
// 503 E3001 with Retry-After (never a 2xx: nothing of this row was
// committed).
func (in *Ingester) storeError(err error, row *kapsel.EventInsertParams) error {
	switch {
	case errors.Is(err, kapsel.ErrNotFound) && row.SourceID != "":
		return &kapsel.Error{Code: kapsel.CodeUnknownSource, Detail: fmt.Sprintf("source %s does not exist", row.SourceID), Err: err}
	case errors.Is(err, kapsel.ErrNotFound):
		return &kapsel.Error{Code: kapsel.CodeNotFound, Detail: "the tenant or an endpoint the event names does not exist", Err: err}
	case errors.Is(err, kapsel.ErrInvalid):
		in.cfg.Logger.Warn("ingest row refused by the store", rowAttr(row), slog.String("error", err.Error()))
		return &kapsel.Error{Code: kapsel.CodeMalformedRequest, Detail: "the request holds a value Kapsel cannot store", Err: err}
	}
	in.cfg.Logger.Error("ingest commit failed", rowAttr(row), slog.String("error", err.Error()))
	return in.unavailable("storage unavailable; retry later", err)
}

// rowAttr names a row in a log line: its source, or its tenant for a send.
func rowAttr(row *kapsel.EventInsertParams) slog.Attr {
	if row.SourceID != "" {
		return slog.String("source_id", string(row.SourceID))
	}
	return slog.String("tenant_id", string(row.TenantID))
}

// unavailable returns a 503 E3001 answer carrying the configured Retry-After.
func (in *Ingester) unavailable(detail string, err error) error {
	return &kapsel.Error{Code: kapsel.CodeStorageUnavailable, Detail: detail,
		RetryAfterSeconds: retryAfterSeconds(in.cfg.RetryAfter), Err: err}
}

// shuttingDown is the 503 E3003 answer before Start and once the ingester
// stops, carrying the configured Retry-After.
func (in *Ingester) shuttingDown() error {
	return &kapsel.Error{Code: kapsel.CodeShuttingDown, Detail: "ingester is shutting down; retry later",
		RetryAfterSeconds: retryAfterSeconds(in.cfg.RetryAfter), Err: kapsel.ErrShuttingDown}
}
