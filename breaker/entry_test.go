package breaker_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/breaker"
)

// TestNoGoroutinePerBreaker: go-circuitbreaker starts a ticker goroutine per
// closed breaker unless its counter-reset interval is off, and an open timer
// per open breaker; the Set turns both off, so a thousand endpoints, half of
// them open, cost no goroutine. Not parallel: it counts goroutines.
func TestNoGoroutinePerBreaker(t *testing.T) {
	f := setup(t, &breaker.Config{ConsecutiveFailures: 1})
	runtime.GC()
	before := runtime.NumGoroutine()
	for i := range 1000 {
		id := kapsel.EndpointID(fmt.Sprintf("ep_%d", i))
		p, _, err := f.set.Allow(context.Background(), id, f.now())
		if err != nil {
			t.Fatal(err)
		}
		if err := f.set.Record(context.Background(), id, p, i%2 == 0, f.now()); err != nil {
			t.Fatal(err)
		}
	}
	if f.set.Len() != 1000 {
		t.Fatalf("Len = %d", f.set.Len())
	}
	if after := runtime.NumGoroutine(); after > before+5 {
		t.Fatalf("%d goroutines for 1000 breakers (%d before)", after, before)
	}
}
