-- Kapsel schema, version 6: tenants can be changed and deleted (SPEC §6's
-- PATCH and DELETE /v1/tenants/{id}).
--
--   - updated_at: when TenantUpdate last changed the tenant; an existing
--     tenant was never changed, so it is its created_at.
--   - deleted_at: soft delete, as for sources and endpoints. A deleted
--     tenant is invisible to every read (TenantGet, TenantGetByAPIKey,
--     TenantList), so its API key stops working; its row stays, because
--     its events, deliveries and attempts are kept (the audit trail), and
--     its api_key_hash stays taken in the unique index (256 random bits:
--     no new key collides with it).
--
-- Tenants are few (one per customer), so setting updated_at on every row
-- and then NOT NULL is quick. TenantList reads the primary key in id order
-- and skips the deleted rows: no index of its own.

ALTER TABLE tenants
    ADD COLUMN updated_at timestamptz,
    ADD COLUMN deleted_at timestamptz;
UPDATE tenants SET updated_at = created_at;
ALTER TABLE tenants ALTER COLUMN updated_at SET NOT NULL;
