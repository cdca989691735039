-- Kapsel Postgres schema, version 9: deliveries are vacuumed often, with
-- their indexes.
--
-- Every claim and completion of a delivery leaves a dead row version, and
-- its entry in the claim's index (deliveries_pending_idx), which the claim
-- and the /metrics queue read walk from the index's front until a VACUUM
-- removes them. Measured with 10 million delivered events
-- (docs/benchmarks.md, "Growth"): 1 million dead versions made each claim
-- 6.9x and each stats read 56x dearer; freshly vacuumed, they cost what
-- they cost on an empty database. Postgres's default waits for 20 % of the
-- table to be dead (two million versions on 10 million rows) and may skip
-- the indexes, so the table gets its own thresholds: a vacuum after 50,000
-- dead versions whatever the table's size, always cleaning the indexes.
--
-- Storage parameters only: no row is rewritten; the ALTER takes a SHARE
-- UPDATE EXCLUSIVE lock, which does not block reads or writes of rows.
-- Operators may change them (docs/operations.md, "Vacuuming deliveries").

ALTER TABLE deliveries SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 50000,
    vacuum_index_cleanup = on
);
