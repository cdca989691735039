package pgstore

// Retention's statements, for the EXPLAIN tests.
const (
	ScanAllSQL    = scanAllSQL
	ScanTenantSQL = scanTenantSQL
	DeleteKeysSQL = deleteKeysSQL
	OldestSQL     = oldestSQL
	ExpungeSQL    = expungeSQL
)

// DeleteEventsSQL and EraseSQL are built once from inUseSQL.
var (
	DeleteEventsSQL = deleteEventsSQL
	EraseSQL        = eraseSQL
)
