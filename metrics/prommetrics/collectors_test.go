package prommetrics

import (
	"testing"

	"github.com/kapsel-dev/kapsel"
)

// An endpoint whose breaker leaves open or half-open for any other state
// (closed, or an unknown one reported as "other") is forgotten, so the
// tracker holds only endpoints that a series counts.
func TestBreakerTrackerHoldsOnlyCountedStates(t *testing.T) {
	t.Parallel()
	b := newBreakerTracker(DefaultNamespace)
	open, other, closed := kapsel.NewEndpointID(), kapsel.NewEndpointID(), kapsel.NewEndpointID()
	b.set(open, kapsel.BreakerOpen)
	b.set(other, kapsel.BreakerHalfOpen)
	b.set(other, kapsel.BreakerStatus("other"))
	b.set(closed, kapsel.BreakerOpen)
	b.set(closed, kapsel.BreakerClosed)
	if len(b.open) != 1 || b.open[open] != kapsel.BreakerOpen {
		t.Fatalf("tracker holds %v, want only %s open", b.open, open)
	}
}
