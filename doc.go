// Package kapsel makes webhooks reliable. It accepts a webhook, checks its
// signature, commits it to durable storage before answering, then delivers it
// to its destination with retries, backoff, circuit breaking and a full audit
// trail until the destination has it. Nothing accepted is ever lost.
//
// This root package is the domain: the types ([Tenant], [Endpoint], [Event],
// [Attempt], typed ids such as [EventID]), the [Ingester], [Dispatcher] and
// [Store] interfaces, the errors and their codes ([Code], [Error]), the
// [Hooks] and the [Clock]. It imports only the standard library; everything
// else depends on it.
//
// # Parts
//
//   - service: the front door an application embeds — built from a store and
//     a Config in one call, started and stopped once, mounted as one
//     http.Handler (ingest and the management API), with the validated
//     operations (tenants, endpoints, sends, events) as Go methods.
//   - ingest: the default [Ingester] and its http.Handler for
//     POST /ingest/{endpoint_id}, with signature verifiers and group commit.
//   - delivery: the default [Dispatcher]: leases, retries, Standard Webhooks
//     signatures, the SSRF guard.
//   - breaker: per-endpoint circuit breakers persisted through the store.
//   - store/pgstore: the Postgres [Store], with transactional ingest inside
//     the caller's own pgx transaction (an outbox).
//   - store/sqlitestore: an embedded, durable [Store] for a single process
//     (kapseld's zero-config default).
//   - store/memstore: an in-memory [Store] for unit tests and examples.
//   - store/storetest: the conformance suite every [Store] passes; a
//     third-party store proves itself with one call, storetest.Run.
//   - metrics/prommetrics: Prometheus metrics fed by [Hooks].
//   - receiver: for applications that receive Kapsel's deliveries, an
//     http.Handler middleware that verifies their signature and handles
//     each event once.
//   - kapseltest: a fake [Clock], a fake destination and assertions for
//     your own tests.
//   - cmd/kapseld: the standalone server built from these parts.
//
// # Embedding
//
// An application builds the front door from a store, starts it, mounts its
// handler and operates it from Go; the ingester wakes the dispatcher after
// each commit, so a new event is attempted within milliseconds:
//
//	store, err := pgstore.Open(ctx, databaseURL, nil)
//	// … store.Migrate(ctx)
//	k, err := service.New(store, &service.Config{Logger: logger})
//	// … k.Start(ctx); defer k.Stop(ctx)
//	mux.Handle("/", k.Handler())
//	ep, secret, err := k.CreateEndpoint(ctx, tenantID, service.EndpointCreate{URL: url})
//
// With pgstore, an application can also send a webhook inside its own pgx
// transaction (the front door's SendTx), so that the webhook commits or
// rolls back with the business write it announces.
//
// # For store implementers
//
// [Store] and its role interfaces ([TenantStore], [EndpointStore],
// [EventStore], [AttemptStore], [BreakerStore]) with their …Params types
// (the store*.go files) are the contract a storage backend implements; an
// application never calls them to create or change anything — the front
// door's operations do, with their validation. A new store proves itself
// with store/storetest's Run.
//
// # Guarantees
//
// Ingest answers 2xx only after the event is committed. One event exists per
// (endpoint, idempotency key) within the idempotency window. Every event ends
// delivered or failed, or waits visibly while its endpoint is paused or
// disabled. Delivery is at least once; duplicates happen only around a crash
// or lease expiry and always carry the same webhook-id. Every request sent to
// a destination has exactly one [Attempt] record, written in the same
// transaction as the state change it causes, and a worker whose lease expired
// cannot change the event any more ([ErrLeaseLost]).
//
// # Lifecycle of an event
//
// An event is pending until a dispatcher claims it with a lease
// ([EventQueue.EventClaim]); it is then delivering until the attempt's outcome
// is recorded ([EventQueue.EventComplete]): delivered, failed, or pending
// again with a later NextAttemptAt. See [EventStatus.CanTransitionTo].
//
// # Rules for what an endpoint holds
//
// Each rule is written once, here, and the management API, the dispatcher,
// the ingest verifiers and every store apply the same one: [CheckURL]
// (http or https, a host, no credentials), [CheckHeaders] (the custom header
// policy of docs/api.md), [VerifierConfig.Validate] (no empty secret),
// [ParseSigningSecret] and [CheckSigningSecret] (the "whsec_<base64>"
// format, prefix required), [BuiltinSchemes] (the verifier scheme names) and
// [RotateSigningSecrets] (at most [MaxSigningSecrets] kept),
// [Subscription.Validate] (the subscription filter) and
// [CheckEventChannels] (an event's channels). Which events an endpoint is
// subscribed to is [Subscription.Matches], one rule for the fan-out to
// come: until it lands, an event goes to the endpoint it names. Stores check
// [Endpoint.ValidateConfig] on insert and update, so writing through a store
// directly is held to the same rules. Which addresses may be dialled is the
// SSRF guard's decision (package delivery), which the API shares with the
// dispatcher. Tenant, endpoint and source ids carry 80 random bits each,
// since an endpoint's id is its ingest URL (and a source's will be).
//
// # Errors
//
// Stores and components return errors wrapping the sentinels ([ErrNotFound],
// [ErrDuplicate], [ErrIdempotencyConflict], [ErrLeaseLost], …). Errors meant
// for API callers are [*Error] values carrying a documented [Code]; [CodeOf]
// finds the code of any error and [Code.Info] its HTTP status.
package kapsel
