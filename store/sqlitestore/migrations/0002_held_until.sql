-- Kapsel SQLite schema, version 2: held_until, so that events which cannot
-- be delivered now do not slow every claim down (as pgstore's claimable_at).
--
-- A claim reads the pending events in claim order from the front. Before
-- this migration the due events of a paused, disabled or deleted endpoint,
-- or of one whose breaker is open, sat at the front for as long as the
-- endpoint stayed blocked, and every claim walked them all inside the single
-- writer's transaction (100,000 of them: ~135 ms per claim, with ingest,
-- completions and API writes waiting behind it).
--
-- held_until is NULL for an event that is not held. A claim that meets the
-- due event of a blocked endpoint sets it: to the breaker's open_until, or
-- to the largest integer ("forever") for an endpoint that is not active.
-- The claim order is coalesce(held_until, next_attempt_at), so held events
-- leave the front of events_claim_idx. Making the endpoint active, resetting
-- its breaker, or a breaker save that closes it or brings open_until forward
-- releases them (the triggers below). Claiming an event sets held_until back to NULL, and an
-- event leaves pending only by being claimed, so no other write needs to
-- know about it. next_attempt_at — what the API shows — is never changed by
-- this.

ALTER TABLE events ADD COLUMN held_until INTEGER;

CREATE INDEX events_claim_idx ON events (coalesce(held_until, next_attempt_at), id) WHERE status = 'pending';

-- Releasing an endpoint's held events. Only held events are in it: nothing
-- on the insert path.
CREATE INDEX events_held_idx ON events (endpoint_id) WHERE status = 'pending' AND held_until IS NOT NULL;

-- The releases are triggers, so that every write that lets an endpoint
-- through again releases its held events in the same transaction, whichever
-- code path makes it.

-- Made active again: every held event is due again at its next_attempt_at.
CREATE TRIGGER events_release_on_active AFTER UPDATE OF state ON endpoints
WHEN NEW.state = 'active'
BEGIN
    UPDATE events SET held_until = NULL
    WHERE endpoint_id = NEW.id AND status = 'pending' AND held_until IS NOT NULL;
END;

-- Breaker saved (closed, or open_until moved): events held for the breaker
-- beyond its new open_until are held until then instead, or not at all once
-- that is before their next_attempt_at. Events held forever (an inactive
-- endpoint) stay held.
CREATE TRIGGER events_release_on_breaker_insert AFTER INSERT ON breakers
BEGIN
    UPDATE events SET held_until = CASE WHEN NEW.open_until > next_attempt_at THEN NEW.open_until END
    WHERE endpoint_id = NEW.endpoint_id AND status = 'pending' AND held_until IS NOT NULL
        AND held_until <> 9223372036854775807 AND held_until > coalesce(NEW.open_until, -9223372036854775808);
END;

CREATE TRIGGER events_release_on_breaker_update AFTER UPDATE ON breakers
BEGIN
    UPDATE events SET held_until = CASE WHEN NEW.open_until > next_attempt_at THEN NEW.open_until END
    WHERE endpoint_id = NEW.endpoint_id AND status = 'pending' AND held_until IS NOT NULL
        AND held_until <> 9223372036854775807 AND held_until > coalesce(NEW.open_until, -9223372036854775808);
END;

-- Breaker reset: every held event is due again (one still blocked by the
-- endpoint's state is held again by the next claim).
CREATE TRIGGER events_release_on_breaker_delete AFTER DELETE ON breakers
BEGIN
    UPDATE events SET held_until = NULL
    WHERE endpoint_id = OLD.endpoint_id AND status = 'pending' AND held_until IS NOT NULL;
END;
