package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// target is a source that accepts events, with its tenant.
type target struct {
	source *kapsel.Source
	tenant *kapsel.Tenant
}

// loadSource reads the source and its tenant from the store: an error
// wrapping kapsel.ErrNotFound when either is unknown or deleted.
func loadSource(store kapsel.IngestStore) func(context.Context, kapsel.SourceID) (*target, error) {
	return func(ctx context.Context, id kapsel.SourceID) (*target, error) {
		src, err := store.SourceGet(ctx, &kapsel.SourceGetParams{ID: id})
		if err != nil {
			return nil, fmt.Errorf("getting source %s: %w", id, err)
		}
		t, err := store.TenantGet(ctx, &kapsel.TenantGetParams{ID: src.TenantID})
		if err != nil {
			return nil, fmt.Errorf("getting tenant %s of source %s: %w", src.TenantID, id, err)
		}
		return &target{source: src, tenant: t}, nil
	}
}

// loadTenant reads a tenant from the store (for sends).
func loadTenant(store kapsel.IngestStore) func(context.Context, kapsel.TenantID) (*kapsel.Tenant, error) {
	return func(ctx context.Context, id kapsel.TenantID) (*kapsel.Tenant, error) {
		t, err := store.TenantGet(ctx, &kapsel.TenantGetParams{ID: id})
		if err != nil {
			return nil, fmt.Errorf("getting tenant %s: %w", id, err)
		}
		return t, nil
	}
}

// cache remembers what load returned — sources with their tenants, or
// tenants — and unknown ids for a short TTL, so that ingest does not cost
// two store reads per request. Concurrent misses for one key share one
// lookup. Storage errors are never cached.
type cache[K comparable, V any] struct {
	load  func(context.Context, K) (V, error)
	clock kapsel.Clock
	ttl   time.Duration // <= 0: no caching
	max   int

	mu      sync.Mutex
	entries map[K]*cacheEntry[V]
}

func newCache[K comparable, V any](load func(context.Context, K) (V, error), clock kapsel.Clock, ttl time.Duration, max int) *cache[K, V] {
	return &cache[K, V]{load: load, clock: clock, ttl: ttl, max: max, entries: map[K]*cacheEntry[V]{}}
}

type cacheEntry[V any] struct {
	ready   chan struct{} // closed once the lookup finished
	val     V
	err     error // ErrNotFound, or a storage error (then not kept)
	expires time.Time
}

// get returns the value for key; an error wrapping kapsel.ErrNotFound when
// it is unknown or deleted; any other error is a storage failure.
func (c *cache[K, V]) get(ctx context.Context, key K) (V, error) {
	if c.ttl <= 0 {
		return c.load(ctx, key)
	}
	now := c.clock.Now()
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok {
		select {
		case <-e.ready:
			if now.Before(e.expires) {
				c.mu.Unlock()
				return e.val, e.err
			}
			ok = false // expired: look it up again
		default: // a lookup is under way: share it
		}
	}
	if !ok {
		if len(c.entries) >= c.max {
			c.evictLocked(now)
		}
		e = &cacheEntry[V]{ready: make(chan struct{})}
		c.entries[key] = e
		c.mu.Unlock()
		c.fill(ctx, key, e)
		return e.val, e.err
	}
	c.mu.Unlock()
	select {
	case <-e.ready:
		return e.val, e.err
	case <-ctx.Done():
		var zero V
		return zero, fmt.Errorf("looking up %v: %w: %w", key, kapsel.ErrUnavailable, ctx.Err())
	}
}

// forget drops what is cached for key, so the next get looks it up again.
// A lookup under way is left to the requests already waiting for it; its
// result is not kept for later ones.
func (c *cache[K, V]) forget(key K) {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}

// fill runs the lookup for e, publishes the result and forgets it again when
// it was a storage error.
func (c *cache[K, V]) fill(ctx context.Context, key K, e *cacheEntry[V]) {
	// The lookup serves every waiter: one caller's cancellation must not fail
	// the others.
	e.val, e.err = c.load(context.WithoutCancel(ctx), key)
	e.expires = c.clock.Now().Add(c.ttl)
	close(e.ready)
	if e.err != nil && !errors.Is(e.err, kapsel.ErrNotFound) {
		c.mu.Lock()
		if c.entries[key] == e {
			delete(c.entries, key)
		}
		c.mu.Unlock()
	}
}

// evictLocked makes room: expired entries go first, then arbitrary ones
// until a quarter of the cache is free. c.mu is held.
func (c *cache[K, V]) evictLocked(now time.Time) {
	for key, e := range c.entries {
		select {
		case <-e.ready:
			if !now.Before(e.expires) {
				delete(c.entries, key)
			}
		default:
		}
	}
	for key := range c.entries {
		if len(c.entries) <= c.max*3/4 {
			break
		}
		delete(c.entries, key)
	}
}

// parseSourceID reads the source id of an ingest URL: a source id, or the id
// of a 0.1 endpoint, which names the source the 0.1 → 0.2 upgrade made of
// it ([kapsel.LegacySourceID]); an error wrapping kapsel.ErrInvalid for
// anything else.
func parseSourceID(raw string) (kapsel.SourceID, error) {
	if strings.HasPrefix(raw, kapsel.EndpointIDPrefix) {
		ep, err := kapsel.ParseEndpointID(raw)
		if err != nil {
			return "", err
		}
		return kapsel.LegacySourceID(ep), nil
	}
	return kapsel.ParseSourceID(raw)
}
