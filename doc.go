// Package kapsel makes webhooks reliable, in both directions. It accepts a
// webhook at a source (or an event an application sends), checks its
// signature, commits it — with one delivery for every endpoint subscribed to
// it — to durable storage before answering, then delivers it to each of
// those destinations with retries, backoff, circuit breaking and a full
// audit trail until each has it. Nothing accepted is ever lost.
//
// This root package is the domain: the types ([Tenant], [Source],
// [Endpoint], [Event], [Delivery], [Attempt], typed ids such as [EventID]),
// the [Ingester], [Dispatcher] and
// [Store] interfaces, the errors and their codes ([Code], [Error]), the
// [Hooks] and the [Clock]. It imports only the standard library; everything
// else depends on it.
//
// # Parts
//
//   - service: the front door an application embeds — built from a store and
//     a Config in one call, started and stopped once, mounted as one
//     http.Handler (ingest and the management API), with the validated
//     operations (tenants, sources, endpoints, sends, events, deliveries) as
//     Go methods.
//   - ingest: the default [Ingester] and its http.Handler for
//     POST /ingest/{source_id}, with signature verifiers and group commit.
//   - delivery: the default [Dispatcher]: leases, retries, Standard Webhooks
//     signatures, the SSRF guard.
//   - breaker: per-endpoint circuit breakers persisted through the store.
//   - store/pgstore: the Postgres [Store], with transactional sends inside
//     the caller's own pgx transaction (an outbox).
//   - store/sqlitestore: an embedded, durable [Store] for a single process
//     (kapseld's zero-config default).
//   - store/memstore: an in-memory [Store] for unit tests and examples.
//   - store/storetest: the conformance suite every [Store] passes; a
//     third-party store proves itself with one call, storetest.Run.
//   - metrics/prommetrics: Prometheus metrics fed by [Hooks].
//   - tracing/oteltracing: OpenTelemetry spans fed by [Hooks] — one trace
//     per webhook, from the provider's traceparent to the destination's
//     (each [Event] keeps its [TraceContext]).
//   - receiver: for applications that receive Kapsel's deliveries, an
//     http.Handler middleware that verifies their signature and handles
//     each event once.
//   - kapseltest: a fake [Clock], a fake destination and assertions for
//     your own tests.
//   - cmd/kapseld: the standalone server built from these parts.
//
// # Sources, endpoints, events and deliveries
//
// A [Source] is an inbound door: providers POST to its ingest URL,
// /ingest/{source_id}, where its verifier checks them. An [Endpoint] is a
// destination, with a [Subscription] filter (event types, sources,
// channels). An [Event] is what was accepted — ingested by a source, or
// sent by the application — and is immutable once stored. A [Delivery] is
// one event on its way to one endpoint: the unit that is leased, retried,
// held by a breaker and replayed. The deliveries of an event are decided
// in the transaction that stores it, one per endpoint whose filter matches
// (or, for a send that names endpoints, one per endpoint named), and
// endpoints created later get past events only by a backfill.
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
//	src, err := k.CreateSource(ctx, tenantID, service.SourceCreate{Verifier: verifier})
//	// providers send to service.IngestURL(src.ID)
//	ep, secret, err := k.CreateEndpoint(ctx, tenantID, service.EndpointCreate{
//		URL: url, EventTypes: []string{"invoice.*"},
//	})
//	res, err := k.Send(ctx, tenantID, service.Send{Type: "invoice.paid", Payload: invoice})
//
// With pgstore, an application can also send an event inside its own pgx
// transaction (the front door's SendTx), so that the event and its
// deliveries commit or roll back with the business write they announce.
//
// # For store implementers
//
// [Store] and its role interfaces ([TenantStore], [SourceStore],
// [EndpointStore], [EventStore], [DeliveryStore], [AttemptStore],
// [BreakerStore]) with their …Params types (the store*.go files), and the
// optional capabilities found with [StoreAs] ([RetentionStore],
// [Timekeeper], [Notifier]), are the contract a storage backend implements; an
// application never calls them to create or change anything — the front
// door's operations do, with their validation. A new store proves itself
// with store/storetest's Run.
//
// # Retention
//
// Event bodies are kept [DefaultBodyRetention] and events with their
// deliveries and attempts [DefaultMetadataRetention], globally or per
// tenant ([RetentionPolicy]); nothing in use is removed, and an expired or
// expunged event keeps answering with its metadata ([Event.BodyErasure]).
// Package retention runs the removal in short batches; the front door
// starts it when asked (service.Config.Retention; kapseld by default) and
// offers the expunge operations.
//
// # Guarantees
//
// Ingest and sends answer 2xx only after the event and all its deliveries
// are committed. One event exists per (scope, idempotency key) within the
// idempotency window — the scope is the source for ingest, the tenant for
// sends. Every delivery ends delivered or failed, or waits visibly while
// its endpoint is paused, disabled or its breaker open. Delivery is at
// least once; duplicates happen only around a crash or lease expiry and
// always carry the same webhook-id (the event's id). Every request sent to
// a destination has exactly one [Attempt] record, written in the same
// transaction as the state change it causes, and a worker whose lease
// expired cannot change the delivery any more ([ErrLeaseLost]). An event's
// deliveries are frozen when it is stored: one per (event, endpoint).
//
// # Lifecycle of a delivery
//
// A delivery is pending until a dispatcher claims it with a lease
// ([DeliveryQueue.DeliveryClaim]); it is then delivering until the
// attempt's outcome is recorded ([DeliveryQueue.DeliveryComplete]):
// delivered, failed, or pending again with a later NextAttemptAt. A retry,
// replay or backfill puts it (back) in the queue by hand. See
// [DeliveryStatus.CanTransitionTo].
//
// # Rules for what a source and an endpoint hold
//
// Each rule is written once, here, and the management API, the dispatcher,
// the ingest verifiers and every store apply the same one: [CheckURL]
// (http or https, a host, no credentials), [CheckHeaders] (the custom header
// policy of docs/api.md), [VerifierConfig.Validate] (no empty secret),
// [ParseSigningSecret] and [CheckSigningSecret] (the "whsec_<base64>"
// format, prefix required), [BuiltinSchemes] (the verifier scheme names) and
// [RotateSigningSecrets] (at most [MaxSigningSecrets] kept),
// [Subscription.Validate] (the subscription filter) and
// [CheckEventChannels] (an event's channels), [FieldRef.Validate] (where a
// source reads the event type or idempotency key). Which events an endpoint
// is subscribed to is [Subscription.Matches], the one rule of the fan-out.
// Stores check [Endpoint.ValidateConfig] and [Source.ValidateConfig] on
// insert and update, so writing through a store directly is held to the
// same rules. Which addresses may be dialled is the SSRF guard's decision
// (package delivery), which the API shares with the dispatcher. Tenant,
// source and endpoint ids carry 80 random bits each, since a source's id is
// its ingest URL (and a 0.1 endpoint's id still reaches the source the
// upgrade made of it, [LegacySourceID]).
//
// # Errors
//
// Stores and components return errors wrapping the sentinels ([ErrNotFound],
// [ErrDuplicate], [ErrIdempotencyConflict], [ErrLeaseLost], …). Errors meant
// for API callers are [*Error] values carrying a documented [Code]; [CodeOf]
// finds the code of any error and [Code.Info] its HTTP status.
package kapsel
