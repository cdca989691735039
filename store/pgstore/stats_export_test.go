package pgstore

// The statements of DeliveryStats, for the EXPLAIN test.
const (
	StatsPlanSettings = statsPlanSettings
	CountLiveSQL      = countLiveSQL
	OldestDueSQL      = oldestDueSQL
)
