package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/ingest/verify"
	"github.com/kapsel-dev/kapsel/internal/lifecycle"
	"github.com/kapsel-dev/kapsel/internal/reqbody"
)

var _ kapsel.Ingester = (*Ingester)(nil)

// Ingester is Kapsel's default [kapsel.Ingester]: it verifies webhooks
// arriving by a source, group-commits them — each event with its deliveries,
// fanned out by the store — and answers each only after its own row is
// committed. Its HTTP side is [Ingester.Handler].
//
// Call Start before ingesting and Stop when done; before Start and after Stop
// every ingest answers 503 E3003.
type Ingester struct {
	store    kapsel.IngestStore
	cfg      Config
	sources  *cache[kapsel.SourceID, *target]
	tenants  *cache[kapsel.TenantID, *kapsel.Tenant] // for sends
	limiters *rateLimiters
	batcher  *batcher // nil with DisableGroupCommit
	// bodies bounds the body bytes allocated on the word of Content-Length.
	bodies *reqbody.Budget

	// life is new, running or stopped; it admits the requests under way,
	// which Stop waits for.
	life lifecycle.Runner
}

// New returns an ingester storing into store. cfg may be nil; an invalid
// field is reported as an error wrapping kapsel.ErrInvalid.
func New(store kapsel.IngestStore, cfg *Config) (*Ingester, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: ingest.New needs a store", kapsel.ErrInvalid)
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	in := &Ingester{
		store:    store,
		cfg:      c,
		sources:  newCache(loadSource(store), c.Clock, c.SourceCacheTTL, c.SourceCacheSize),
		tenants:  newCache(loadTenant(store), c.Clock, c.SourceCacheTTL, c.SourceCacheSize),
		limiters: &rateLimiters{max: c.RateLimiters, m: map[kapsel.TenantID]*rate.Limiter{}},
		bodies:   reqbody.ForLimit(c.MaxBodyBytes),
	}
	if !c.DisableGroupCommit {
		in.batcher = newBatcher(&in.cfg, in.commit, func() error {
			return in.unavailable("ingest queue is full; retry later", kapsel.ErrUnavailable)
		}, in.shuttingDown)
	}
	return in, nil
}

