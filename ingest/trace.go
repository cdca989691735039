package ingest

import (
	"context"
	"net/http"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Tracing. With Hooks.StartIngest and Hooks.EndIngest set, each ingest and
// send is followed from its start to its answer: StartIngest gets the
// inbound trace context and may give the one to store with the event
// instead (its own span's); the ingest notes when it passed its steps
// (verified, queued for group commit, its commit began) and EndIngest gets
// them with the outcome. Without those hooks none of this runs: no
// allocation, no clock read, no context value — the event keeps the trace
// context it arrived with (docs/operations.md, Tracing).

// span is one traced ingest's state, kept in its context.
type span struct {
	store                        kapsel.TraceContext // stored with the event
	verified, queued, committing time.Time
}

type spanKey struct{}

// tracing reports whether ingests are traced.
func (in *Ingester) tracing() bool {
	return in.cfg.Hooks.StartIngest != nil && in.cfg.Hooks.EndIngest != nil
}

// startSpan calls StartIngest when ingests are traced; the span is nil
// otherwise.
func (in *Ingester) startSpan(ctx context.Context, start kapsel.IngestStart) (context.Context, *span) {
	if !in.tracing() {
		return ctx, nil
	}
	sp := &span{store: start.Trace}
	ctx, tc := in.cfg.Hooks.StartIngest(ctx, start)
	if !tc.IsZero() {
		sp.store = tc
	}
	return context.WithValue(ctx, spanKey{}, sp), sp
}

// spanOf returns the span of a traced ingest's context, nil when untraced.
func (in *Ingester) spanOf(ctx context.Context) *span {
	if !in.tracing() {
		return nil
	}
	sp, _ := ctx.Value(spanKey{}).(*span)
	return sp
}

// rowTrace is the trace context an ingested event is stored with: the
// span's when traced, else the request's own.
func rowTrace(sp *span, h http.Header) kapsel.TraceContext {
	if sp != nil {
		return sp.store
	}
	return kapsel.TraceContextFromHeader(h)
}

// endSpan calls EndIngest with the steps' times.
func (in *Ingester) endSpan(ctx context.Context, sp *span, info *kapsel.IngestInfo) {
	if sp == nil {
		return
	}
	info.Verified, info.Queued, info.Committing = sp.verified, sp.queued, sp.committing
	in.cfg.Hooks.EndIngest(ctx, *info)
}
