package receiver_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel/receiver"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// claim fails t unless Claim answers want.
func claim(t *testing.T, m *receiver.MemorySeen, id string, now time.Time, want receiver.ClaimStatus) {
	t.Helper()
	got, err := m.Claim(context.Background(), id, now)
	if err != nil || got != want {
		t.Fatalf("Claim(%s) = %v, %v; want %v", id, got, err, want)
	}
}

func TestMemorySeenClaimCommitRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := receiver.NewMemorySeen(0)
	claim(t, m, "a", t0, receiver.ClaimAcquired)
	claim(t, m, "a", t0, receiver.ClaimBusy)
	claim(t, m, "b", t0, receiver.ClaimAcquired)

	if err := m.Release(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	claim(t, m, "a", t0, receiver.ClaimAcquired) // released: handled again

	if err := m.Commit(ctx, "a", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	claim(t, m, "a", t0, receiver.ClaimSeen)
	if err := m.Release(ctx, "a"); err != nil { // releasing a committed id forgets nothing
		t.Fatal(err)
	}
	claim(t, m, "a", t0, receiver.ClaimSeen)
	if err := m.Release(ctx, "never-claimed"); err != nil {
		t.Fatalf("Release of an unclaimed id: %v", err)
	}
	if m.Len() != 1 {
		t.Fatalf("Len = %d, want 1 (claims are not records)", m.Len())
	}
}

func TestMemorySeenExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := receiver.NewMemorySeen(0)
	claim(t, m, "a", t0, receiver.ClaimAcquired)
	if err := m.Commit(ctx, "a", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	claim(t, m, "a", t0.Add(time.Minute-time.Nanosecond), receiver.ClaimSeen)
	claim(t, m, "a", t0.Add(time.Minute), receiver.ClaimAcquired)
	if m.Len() != 0 {
		t.Fatalf("Len = %d after expiry, want 0", m.Len())
	}
}

func TestMemorySeenIsBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := receiver.NewMemorySeen(3)
	// Committed out of expiry order: "c" expires first, then "a", "b", "d".
	for id, ttl := range map[string]time.Duration{"a": 2 * time.Hour, "b": 3 * time.Hour, "c": time.Hour} {
		claim(t, m, id, t0, receiver.ClaimAcquired)
		if err := m.Commit(ctx, id, t0.Add(ttl)); err != nil {
			t.Fatal(err)
		}
	}
	claim(t, m, "d", t0, receiver.ClaimAcquired)
	if err := m.Commit(ctx, "d", t0.Add(4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if m.Len() != 3 {
		t.Fatalf("Len = %d, want 3", m.Len())
	}
	claim(t, m, "c", t0, receiver.ClaimAcquired) // evicted: closest to expiry
	for _, id := range []string{"a", "b", "d"} {
		claim(t, m, id, t0, receiver.ClaimSeen)
	}
}

func TestMemorySeenRecommitMovesExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := receiver.NewMemorySeen(0)
	for _, exp := range []time.Duration{time.Minute, time.Hour} {
		if err := m.Commit(ctx, "a", t0.Add(exp)); err != nil {
			t.Fatal(err)
		}
	}
	claim(t, m, "a", t0.Add(30*time.Minute), receiver.ClaimSeen)
	if m.Len() != 1 {
		t.Fatalf("Len = %d, want 1", m.Len())
	}
}

func TestMemorySeenConcurrentClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := receiver.NewMemorySeen(64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	acquired := map[string]int{}
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				id := fmt.Sprintf("evt_%d", i%100)
				now := t0.Add(time.Duration(w) * time.Millisecond)
				st, err := m.Claim(ctx, id, now)
				if err != nil {
					t.Error(err)
					return
				}
				if st != receiver.ClaimAcquired {
					continue
				}
				mu.Lock()
				acquired[id]++
				mu.Unlock()
				if i%3 == 0 {
					_ = m.Release(ctx, id)
				} else {
					_ = m.Commit(ctx, id, now.Add(time.Hour))
				}
			}
		})
	}
	wg.Wait()
	if m.Len() > 64 {
		t.Fatalf("Len = %d, over the bound of 64", m.Len())
	}
	if len(acquired) != 100 {
		t.Fatalf("%d ids acquired, want all 100", len(acquired))
	}
}

func TestClaimStatusString(t *testing.T) {
	t.Parallel()
	for st, want := range map[receiver.ClaimStatus]string{
		receiver.ClaimAcquired: "acquired", receiver.ClaimSeen: "seen", receiver.ClaimBusy: "busy", 0: "unknown",
	} {
		if got := st.String(); got != want {
			t.Fatalf("%d.String() = %q, want %q", int(st), got, want)
		}
	}
}
