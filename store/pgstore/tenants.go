package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
)

const tenantColumns = `id, name, api_key_hash, rate_limit, rate_burst, created_at, updated_at`

// liveTenant is the condition of every tenant read and write: not deleted
// (migration 0006).
const liveTenant = `deleted_at IS NULL`

// lockLiveTenant is the FROM clause of the inserts of a tenant's sources and
// endpoints: the live tenant $2, locked FOR SHARE. That lock conflicts with
// the FOR NO KEY UPDATE that TenantDelete's UPDATE of the row takes (the
// foreign key's own FOR KEY SHARE does not), so the two serialise: an
// insert waits for a delete in progress and then finds the tenant deleted
// (the lock re-reads the row; no row: ErrNotFound), and a delete waits for
// an insert in progress and then, in its next statement, sees and deletes
// what it inserted. Concurrent inserts share the lock.
const lockLiveTenant = `FROM tenants WHERE id = $2 AND ` + liveTenant + ` FOR SHARE`

func scanTenant(row pgx.Row) (*kapsel.Tenant, error) {
	var t kapsel.Tenant
	if err := row.Scan(&t.ID, &t.Name, &t.APIKeyHash, &t.RateLimit, &t.RateBurst, &t.CreatedAt, &t.UpdatedAt); err != nil {
		return nil, err
	}
	return &t, nil
}

// TenantInsert creates a tenant; ErrDuplicate when the API key hash is taken
// (the unique constraint on api_key_hash decides; a deleted tenant's hash
// stays taken).
func (s *Store) TenantInsert(ctx context.Context, params *kapsel.TenantInsertParams) (*kapsel.Tenant, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("inserting tenant: %w", err)
	}
	t, err := scanTenant(s.pool.QueryRow(ctx, `
		INSERT INTO tenants (id, name, api_key_hash, rate_limit, rate_burst, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		RETURNING `+tenantColumns,
		kapsel.NewTenantID(), kapsel.SafeText(params.Name), params.APIKeyHash, params.RateLimit, params.RateBurst, micro(params.Now)))
	if err != nil {
		return nil, fmt.Errorf("inserting tenant: %w", mapError(err))
	}
	return t, nil
}

// TenantGet returns the tenant; ErrNotFound when there is none or it was
// deleted.
func (s *Store) TenantGet(ctx context.Context, params *kapsel.TenantGetParams) (*kapsel.Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = $1 AND `+liveTenant, params.ID))
	if err != nil {
		return nil, fmt.Errorf("getting tenant %s: %w", params.ID, mapError(err))
	}
	return t, nil
}

// TenantGetByAPIKey returns the tenant owning the API key hash; ErrNotFound
// when none does or its owner was deleted.
func (s *Store) TenantGetByAPIKey(ctx context.Context, params *kapsel.TenantGetByAPIKeyParams) (*kapsel.Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE api_key_hash = $1 AND `+liveTenant,
		params.APIKeyHash))
	if err != nil {
		return nil, fmt.Errorf("getting tenant by api key: %w", mapError(err))
	}
	return t, nil
}

// TenantRotateAPIKey replaces the tenant's API key hash in one UPDATE; the
// unique constraint on api_key_hash refuses another tenant's hash.
func (s *Store) TenantRotateAPIKey(ctx context.Context, params *kapsel.TenantRotateAPIKeyParams) (*kapsel.Tenant, error) {
	if len(params.APIKeyHash) == 0 {
		return nil, fmt.Errorf("rotating tenant api key: %w: api key hash is required", kapsel.ErrInvalid)
	}
	t, err := scanTenant(s.pool.QueryRow(ctx, `UPDATE tenants SET api_key_hash = $1 WHERE id = $2 AND `+liveTenant+`
		RETURNING `+tenantColumns,
		params.APIKeyHash, params.ID))
	if err != nil {
		return nil, fmt.Errorf("rotating tenant api key %s: %w", params.ID, mapError(err))
	}
	return t, nil
}

