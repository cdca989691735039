package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/kapsel-dev/kapsel"
)

// extendLease extends one lease (?2, token ?3) to ?1 when the token still
// owns a delivering delivery: a compare-and-set on the token, found by
// primary key.
const extendLease = `UPDATE deliveries SET lease_expires_at = ?1
	WHERE id = ?2 AND status = 'delivering' AND lease_token = ?3`

// DeliveryExtend extends the leases whose token still owns a delivering
// delivery to Now+LeaseDuration, expired or not, in one write transaction.
func (s *Store) DeliveryExtend(ctx context.Context, params *kapsel.DeliveryExtendParams) ([]bool, error) {
	if params.LeaseDuration <= 0 {
		return nil, fmt.Errorf("extending leases: %w: LeaseDuration %v", kapsel.ErrInvalid, params.LeaseDuration)
	}
	ok := make([]bool, len(params.Leases))
	if len(params.Leases) == 0 {
		return ok, nil
	}
	until := params.Now.Add(params.LeaseDuration).UnixMicro()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmts := &stmtCache{tx: tx}
		defer stmts.close()
		st, err := stmts.stmt(ctx, extendLease)
		if err != nil {
			return err
		}
		for i, l := range params.Leases {
			if l.LeaseToken == "" {
				continue
			}
			res, err := st.ExecContext(ctx, until, l.DeliveryID, l.LeaseToken)
			if err != nil {
				return mapError(err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return mapError(err)
			}
			ok[i] = n > 0
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("extending leases: %w", err)
	}
	return ok, nil
}
