package pgstore

// The tenant lock orders every write that makes or requeues deliveries with
// the deletes that end them (SPEC I10: no delivery is left pending for a
// deleted endpoint). It is a transaction-level advisory lock per tenant,
// keyed (hashtext('kapsel_tenant'), hashtext(tenant_id)) — the two-int
// form, so it shares no key with the one-bigint form, and the class keeps it
// apart from the migration lock (hashtext('kapsel_migrate'), see migrate.go):
//
//   - shared, by EventInsertMany (for every tenant of the batch, in sorted
//     order), DeliveryRetry, DeliveryRetryEvent, DeliveryReplay and
//     DeliveryBackfill, before the statement that reads the endpoints;
//   - exclusive, by EndpointDelete and TenantDelete, before the statement
//     that ends the live deliveries.
//
// A delete therefore waits for the writes in flight for its tenant, whose
// deliveries its next statement (a new snapshot, READ COMMITTED) sees and
// ends, and a write that comes later waits for the delete's commit and then
// reads the endpoint deleted. Heavyweight locks queue fairly: once a delete
// waits, new shared requests queue behind it, so it waits only for the
// batches already in flight, however busy the tenant (with row locks — 0.2's
// first design, FOR KEY SHARE on every endpoint of the tenant per insert
// batch, FOR UPDATE by the delete — a delete under four inserting
// goroutines waited 15–18 s, and every batch wrote a lock record per
// endpoint). Writes of one tenant share the lock and never wait for each
// other; the claim, the completion and the endpoint's other changes do not
// take it.
//
// Two tenants whose ids hash alike share a lock: a delete of one may wait
// for the other's writes in flight, which costs time, never correctness.
// So do tenants of other Kapsel schemas in the same database.
//
// The lock is held to the end of the transaction: for EventInsertTx, the
// application's.
const (
	// tenantLockClass is the first key of the tenant lock.
	tenantLockClass = `hashtext('kapsel_tenant')`

	// lockTenantsSharedSQL takes the shared tenant lock of each tenant in
	// $1, in the array's order (the caller sorts it): unnest yields its
	// elements in order and the aggregate calls the lock function on each
	// in turn.
	lockTenantsSharedSQL = `SELECT count(pg_advisory_xact_lock_shared(` + tenantLockClass + `, hashtext(t)))
FROM unnest($1::text[]) AS t`

	// lockEndpointTenantSharedSQL takes the shared tenant lock of the
	// endpoint $1 visible to the tenant $2 (all when empty); none when it is
	// not visible, and the statements that follow then find nothing.
	lockEndpointTenantSharedSQL = `SELECT pg_advisory_xact_lock_shared(` + tenantLockClass + `, hashtext(tenant_id))
FROM endpoints WHERE ` + visibleEndpoint

	// lockEndpointTenantSQL is lockEndpointTenantSharedSQL, exclusive.
	lockEndpointTenantSQL = `SELECT pg_advisory_xact_lock(` + tenantLockClass + `, hashtext(tenant_id))
FROM endpoints WHERE ` + visibleEndpoint

	// lockTenantSQL takes the exclusive tenant lock of the tenant $1.
	lockTenantSQL = `SELECT pg_advisory_xact_lock(` + tenantLockClass + `, hashtext($1))`
)
