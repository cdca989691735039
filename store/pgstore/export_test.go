package pgstore

// ClaimSQL, HoldSQL and SweepSQL are the claim's statements, for the EXPLAIN tests.
const (
	ClaimSQL = claimSQL
	HoldSQL  = holdSQL
	SweepSQL = sweepSQL
)

// EventListSQL is EventList's statement, for the EXPLAIN tests.
var EventListSQL = eventListSQL
