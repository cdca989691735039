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
	set := breaker.New(memstore.New(), &breaker.Config{
		Clock:  clock,
		Logger: slog.New(slog.DiscardHandler),
		Hooks: kapsel.Hooks{OnBreaker: func(i kapsel.BreakerInfo) {
			fmt.Printf("%s → %s: %s\n", i.From, i.To, i.Reason)
		}},
	})
	endpoint := kapsel.EndpointID("ep_example")

	for range breaker.DefaultConsecutiveFailures {
		set.Allow(ctx, endpoint, clock.Now())
		set.Record(ctx, endpoint, false, clock.Now())
	}
	allowed, retryAt, _ := set.Allow(ctx, endpoint, clock.Now())
	fmt.Println("allowed:", allowed, "retry in:", retryAt.Sub(clock.Now()))

	clock.Advance(breaker.DefaultCoolDown)
	allowed, _, _ = set.Allow(ctx, endpoint, clock.Now())
	fmt.Println("probe allowed:", allowed)
	set.Record(ctx, endpoint, true, clock.Now())
	allowed, _, _ = set.Allow(ctx, endpoint, clock.Now())
	fmt.Println("allowed:", allowed)
	// Output:
	// closed → open: 10 consecutive failures
	// allowed: false retry in: 30s
	// open → half_open: cool-down over; one probe let through
	// probe allowed: true
	// half_open → closed: probe succeeded
	// allowed: true
}