// Start starts the group-commit loop. It returns an error when the ingester
// was already started or stopped.
func (in *Ingester) Start(ctx context.Context) error {
	err := in.life.Start(func() error {
		if in.batcher != nil {
			go in.batcher.run()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ingest: Start called twice or after Stop: %w", err)
	}
	return nil
}

// Stop makes new ingests answer 503 E3003, waits for the requests under way
// (each still gets its own commit's answer), flushes the queue and stops the
// group-commit loop, or gives up waiting when ctx ends. Stopping twice, or
// before Start, is safe; a second Stop waits for the first one's result.
func (in *Ingester) Stop(ctx context.Context) error {
	return in.life.Stop(ctx, func(ctx context.Context) error {
		err := in.life.Drain(ctx)
		if in.batcher != nil {
			// Even when ctx has ended, close the queue: what is queued is
			// still flushed in the background.
			if cerr := in.batcher.close(ctx); err == nil {
				err = cerr
			}
		}
		return err
	})
}

// SourceChanged tells the ingester that source id changed in the store
// (deleted, paused, resumed, or given another verifier or rules): its
// cached copy is dropped, so every ingest that reaches the ingester after
// SourceChanged returned reads the source as it is now — a deleted source
// answers 404 E1003, a paused one 503 E3001. Requests already past the
// lookup are answered with the source as they found it. The front door
// (package service) calls it before it answers a change of a source; other
// processes see the change within Config.SourceCacheTTL (docs/ingest.md).
func (in *Ingester) SourceChanged(id kapsel.SourceID) {
	in.sources.forget(id)
}

// admit registers a request unless the ingester is not running.
func (in *Ingester) admit() (release func(), err error) {
	release, ok := in.life.Admit()
	if !ok {
		return nil, in.shuttingDown()
	}
	return release, nil
}

// Ingest verifies and stores one webhook (see [kapsel.Ingester]). Errors are
// *kapsel.Error values with the codes of docs/ingest.md.
func (in *Ingester) Ingest(ctx context.Context, req *kapsel.IngestRequest) (*kapsel.IngestResult, error) {
	start := time.Now()
	info := kapsel.IngestInfo{}
	ctx, sp := in.startSpan(ctx, kapsel.IngestStart{SourceID: kapsel.SourceID(req.SourceID), Trace: kapsel.TraceContextFromHeader(req.Header)})
	res, err := in.ingest(ctx, req, &info)
	in.report(ctx, sp, &info, res, err, start)
	return res, err
}

func (in *Ingester) ingest(ctx context.Context, req *kapsel.IngestRequest, info *kapsel.IngestInfo) (*kapsel.IngestResult, error) {
	release, err := in.admit()
	if err != nil {
		return nil, err
	}
	defer release()
	tgt, err := in.resolve(ctx, req.SourceID, info)
	if err != nil {
		return nil, err
	}
	if int64(len(req.Body)) > in.cfg.MaxBodyBytes {
		return nil, reqbody.TooLarge(in.cfg.MaxBodyBytes)
	}
	return in.accept(ctx, tgt, req.Header, req.Body)
}

// resolve finds the source an ingest is for, by its id or by the id of
// the 0.1 endpoint it was made from: 404 E1003 when the id is malformed,
// unknown or deleted; 503 E3001 when the store fails, and with the
// configured Retry-After when the source is paused.
func (in *Ingester) resolve(ctx context.Context, rawID string, info *kapsel.IngestInfo) (*target, error) {
	id, err := parseSourceID(rawID)
	if err != nil {
		return nil, &kapsel.Error{Code: kapsel.CodeUnknownSource, Detail: "source id is malformed", Err: err}
	}
	info.SourceID = id
	tgt, err := in.sources.get(ctx, id)
	if err != nil {
		if errors.Is(err, kapsel.ErrNotFound) {
			return nil, &kapsel.Error{Code: kapsel.CodeUnknownSource, Detail: fmt.Sprintf("source %s does not exist", rawID), Err: err}
		}
		in.cfg.Logger.Error("ingest source lookup failed", slog.String("source_id", string(id)), slog.String("error", err.Error()))
		return nil, in.unavailable("storage unavailable; retry later", err)
	}
	info.TenantID = tgt.tenant.ID
	if tgt.source.State == kapsel.SourcePaused {
		return nil, in.unavailable("source is paused; retry later", nil)
	}
	return tgt, nil
}

// accept checks the signature, answers a verified Slack url_verification
// with its challenge (storing nothing), checks the idempotency key and the
// tenant's rate, then commits the event and waits for that commit.
func (in *Ingester) accept(ctx context.Context, tgt *target, header http.Header, body []byte) (*kapsel.IngestResult, error) {
	src := tgt.source
	scheme := src.Verifier.Scheme
	now := in.cfg.Clock.Now()
	v, ok := in.cfg.Verifiers.Lookup(scheme)
	if !ok {
		in.cfg.Logger.Error("ingest source has an unknown verifier scheme",
			slog.String("source_id", string(src.ID)), slog.String("scheme", scheme))
		return nil, &kapsel.Error{Code: kapsel.CodeInternal, Detail: "source verifier is misconfigured"}
	}
	if err := v.Verify(&verify.Params{Header: header, Body: body, Secrets: src.Verifier.Secrets,
		SignatureHeader: src.Verifier.Header, Now: now}); err != nil {
		in.cfg.Logger.Debug("ingest signature rejected", slog.String("source_id", string(src.ID)), slog.String("reason", err.Error()))
		return nil, &kapsel.Error{Code: kapsel.CodeSignature, Detail: err.Error(), Err: err}
	}
	sp := in.spanOf(ctx)
	if sp != nil {
		sp.verified = time.Now()
	}
	fields := newJSONBody(body) // parsed only if a rule reads it
	if c, ok := slackChallenge(scheme, fields); ok {
		return &kapsel.IngestResult{Challenge: c}, nil
	}
	key, err := requestIdempotencyKey(scheme, src.IdempotencyKeyFrom, header, fields)
	if err != nil {
		return nil, &kapsel.Error{Code: kapsel.CodeBadIdempotencyKey, Detail: err.Error(), Err: err}
	}
	if err := storableContentType(header); err != nil {
		return nil, err
	}
	if err := in.allowRate(tgt.tenant, now); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	row := &kapsel.EventInsertParams{
		TenantID:       src.TenantID,
		SourceID:       src.ID,
		Type:           sourceEventType(src, header, fields),
		Body:           body,
		ContentType:    header.Get("Content-Type"),
		Headers:        ForwardedHeaders(header),
		IdempotencyKey: key,
		BodyHash:       sum[:],
		Trace:          rowTrace(sp, header),
	}
	return in.submit(ctx, row)
}

// allowRate answers 429 E1006, with the wait as Retry-After, when the
// tenant is over its ingest rate.
func (in *Ingester) allowRate(t *kapsel.Tenant, now time.Time) error {
	if ok, wait := in.limiters.allow(t, now); !ok {
		return &kapsel.Error{Code: kapsel.CodeRateLimited, Detail: "tenant is over its ingest rate",
			RetryAfterSeconds: retryAfterSeconds(wait)}
	}
	return nil
}

// submit stores one checked row — group-committed, or in a commit of its
// own with DisableGroupCommit — and returns once that commit is done.
func (in *Ingester) submit(ctx context.Context, row *kapsel.EventInsertParams) (*kapsel.IngestResult, error) {
	var o outcome
	if sp := in.spanOf(ctx); sp != nil {
		sp.queued = time.Now()
		defer func() { sp.committing = o.committing }()
	}
	if in.batcher != nil {
		o = in.batcher.submit(ctx, row)
	} else {
		o = in.commit(ctx, []*kapsel.EventInsertParams{row})[0]
	}
	if o.err != nil {
		return nil, o.err
	}
	return &kapsel.IngestResult{Event: o.res.Event, Duplicate: o.res.Duplicate}, nil
}

// report calls the OnIngest and EndIngest hooks.
func (in *Ingester) report(ctx context.Context, sp *span, info *kapsel.IngestInfo, res *kapsel.IngestResult, err error, start time.Time) {
	if in.cfg.Hooks.OnIngest == nil && sp == nil {
		return
	}
	info.Duration = time.Since(start)
	switch {
	case err != nil:
		info.Code = kapsel.CodeOf(err)
		info.Status = info.Code.Info().Status
	case res.Duplicate:
		info.Status, info.Duplicate = 200, true
	case res.Challenge != "":
		info.Status = 200
	default:
		info.Status = 202
		info.Deliveries = res.Event.Deliveries.Total
	}
	if res != nil && res.Event != nil {
		info.EventID = res.Event.ID
	}
	in.endSpan(ctx, sp, info)
	if in.cfg.Hooks.OnIngest != nil {
		in.cfg.Hooks.OnIngest(*info)
	}
}
