package pgstore

// ClaimSQL and HoldSQL are the claim's statements, for the EXPLAIN tests.
const (
	ClaimSQL = claimSQL
	HoldSQL  = holdSQL
)
