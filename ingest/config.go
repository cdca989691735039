package ingest

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/ingest/verify"
)

// Defaults of [Config].
const (
	// DefaultMaxBodyBytes is the largest body accepted: 10 MiB.
	DefaultMaxBodyBytes = 10 << 20
	// DefaultBatchSize is the most events committed in one transaction.
	DefaultBatchSize = 256
	// DefaultBatchBytes is the most body bytes committed in one transaction
	// (a single larger event still goes, alone).
	DefaultBatchBytes = 16 << 20
	// DefaultBatchWait is how long a batch that is not full waits for more
	// events while other commits are in flight.
	DefaultBatchWait = time.Millisecond
	// DefaultMaxFlushes is how many batches may be committing at once.
	DefaultMaxFlushes = 4
	// DefaultQueueSize is how many events may wait for a commit before
	// ingest answers 503.
	DefaultQueueSize = 4096
	// DefaultCommitTimeout bounds one commit.
	DefaultCommitTimeout = 10 * time.Second
	// DefaultSourceCacheTTL is how long a source and its tenant are
	// cached.
	DefaultSourceCacheTTL = time.Second
	// DefaultSourceCacheSize is the most sources cached.
	DefaultSourceCacheSize = 10_000
	// DefaultRateLimiters is the most tenants whose rate limiter is kept.
	DefaultRateLimiters = 10_000
	// DefaultRetryAfter is the Retry-After sent with 503 answers.
	DefaultRetryAfter = time.Second
)

// Config configures an [Ingester]. The zero value works.
type Config struct {
	// MaxBodyBytes is the largest body accepted; larger ones are refused
	// with 413 E1002 as soon as the limit is crossed while reading. Defaults
	// to DefaultMaxBodyBytes (10 MiB).
	MaxBodyBytes int64
	// IdempotencyWindow is how long an idempotency key stays taken. Defaults
	// to kapsel.DefaultIdempotencyWindow (24 h).
	IdempotencyWindow time.Duration
	// Clock gives the time for signature tolerances, idempotency windows,
	// rate limits and the source cache. Defaults to kapsel.SystemClock().
	Clock kapsel.Clock
	// Logger receives errors and rejected signatures; never bodies or
	// secrets. Defaults to slog.Default(), like every Kapsel component.
	Logger *slog.Logger
	// Hooks.OnIngest is called once per request, after the answer. Defaults
	// to no hooks.
	Hooks kapsel.Hooks
	// Waker is woken once per committed batch that created at least one
	// event (and its deliveries), typically the in-process dispatcher. Defaults to none.
	Waker kapsel.Waker
	// Verifiers maps verifier scheme names to verifiers. Defaults to
	// verify.NewRegistry() (every built-in scheme).
	Verifiers *verify.Registry

	// DisableGroupCommit commits every event in its own transaction, for
	// comparison benchmarks. Defaults to false (group commit).
	DisableGroupCommit bool
	// BatchSize is the most events committed in one transaction. Defaults
	// to DefaultBatchSize.
	BatchSize int
	// BatchBytes is the most body bytes committed in one transaction.
	// Defaults to DefaultBatchBytes.
	BatchBytes int64
	// BatchWait is how long a batch that is not full waits for more events
	// when other commits are already in flight; when none is, a batch goes at
	// once. Negative means never wait. Defaults to DefaultBatchWait (1 ms).
	BatchWait time.Duration
	// MaxFlushes is how many batches may commit at once. Defaults to
	// DefaultMaxFlushes.
	MaxFlushes int
	// QueueSize is how many events may wait for a commit; beyond it ingest
	// answers 503 E3001. Defaults to DefaultQueueSize.
	QueueSize int
	// CommitTimeout bounds one commit; a commit that takes longer is
	// answered 503 E3001. Defaults to DefaultCommitTimeout.
	CommitTimeout time.Duration

	// SourceCacheTTL is how long a source, its tenant, or the fact that it
	// does not exist is cached (and a sending tenant): a paused, updated or
	// deleted source (or a changed rate limit) takes up to this long to be
	// seen by ingest, unless the change is reported with
	// Ingester.SourceChanged (the front door does so in its own process).
	// Negative disables the cache. Defaults to DefaultSourceCacheTTL (1 s).
	SourceCacheTTL time.Duration
	// SourceCacheSize is the most sources (and, apart, the most sending
	// tenants) cached. Defaults to DefaultSourceCacheSize.
	SourceCacheSize int
	// RateLimiters is the most tenants whose ingest rate limiter is kept;
	// idle limiters are dropped first. Defaults to DefaultRateLimiters.
	RateLimiters int
	// RetryAfter is the Retry-After sent with 503 answers (storage
	// unavailable, overloaded, shutting down), rounded up to whole seconds.
	// Defaults to DefaultRetryAfter (1 s).
	RetryAfter time.Duration
}

// withDefaults returns a copy of c with every zero field set to its default,
// or an error naming the first invalid field.
func (c *Config) withDefaults() (Config, error) {
	var out Config
	if c != nil {
		out = *c
	}
	for _, f := range []struct {
		name string
		bad  bool
	}{
		{"MaxBodyBytes", out.MaxBodyBytes < 0},
		{"IdempotencyWindow", out.IdempotencyWindow < 0},
		{"BatchSize", out.BatchSize < 0},
		{"BatchBytes", out.BatchBytes < 0},
		{"MaxFlushes", out.MaxFlushes < 0},
		{"QueueSize", out.QueueSize < 0},
		{"CommitTimeout", out.CommitTimeout < 0},
		{"SourceCacheSize", out.SourceCacheSize < 0},
		{"RateLimiters", out.RateLimiters < 0},
		{"RetryAfter", out.RetryAfter < 0},
	} {
		if f.bad {
			return out, fmt.Errorf("%w: ingest.Config.%s must not be negative", kapsel.ErrInvalid, f.name)
		}
	}
	out.MaxBodyBytes = cmp.Or(out.MaxBodyBytes, DefaultMaxBodyBytes)
	out.IdempotencyWindow = cmp.Or(out.IdempotencyWindow, kapsel.DefaultIdempotencyWindow)
	out.BatchSize = cmp.Or(out.BatchSize, DefaultBatchSize)
	out.BatchBytes = cmp.Or(out.BatchBytes, DefaultBatchBytes)
	out.BatchWait = cmp.Or(out.BatchWait, DefaultBatchWait)
	out.MaxFlushes = cmp.Or(out.MaxFlushes, DefaultMaxFlushes)
	out.QueueSize = cmp.Or(out.QueueSize, DefaultQueueSize)
	out.CommitTimeout = cmp.Or(out.CommitTimeout, DefaultCommitTimeout)
	out.SourceCacheTTL = cmp.Or(out.SourceCacheTTL, DefaultSourceCacheTTL)
	out.SourceCacheSize = cmp.Or(out.SourceCacheSize, DefaultSourceCacheSize)
	out.RateLimiters = cmp.Or(out.RateLimiters, DefaultRateLimiters)
	out.RetryAfter = cmp.Or(out.RetryAfter, DefaultRetryAfter)
	if out.Clock == nil {
		out.Clock = kapsel.SystemClock()
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if out.Verifiers == nil {
		out.Verifiers = verify.NewRegistry()
	}
	return out, nil
}
