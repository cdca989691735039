package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/kapsel-dev/kapsel"
)

var (
	_ kapsel.Store          = (*Store)(nil)
	_ kapsel.Timekeeper     = (*Store)(nil)
	_ kapsel.RetentionStore = (*Store)(nil)
)

// StoreNow returns the database server's clock (clock_timestamp(): the
// moment the statement reads it, not the start of its transaction), for
// dispatchers on several machines to agree on lease times
// ([kapsel.Timekeeper], docs/delivery.md). One round trip, no table read.
func (s *Store) StoreNow(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := s.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("reading the database's clock: %w", mapError(err))
	}
	return t, nil
}
