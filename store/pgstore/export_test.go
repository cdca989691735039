package pgstore

// ClaimSQL is the claim query, for the EXPLAIN test.
const ClaimSQL = claimSQL
