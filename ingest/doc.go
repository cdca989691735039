// Package ingest is Kapsel's default [kapsel.Ingester], served as
// POST /ingest/{source_id} by [Ingester.Handler].
//
// Per request it resolves the source and its tenant (cached for
// [Config].SourceCacheTTL) — by its id, or by the id of the 0.1 endpoint
// the upgrade made it from ([kapsel.LegacySourceID]) — refuses a paused
// source with 503, reads the body up to [Config].MaxBodyBytes, checks the
// signature with the source's verifier (package
// [github.com/kapsel-dev/kapsel/ingest/verify]), reads the event type and
// the idempotency key (by scheme, or where the source says:
// [SourceIdempotencyKey], [FieldValue]) and checks the tenant's rate, then
// group-commits the event with others — the store fans it out to the
// subscribed endpoints in the same transaction — and answers 202 with the
// number of deliveries only after its own row is committed (200 for a
// duplicate). Refusals are problem+json answers with the codes of
// docs/ingest.md. docs/ingest.md states the order of checks and every
// choice made where the product specification is silent.
//
// [Ingester.Send] stores events an application sends (the front door's
// Send), through the same group commit.
package ingest
