package delivery_test

import (
	"context"
	"testing"
	"time"
)

// TestWorkersAreReused: deliveries claimed one after another, each after
// the previous one was recorded, are attempted by the worker that went idle
// after the previous one, not by a new goroutine each; and Stop ends idle
// workers at once rather than after their idle time.
func TestWorkersAreReused(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	const n = 10
	for i := range n {
		dl := f.insert(nil, `{"n":`+string(rune('0'+i))+`}`)
		f.requireDelivered(dl)
	}
	if got := f.d.WorkersStarted(); got >= n {
		t.Fatalf("%d worker goroutines started for %d deliveries made one after another, want them reused", got, n)
	}
	if running, queued, _ := f.d.Held(); running != 0 || queued != 0 {
		t.Fatalf("after the last delivery: %d running, %d queued, want none (an idle worker holds no slot)", running, queued)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.d.Stop(ctx); err != nil || ctx.Err() != nil {
		t.Fatalf("Stop with idle workers: %v (ctx %v)", err, ctx.Err())
	}
}
