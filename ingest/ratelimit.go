package ingest

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/kapsel-dev/kapsel"
)

// rateLimiters holds one token bucket per tenant (golang.org/x/time/rate),
// sized from Tenant.RateLimit and RateBurst and driven by the injected clock.
// The map is bounded: when full, limiters whose bucket is full again (idle
// tenants: dropping them loses nothing) are dropped first, then arbitrary
// ones, whose tenants then start again with a full burst.
type rateLimiters struct {
	max int

	mu sync.Mutex
	m  map[kapsel.TenantID]*rate.Limiter
}

// allow takes one token from the tenant's bucket at now. When the bucket is
// empty it reports false and how long until a token is available.
func (r *rateLimiters) allow(t *kapsel.Tenant, now time.Time) (bool, time.Duration) {
	if t.RateLimit <= 0 {
		return true, 0
	}
	limit := rate.Limit(t.RateLimit)
	burst := t.RateBurst
	if burst <= 0 {
		burst = max(1, int(math.Ceil(t.RateLimit)))
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	lim, ok := r.m[t.ID]
	if !ok {
		if len(r.m) >= r.max {
			r.evictLocked(now)
		}
		lim = rate.NewLimiter(limit, burst)
		r.m[t.ID] = lim
	}
	if lim.Limit() != limit {
		lim.SetLimitAt(now, limit)
	}
	if lim.Burst() != burst {
		lim.SetBurstAt(now, burst)
	}
	if lim.AllowN(now, 1) {
		return true, 0
	}
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second
	}
	wait := res.DelayFrom(now)
	res.CancelAt(now)
	return false, wait
}

// evictLocked makes room for one more limiter. r.mu is held.
func (r *rateLimiters) evictLocked(now time.Time) {
	for id, lim := range r.m {
		if lim.TokensAt(now) >= float64(lim.Burst()) {
			delete(r.m, id)
		}
	}
	for id := range r.m {
		if len(r.m) < r.max {
			break
		}
		delete(r.m, id)
	}
}

// retryAfterSeconds rounds d up to whole seconds, at least 1, for a
// Retry-After header.
func retryAfterSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	return max(1, s)
}
