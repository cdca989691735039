// Package ingest is Kapsel's default [kapsel.Ingester], served as
// POST /ingest/{endpoint_id} by [Ingester.Handler].
//
// Per request it resolves the endpoint and its tenant (cached for
// [Config].EndpointCacheTTL), reads the body up to [Config].MaxBodyBytes,
// checks the signature with the endpoint's scheme (package
// [github.com/kapsel-dev/kapsel/ingest/verify]), the idempotency key
// ([IdempotencyKey]) and the tenant's rate, then group-commits the event with
// others and answers 202 only after its own row is committed (200 for a
// duplicate). Refusals are problem+json answers with the codes of docs/ingest.md.
// docs/ingest.md states the order of checks and every choice made where
// the product specification is silent.
package ingest
