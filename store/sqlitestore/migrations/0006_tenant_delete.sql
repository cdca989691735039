-- Kapsel SQLite schema, version 6: tenants can be changed and deleted (SPEC
-- §6's PATCH and DELETE /v1/tenants/{id}).
--
--   - updated_at: when TenantUpdate last changed the tenant; an existing
--     tenant was never changed, so it is its created_at. SQLite adds a NOT
--     NULL column only with a default; the 0 is never read, since the
--     UPDATE below sets every existing row and TenantInsert always writes
--     the column.
--   - deleted_at: soft delete, as for sources and endpoints. A deleted
--     tenant is invisible to every read (TenantGet, TenantGetByAPIKey,
--     TenantList), so its API key stops working; its row stays, because
--     its events, deliveries and attempts are kept (the audit trail), and
--     its api_key_hash stays taken in the UNIQUE index.
--
-- TenantList reads the primary key in id order and skips the deleted rows:
-- tenants are few, no index of its own.

ALTER TABLE tenants ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN deleted_at INTEGER;
UPDATE tenants SET updated_at = created_at;
