package pgstore

import "context"

// ClaimSQL, HoldSQL and SweepSQL are the claim's statements, for the EXPLAIN tests.
const (
	ClaimSQL = claimSQL
	HoldSQL  = holdSQL
	SweepSQL = sweepSQL
)

// EventListSQL is EventList's statement, for the EXPLAIN tests.
var EventListSQL = eventListSQL

// MigrateTo applies the migrations up to version upTo, for the upgrade test.
func (s *Store) MigrateTo(ctx context.Context, upTo int) error { return s.migrateTo(ctx, upTo) }
