package breaker_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/breaker"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// A Set refuses attempts to an endpoint whose destination keeps failing,
// lets one probe through after the cool-down, and closes when it succeeds.
// The dispatcher does the asking and telling; here it is done by hand.
func Example() {
	ctx := context.Background()
	clock := kapseltest.NewClock(time.Time{})
	set, err := breaker.New(memstore.New(), &breaker.Config{
		Clock:  clock,
		Logger: slog.New(slog.DiscardHandler),
		Hooks: kapsel.Hooks{OnBreaker: func(_ context.Context, i kapsel.BreakerInfo) {
			fmt.Printf("%s → %s: %s\n", i.From, i.To, i.Reason)
		}},
	})
	if err != nil {
		panic(err)
	}
	endpoint := kapsel.EndpointID("ep_example")

	for range breaker.DefaultConsecutiveFailures {
		permit, _, _ := set.Allow(ctx, endpoint, clock.Now())
		// … the attempt fails …
		set.Record(ctx, endpoint, permit, false, clock.Now())
	}
	permit, retryAt, _ := set.Allow(ctx, endpoint, clock.Now())
	fmt.Println("allowed:", permit.Allowed, "retry in:", retryAt.Sub(clock.Now()))

	clock.Advance(breaker.DefaultCoolDown)
	probe, _, _ := set.Allow(ctx, endpoint, clock.Now())
	fmt.Println("probe allowed:", probe.Allowed)
	// Only the probe's own outcome, handed back with its permit, settles it.
	set.Record(ctx, endpoint, probe, true, clock.Now())
	permit, _, _ = set.Allow(ctx, endpoint, clock.Now())
	fmt.Println("allowed:", permit.Allowed)
	// Output:
	// closed → open: 10 consecutive failures
	// allowed: false retry in: 30s
	// open → half_open: cool-down over; one probe let through
	// probe allowed: true
	// half_open → closed: probe succeeded
	// allowed: true
}
