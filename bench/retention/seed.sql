-- 1,000,000 old events (100 days), each with one delivered delivery and one
-- attempt (a 200-byte response body), bodies of 512 bytes: the backlog
-- retention removes. Ids sort before every real ULID ("evt_0000…").
\timing on
INSERT INTO events (id, tenant_id, source_id, type, channels, idempotency_key, content_type, headers, body_hash, size, created_at, body)
SELECT 'evt_00' || lpad(i::text, 24, '0'), 'ten_seed', '', 'seed', '{}', NULL, 'application/json', '{}',
    '\x00', 512, now() - interval '100 days' + i * interval '1 ms', convert_to(repeat('x', 512), 'UTF8')
FROM generate_series(1, 1000000) AS i;
INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, attempts, next_attempt_at, claimable_at,
    next_trigger, last_error, created_at, delivered_at)
SELECT 'dlv_00' || lpad(i::text, 24, '0'), 'ten_seed', 'evt_00' || lpad(i::text, 24, '0'), 'ep_seed', 'delivered', 1,
    now() - interval '100 days', now() - interval '100 days', 'scheduled', '', now() - interval '100 days', now() - interval '100 days'
FROM generate_series(1, 1000000) AS i;
INSERT INTO attempts (id, delivery_id, event_id, endpoint_id, tenant_id, number, trigger, started_at, duration_ns,
    status_code, error_code, error, response_body)
SELECT 'att_00' || lpad(i::text, 24, '0'), 'dlv_00' || lpad(i::text, 24, '0'), 'evt_00' || lpad(i::text, 24, '0'), 'ep_seed', 'ten_seed',
    1, 'scheduled', now() - interval '100 days', 1000000, 200, '', '', convert_to(repeat('y', 200), 'UTF8')
FROM generate_series(1, 1000000) AS i;
VACUUM ANALYZE events;
VACUUM ANALYZE deliveries;
VACUUM ANALYZE attempts;
SELECT pg_size_pretty(pg_database_size(current_database()));
