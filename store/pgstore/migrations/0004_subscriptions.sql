-- Kapsel schema, version 4: an endpoint's subscription filter and an event's
-- channels (docs/delivery.md#subscriptions).
--
-- Each list is a text[] column, '{}' when empty (= any for a filter, none
-- for an event), rather than a field of the jsonb configuration: the future
-- fan-out step matches endpoints inside the transaction that stores an
-- event, in SQL, and arrays make each part of kapsel.Subscription.Matches
-- one operator over the row, with nothing to parse:
--
--   type:     cardinality(ep.event_types) = 0 OR $type = ANY (ep.event_types)
--             OR EXISTS (SELECT FROM unnest(ep.event_types) p
--                        WHERE p = '*' OR (p LIKE '%.*' AND starts_with($type, left(p, -1))))
--   source:   cardinality(ep.source_ids) = 0 OR $source = ANY (ep.source_ids)
--   channels: cardinality(ep.channels) = 0 OR ep.channels && $channels
--
-- (a sketch: the fan-out step writes the query and tests it against
-- kapsel.Subscription.Matches). A tenant's live endpoints are few and
-- endpoints_tenant_id_idx already finds them, so no GIN index over the
-- lists: the filter is tested on each of them. An event's channels are an
-- array for the same reason — `ep.channels && e.channels` for the
-- backfill, which matches past events to a new endpoint.
--
-- The lists hold what kapsel.Subscription.Validate and
-- kapsel.CheckEventChannels accept (the one place the rules live), so no
-- CHECK repeats them here. ADD COLUMN with a constant default rewrites no
-- row and scans no table: every existing endpoint subscribes to everything,
-- every existing event is on no channel, at once.

ALTER TABLE endpoints
	ADD COLUMN event_types text[] NOT NULL DEFAULT '{}',
	ADD COLUMN source_ids text[] NOT NULL DEFAULT '{}',
	ADD COLUMN channels text[] NOT NULL DEFAULT '{}';

ALTER TABLE events ADD COLUMN channels text[] NOT NULL DEFAULT '{}';
