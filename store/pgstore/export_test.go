package pgstore

import "context"

// The claim's, the completion's, the insert's and EndpointDelete's
// statements, for the
// EXPLAIN tests.
const (
	ClaimSQL              = claimSQL
	HoldSQL               = holdSQL
	SweepSQL              = sweepSQL
	TargetsSQL            = targetsSQL
	InsertEventsSQL       = insertEventsSQL
	EndLiveDeliveriesSQL  = endLiveDeliveriesSQL
	ReleaseHeldSQL        = releaseHeldSQL
	ReleaseBreakerHeldSQL = releaseBreakerHeldSQL
	CompleteSQL           = completeSQL
	ClaimPlanSettings     = claimPlanSettings
)

// EventListSQL and DeliveryListSQL are the lists' statements, for the
// EXPLAIN tests.
var (
	EventListSQL    = eventListSQL
	DeliveryListSQL = deliveryListSQL
)

// MigrateTo applies the migrations up to version upTo, for the upgrade test.
func (s *Store) MigrateTo(ctx context.Context, upTo int) error { return s.migrateTo(ctx, upTo) }
