-- Kapsel schema, version 2: claimable_at, so that events which cannot be
-- delivered now do not slow every claim down.
--
-- A claim reads events_pending_idx from its front. Before this migration the
-- index was ordered by next_attempt_at, and the due events of a paused,
-- disabled or deleted endpoint, or of one whose circuit breaker is open, sat
-- at its front for as long as the endpoint stayed blocked: every claim walked
-- them all (100,000 of them cost ~0.2 s per claim).
--
-- claimable_at is when the claim next looks at a pending event. It equals
-- next_attempt_at, except that a claim which meets the event of a blocked
-- endpoint moves it out of the way: to the breaker's open_until, or to
-- 'infinity' for a paused, disabled or deleted endpoint, until
-- EndpointSetState makes the endpoint active again or BreakerDelete resets
-- its breaker (both reset it to next_attempt_at).
-- next_attempt_at — what the API shows — is never changed by this.

ALTER TABLE events ADD COLUMN claimable_at timestamptz;
UPDATE events SET claimable_at = next_attempt_at;
ALTER TABLE events ALTER COLUMN claimable_at SET NOT NULL;

DROP INDEX events_pending_idx;
CREATE INDEX events_pending_idx ON events (claimable_at, id) WHERE status = 'pending';

-- Releasing an endpoint's held events when it becomes active again or its
-- breaker is reset. Only held events are in it: nothing on the insert path.
CREATE INDEX events_held_idx ON events (endpoint_id) WHERE status = 'pending' AND claimable_at > next_attempt_at;
