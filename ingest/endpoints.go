package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// target is an endpoint that accepts events, with its tenant.
type target struct {
	endpoint *kapsel.Endpoint
	tenant   *kapsel.Tenant
}

// endpointCache remembers endpoints, their tenants and unknown ids for a
// short TTL, so that ingest does not cost two store reads per request.
// Concurrent misses for one id share one lookup. Storage errors are never
// cached.
type endpointCache struct {
	store interface {
		kapsel.EndpointGetter
		kapsel.TenantGetter
	}
	clock kapsel.Clock
	ttl   time.Duration // <= 0: no caching
	max   int

	mu      sync.Mutex
	entries map[kapsel.EndpointID]*cacheEntry
}

type cacheEntry struct {
	ready   chan struct{} // closed once the lookup finished
	target  *target
	err     error // ErrNotFound, or a storage error (then not kept)
	expires time.Time
}

// get returns the endpoint and tenant; an error wrapping kapsel.ErrNotFound
// when the endpoint is unknown or deleted (or its tenant is gone); any other
// error is a storage failure.
func (c *endpointCache) get(ctx context.Context, id kapsel.EndpointID) (*target, error) {
	if c.ttl <= 0 {
		return c.load(ctx, id)
	}
	now := c.clock.Now()
	c.mu.Lock()
	e, ok := c.entries[id]
	if ok {
		select {
		case <-e.ready:
			if now.Before(e.expires) {
				c.mu.Unlock()
				return e.target, e.err
			}
			ok = false // expired: look it up again
		default: // a lookup is under way: share it
		}
	}
	if !ok {
		if len(c.entries) >= c.max {
			c.evictLocked(now)
		}
		e = &cacheEntry{ready: make(chan struct{})}
		c.entries[id] = e
		c.mu.Unlock()
		c.fill(ctx, id, e)
		return e.target, e.err
	}
	c.mu.Unlock()
	select {
	case <-e.ready:
		return e.target, e.err
	case <-ctx.Done():
		return nil, fmt.Errorf("looking up endpoint: %w: %w", kapsel.ErrUnavailable, ctx.Err())
	}
}

// fill runs the lookup for e, publishes the result and forgets it again when
// it was a storage error.
func (c *endpointCache) fill(ctx context.Context, id kapsel.EndpointID, e *cacheEntry) {
	// The lookup serves every waiter: one caller's cancellation must not fail
	// the others.
	e.target, e.err = c.load(context.WithoutCancel(ctx), id)
	e.expires = c.clock.Now().Add(c.ttl)
	close(e.ready)
	if e.err != nil && !errors.Is(e.err, kapsel.ErrNotFound) {
		c.mu.Lock()
		if c.entries[id] == e {
			delete(c.entries, id)
		}
		c.mu.Unlock()
	}
}

// evictLocked makes room: expired entries go first, then arbitrary ones
// until a quarter of the cache is free. c.mu is held.
func (c *endpointCache) evictLocked(now time.Time) {
	for id, e := range c.entries {
		select {
		case <-e.ready:
			if !now.Before(e.expires) {
				delete(c.entries, id)
			}
		default:
		}
	}
	for id := range c.entries {
		if len(c.entries) <= c.max*3/4 {
			break
		}
		delete(c.entries, id)
	}
}

// load reads the endpoint and its tenant from the store.
func (c *endpointCache) load(ctx context.Context, id kapsel.EndpointID) (*target, error) {
	ep, err := c.store.EndpointGet(ctx, &kapsel.EndpointGetParams{ID: id})
	if err != nil {
		return nil, fmt.Errorf("getting endpoint %s: %w", id, err)
	}
	t, err := c.store.TenantGet(ctx, &kapsel.TenantGetParams{ID: ep.TenantID})
	if err != nil {
		return nil, fmt.Errorf("getting tenant %s of endpoint %s: %w", ep.TenantID, id, err)
	}
	return &target{endpoint: ep, tenant: t}, nil
}
