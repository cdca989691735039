-- Kapsel SQLite schema, version 4: an endpoint's subscription filter and an
-- event's channels (docs/delivery.md#subscriptions).
--
-- Each list is a JSON array of strings, '[]' when empty (= any): SQLite has
-- no array type, and its built-in JSON functions make the future fan-out
-- query — which endpoints of the tenant does this event match, inside the
-- transaction that stores it — one statement:
--
--   SELECT id FROM endpoints
--   WHERE tenant_id = ?1 AND deleted_at IS NULL
--     AND (event_types = '[]' OR EXISTS (SELECT 1 FROM json_each(event_types) p
--          WHERE p.value = ?2 OR p.value = '*'
--             OR (p.value LIKE '%.*' AND substr(?2, 1, length(p.value) - 1) = substr(p.value, 1, length(p.value) - 1))))
--     AND (source_ids = '[]' OR EXISTS (SELECT 1 FROM json_each(source_ids) WHERE value = ?3))
--     AND (channels = '[]' OR EXISTS (SELECT 1 FROM json_each(channels) c, json_each(?4) e
--          WHERE c.value = e.value))
--
-- (a sketch: kapsel.Subscription.Matches is the rule, and the fan-out step
-- that writes the query tests it against that.) A tenant's endpoints are few and endpoints_tenant_idx already
-- finds them, so no index over the lists is needed: the filter is tested on
-- each of the tenant's live endpoints. They are separate columns rather than
-- fields of the config document so that such a query reads them without
-- parsing the rest, and a '[]' comparison skips json_each for "any".
--
-- The lists hold what kapsel.Subscription.Validate and
-- kapsel.CheckEventChannels accept (the one place the rules live), so no
-- CHECK repeats them here. ADD COLUMN with a constant default rewrites no
-- row: every existing endpoint subscribes to everything and every existing
-- event is on no channel.

ALTER TABLE endpoints ADD COLUMN event_types TEXT NOT NULL DEFAULT '[]';
ALTER TABLE endpoints ADD COLUMN source_ids TEXT NOT NULL DEFAULT '[]';
ALTER TABLE endpoints ADD COLUMN channels TEXT NOT NULL DEFAULT '[]';

ALTER TABLE events ADD COLUMN channels TEXT NOT NULL DEFAULT '[]';
