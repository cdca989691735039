// Package delivery is Kapsel's default [kapsel.Dispatcher]: it claims due
// deliveries — one event on its way to one endpoint — from a
// [kapsel.DispatcherStore] under a lease, makes each with one HTTP attempt
// carrying its event's body and headers — signed per Standard Webhooks with
// the event id as webhook-id, through the SSRF guard, within the endpoint's
// timeout, never following redirects, reading at most
// kapsel.MaxResponseBody of the answer — and records the attempt together
// with the delivery's next state in one fenced store call. Failed attempts
// are retried with exponential backoff and jitter ([RetryInterval]),
// Retry-After is honoured on 429 and 503, and 410 Gone disables the
// endpoint. Each delivery of an event is attempted, retried and failed on
// its own: one endpoint's outage does not hold up another's.
//
// The package also exports what other parts need to agree with the
// dispatcher: [Sign] and [SignatureHeader] (the outbound signature),
// [NewRequest] (the exact outbound request), [ValidateURL] (the URL check
// for the management API, with the guard's rules on top of kapsel.CheckURL),
// and the SSRF [Guard]. Custom headers follow kapsel.CheckHeaders.
//
// docs/delivery.md describes the lifecycle, the retry schedule, the headers,
// the SSRF rules, leases and fencing, and shutdown.
package delivery