// TenantList lists the live tenants in id order, after Cursor: a range
// scan of the primary key that skips the deleted rows.
func (s *Store) TenantList(ctx context.Context, params *kapsel.TenantListParams) ([]*kapsel.Tenant, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+tenantColumns+` FROM tenants
		WHERE `+liveTenant+` AND id > $1
		ORDER BY id LIMIT $2`,
		kapsel.SafeText(string(params.Cursor)), kapsel.PageLimit(params.Limit))
	if err != nil {
		return nil, fmt.Errorf("listing tenants: %w", mapError(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kapsel.Tenant, error) { return scanTenant(r) })
	if err != nil {
		return nil, fmt.Errorf("listing tenants: %w", mapError(err))
	}
	return out, nil
}

// TenantUpdate sets the tenant's name and rate limit, with updated_at =
// Now, in one UPDATE. ErrNotFound as TenantGet.
func (s *Store) TenantUpdate(ctx context.Context, params *kapsel.TenantUpdateParams) (*kapsel.Tenant, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("updating tenant %s: %w", params.ID, err)
	}
	t, err := scanTenant(s.pool.QueryRow(ctx, `
		UPDATE tenants SET name = $2, rate_limit = $3, rate_burst = $4, updated_at = $5
		WHERE id = $1 AND `+liveTenant+`
		RETURNING `+tenantColumns,
		params.ID, kapsel.SafeText(params.Name), params.RateLimit, params.RateBurst, micro(params.Now)))
	if err != nil {
		return nil, fmt.Errorf("updating tenant %s: %w", params.ID, mapError(err))
	}
	return t, nil
}

// TenantDelete deletes the tenant softly, with its live sources and
// endpoints, in one transaction. ErrNotFound as TenantGet.
//
//  1. The tenant's lock is taken, exclusive (see tenant_lock.go), as
//     EndpointDelete takes it: that waits for every insert, retry, replay
//     and backfill of the tenant in flight, and makes later ones wait for
//     this commit and then find the tenant deleted (an insert's row gets
//     ErrNotFound) or its endpoints gone.
//  2. The tenant row is locked FOR UPDATE and marked deleted: a concurrent
//     SourceInsert or EndpointInsert for the tenant either committed
//     before, and the statements below see what it made, or waits and then
//     finds the tenant deleted (see lockLiveTenant). A concurrent
//     TenantDelete waits too, and then finds nothing to delete. FOR UPDATE
//     rather than the UPDATE's own FOR NO KEY UPDATE, for inserts in
//     REPEATABLE READ transactions (see liveTenantsSQL).
//  3. The tenant's live endpoints are locked FOR UPDATE in id order, then
//     their unfinished deliveries are ended in one statement, locked in
//     id order (endLiveDeliveriesSQL,
//     whose snapshot sees what the writes that step 1 waited for created:
//     no pending delivery survives), and the endpoints and sources are
//     marked deleted: EndpointDelete's steps, for every endpoint.
func (s *Store) TenantDelete(ctx context.Context, params *kapsel.TenantDeleteParams) error {
	now := micro(params.Now)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(lockTenantSQL, params.ID)
		b.Queue(`WITH locked AS (SELECT id FROM tenants WHERE id = $1 AND `+liveTenant+` FOR UPDATE)
			UPDATE tenants t SET deleted_at = $2 FROM locked WHERE t.id = locked.id RETURNING t.id`, params.ID, now)
		b.Queue(`SELECT id FROM endpoints WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY id FOR UPDATE`, params.ID)
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		var id kapsel.TenantID
		if err := br.QueryRow().Scan(&id); err != nil {
			return err
		}
		rows, _ := br.Query()
		endpoints, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if err := br.Close(); err != nil {
			return err
		}
		b = &pgx.Batch{}
		if len(endpoints) > 0 {
			b.Queue(endLiveDeliveriesSQL, endpoints, kapsel.LastErrorEndpointDeleted, nil) // no guard: the tenant's endpoints, locked above
			b.Queue(`UPDATE endpoints SET deleted_at = $2, updated_at = $2 WHERE id = ANY ($1)`, endpoints, now)
		}
		b.Queue(`UPDATE sources SET deleted_at = $2, updated_at = $2 WHERE tenant_id = $1 AND deleted_at IS NULL`, id, now)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("deleting tenant %s: %w", params.ID, mapError(err))
	}
	return nil
}
