package ingest

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"golang.org/x/time/rate"
)

func TestRateLimit(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	slow := e.tenant(0.5, 2) // one event per 2 s, bursts of 2
	src := e.source(slow, kapsel.VerifierConfig{Scheme: kapsel.SchemeGitHub, Secrets: []string{"s"}})
	other := e.source(nil, kapsel.VerifierConfig{})
	sig := []string{"X-Hub-Signature-256", "sha256=" + hmacHex("s", "b")}

	// Forged requests do not spend the tenant's quota.
	for range 5 {
		refused(t, e.post(src.ID, "b", "X-Hub-Signature-256", "sha256=00"), 401, kapsel.CodeSignature)
	}
	accepted(t, e.post(src.ID, "b", sig...), 202)
	accepted(t, e.post(src.ID, "b", sig...), 202)
	w := e.post(src.ID, "b", sig...)
	refused(t, w, 429, kapsel.CodeRateLimited)
	if got := w.Header().Get("Retry-After"); got != "2" {
		t.Fatalf("Retry-After %q, want 2", got)
	}
	// Another tenant is not affected.
	accepted(t, e.post(other.ID, "b"), 202)

	e.clock.Advance(time.Second)
	w = e.post(src.ID, "b", sig...)
	refused(t, w, 429, kapsel.CodeRateLimited)
	if got := w.Header().Get("Retry-After"); got != "1" {
		t.Fatalf("Retry-After %q after 1 s, want 1", got)
	}
	e.clock.Advance(time.Second)
	accepted(t, e.post(src.ID, "b", sig...), 202)
	if n := len(e.events(src.ID)); n != 3 {
		t.Fatalf("%d events, want 3", n)
	}
}

func TestRateLimiters(t *testing.T) {
	t.Parallel()
	clock := kapseltest.NewClock(time.Time{})
	r := &rateLimiters{max: 2, m: map[kapsel.TenantID]*rate.Limiter{}}
	tenant := func(rate float64, burst int) *kapsel.Tenant {
		return &kapsel.Tenant{ID: kapsel.NewTenantID(), RateLimit: rate, RateBurst: burst}
	}
	allowed := func(tn *kapsel.Tenant, n int) int {
		got := 0
		for range n {
			if ok, _ := r.allow(tn, clock.Now()); ok {
				got++
			}
		}
		return got
	}
	if got := allowed(tenant(0, 0), 1000); got != 1000 {
		t.Fatalf("unlimited tenant allowed %d of 1000", got)
	}
	// Burst 0 means the rate, rounded up.
	if got := allowed(tenant(2.5, 0), 10); got != 3 {
		t.Fatalf("rate 2.5 burst 0 allowed %d at once, want 3", got)
	}
	if got := allowed(tenant(0.1, 0), 10); got != 1 {
		t.Fatalf("rate 0.1 burst 0 allowed %d at once, want 1", got)
	}
	slow := &kapsel.Tenant{ID: "ten_slow", RateLimit: 0.1, RateBurst: 1}
	if ok, _ := r.allow(slow, clock.Now()); !ok {
		t.Fatal("first request of a full bucket refused")
	}
	if ok, wait := r.allow(slow, clock.Now()); ok || wait != 10*time.Second {
		t.Fatalf("second request: allowed %v, wait %v; want refused for 10s", ok, wait)
	}

	tn := tenant(1, 1)
	if allowed(tn, 5) != 1 {
		t.Fatal("burst 1")
	}
	// A raised limit applies from the next request on; the bucket refills at
	// the new rate up to the new burst.
	clock.Advance(time.Second)
	tn.RateLimit, tn.RateBurst = 100, 100
	if got := allowed(tn, 200); got != 1 {
		t.Fatalf("right after raising the limit %d allowed, want the 1 token held", got)
	}
	clock.Advance(time.Second)
	if got := allowed(tn, 200); got != 100 {
		t.Fatalf("a second after raising the limit %d allowed, want 100", got)
	}

	// The map stays bounded; an idle tenant's (full) bucket goes first.
	r = &rateLimiters{max: 2, m: map[kapsel.TenantID]*rate.Limiter{}}
	busy, idle := tenant(1, 1), tenant(1, 5)
	allowed(busy, 1)
	allowed(idle, 1)
	clock.Advance(10 * time.Second)
	allowed(busy, 1) // busy spent its token again
	allowed(tenant(1, 1), 1)
	if len(r.m) > 2 {
		t.Fatalf("%d limiters, bound 2", len(r.m))
	}
	if _, ok := r.m[busy.ID]; !ok {
		t.Fatal("the busy tenant's limiter was dropped before the idle one")
	}
	if _, ok := r.m[idle.ID]; ok {
		t.Fatal("the idle tenant's limiter was kept")
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{{0, 1}, {time.Nanosecond, 1}, {time.Second, 1}, {time.Second + 1, 2}, {10 * time.Second, 10}} {
		if got := retryAfterSeconds(tc.d); got != tc.want {
			t.Errorf("retryAfterSeconds(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}
