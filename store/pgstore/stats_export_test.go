package pgstore

// The statements of EventStats, for the EXPLAIN test.
const (
	StatsPlanSettings = statsPlanSettings
	CountLiveSQL      = countLiveSQL
	OldestDueSQL      = oldestDueSQL
)
