// Package receiver is for applications that receive Kapsel's deliveries: an
// [http.Handler] middleware that lets a delivery through to the
// application's handler only when it is signed, fresh and new.
//
// A [Verifier] built by [New] from a [Config] checks, in this order:
//
//  1. the body is at most Config.MaxBodyBytes (413 E1002 otherwise); it is
//     read once and handed on to the next handler byte for byte;
//  2. the Standard Webhooks signature (webhook-id, webhook-timestamp,
//     webhook-signature: "v1,<base64>" entries, space-separated) matches one
//     of Config.Secrets in constant time — several secrets during a rotation
//     grace period, when Kapsel signs with the old and the new one — and
//     webhook-timestamp is within Config.Tolerance of now, in either
//     direction (401 E1001 otherwise);
//  3. the webhook-id has not been handled already (see below).
//
// Refusals are RFC 9457 application/problem+json answers carrying Kapsel's
// error code, like the ones Kapsel's own ingest gives.
//
// # Deduplication
//
// Kapsel delivers at least once: the same event reaches the receiver again
// when an answer was lost, when an attempt timed out while the handler was
// still working, or when an operator replays it. Every attempt of one event
// carries the same webhook-id (the event id), so the verifier remembers the
// ids it has handled in a [SeenStore] and answers a repeat with 200 OK
// without calling the next handler. It answers 200, not an error, because
// the sender must stop retrying: the event has been handled, and any other
// status would make Kapsel try again until its retry policy gives up and
// marks the delivery failed.
//
// An event fanned out to several endpoints reaches each of them under that
// same webhook-id. An application that serves several endpoints, and wants
// each of them to see the event, gives each its own Verifier with its own
// SeenStore; behind one shared SeenStore, the second endpoint's delivery is
// answered as a duplicate.
//
// An id is remembered only once the next handler has succeeded (answered
// 2xx). Until then it is merely claimed: a delivery whose handling fails
// (non-2xx, or a panic) releases its claim, so Kapsel's retry is handled
// again instead of being dropped as a duplicate of a handling that never
// succeeded. While a claim is held, a concurrent delivery of the same id is
// answered 429 E1006 with Retry-After: the sender retries it later, when the
// first handling has either succeeded (the retry is then a duplicate) or
// failed (the retry is then handled). 429 rather than 409 because Kapsel
// retries 429 and honours its Retry-After even for endpoints whose other 4xx
// answers are final.
//
// Only deliveries whose signature verified are claimed, so a forger cannot
// use up ids. The default [MemorySeen] keeps ids in memory, bounded in time
// (Config.SeenTTL, at least twice the tolerance: a signed request can be
// replayed for that long) and in size; a receiver running several replicas
// plugs in a shared store.
package receiver
