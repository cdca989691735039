-- Seeds 10,000,000 delivered events of a "history" tenant — each with its
-- delivery and its attempt, 200 ms apart over 23 days ending a week ago,
-- 256-byte bodies — and the idempotency keys of the last 500,000 (expired,
-- as they are until retention purges them) into a database that
-- `kapseld migrate up` has migrated. For BenchmarkGrowth (growth_bench_test.go):
-- SPEC §9's "10 million delivered events in the tables". The indexes are
-- dropped for the load and rebuilt after it, then everything is vacuumed
-- and analyzed, as autovacuum would have. ~10 minutes on the 2-core machine.
--
--   createdb kapsel_growth
--   KAPSEL_DATABASE_URL=postgres://…/kapsel_growth kapseld migrate up
--   psql postgres://…/kapsel_growth -f store/pgstore/testdata/growth_seed.sql
\set ON_ERROR_STOP on
\timing on
SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';
SET max_parallel_maintenance_workers = 0;
INSERT INTO tenants (id, name, api_key_hash, rate_limit, rate_burst, created_at, updated_at)
VALUES ('ten_00000000000000000000HIST', 'history', '\x00', 0, 0, now() - interval '30 days', now() - interval '30 days');
INSERT INTO sources (id, tenant_id, name, state, verifier, event_type_from, idempotency_key_from, created_at, updated_at)
VALUES ('src_00000000000000000000HIST', 'ten_00000000000000000000HIST', 'history', 'active',
  '{"scheme":"github","secrets":["x"],"header":""}', '', '', now() - interval '30 days', now() - interval '30 days');
INSERT INTO endpoints (id, tenant_id, name, url, state, disabled_reason, signing_secrets, retry_policy, timeout_ns, headers,
  created_at, updated_at, source_ids)
VALUES ('ep_00000000000000000000HIST', 'ten_00000000000000000000HIST', 'history', 'https://example.com/', 'active', '',
  '[]', '{}', 30000000000, '{}', now() - interval '30 days', now() - interval '30 days', ARRAY['src_00000000000000000000HIST']);
-- Index and constraint definitions, dropped for the load and rebuilt after.
CREATE TABLE growth_defs AS
SELECT 'ALTER TABLE ' || conrelid::regclass || ' ADD CONSTRAINT ' || conname || ' ' || pg_get_constraintdef(oid) AS def,
  'ALTER TABLE ' || conrelid::regclass || ' DROP CONSTRAINT ' || conname AS undo, 1 AS ord
FROM pg_constraint WHERE conrelid::regclass::text IN ('events', 'deliveries', 'attempts', 'idempotency_keys') AND contype IN ('p', 'u')
UNION ALL
SELECT pg_get_indexdef(i.indexrelid), 'DROP INDEX ' || i.indexrelid::regclass, 2
FROM pg_index i
WHERE i.indrelid::regclass::text IN ('events', 'deliveries', 'attempts', 'idempotency_keys')
  AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid);
DO $$ DECLARE r record; BEGIN FOR r IN SELECT undo FROM growth_defs ORDER BY ord DESC LOOP EXECUTE r.undo; END LOOP; END $$;
INSERT INTO events (id, tenant_id, source_id, idempotency_key, content_type, headers, body_hash, size, created_at, body, type)
SELECT 'evt_00' || lpad(i::text, 24, '0'), 'ten_00000000000000000000HIST', 'src_00000000000000000000HIST',
  'key-' || i, 'application/json', '{"X-Github-Event":["push"]}', sha256(i::text::bytea), 256,
  now() - interval '30 days' + i * interval '200 ms', convert_to(repeat('{"n":' || i || '}', 20), 'UTF8'), 'push'
FROM generate_series(1, 10000000) AS i;
INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, attempts, next_attempt_at, claimable_at,
  next_trigger, last_error, created_at, delivered_at)
SELECT 'dlv_00' || lpad(i::text, 24, '0'), 'ten_00000000000000000000HIST', 'evt_00' || lpad(i::text, 24, '0'),
  'ep_00000000000000000000HIST', 'delivered', 1, t, t, 'scheduled', '', t, t + interval '5 ms'
FROM generate_series(1, 10000000) AS i, LATERAL (SELECT now() - interval '30 days' + i * interval '200 ms' AS t) AS x;
INSERT INTO attempts (id, delivery_id, event_id, endpoint_id, tenant_id, number, trigger, started_at, duration_ns,
  status_code, error_code, error, response_body)
SELECT 'att_00' || lpad(i::text, 24, '0'), 'dlv_00' || lpad(i::text, 24, '0'), 'evt_00' || lpad(i::text, 24, '0'),
  'ep_00000000000000000000HIST', 'ten_00000000000000000000HIST', 1, 'scheduled',
  now() - interval '30 days' + i * interval '200 ms', 5000000, 200, '', '', '\x'
FROM generate_series(1, 10000000) AS i;
INSERT INTO idempotency_keys (tenant_id, source_id, key, event_id, body_hash, expires_at)
SELECT 'ten_00000000000000000000HIST', 'src_00000000000000000000HIST', 'key-' || i, 'evt_00' || lpad(i::text, 24, '0'),
  sha256(i::text::bytea), now() - interval '29 days' + i * interval '200 ms'
FROM generate_series(1, 10000000) AS i WHERE i > 9500000;
DO $$ DECLARE r record; BEGIN FOR r IN SELECT def FROM growth_defs ORDER BY ord LOOP EXECUTE r.def; END LOOP; END $$;
DROP TABLE growth_defs;
VACUUM ANALYZE;
SELECT relname, n_live_tup, pg_size_pretty(pg_total_relation_size(relid)) FROM pg_stat_user_tables ORDER BY relname;
