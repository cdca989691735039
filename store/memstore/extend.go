package memstore

import (
	"context"
	"fmt"

	"github.com/kapsel-dev/kapsel"
)

// DeliveryExtend extends the leases whose token still owns a delivering
// delivery to Now+LeaseDuration, expired or not, under one lock.
func (s *Store) DeliveryExtend(ctx context.Context, params *kapsel.DeliveryExtendParams) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("extending leases: %w: %w", kapsel.ErrUnavailable, err)
	}
	if params.LeaseDuration <= 0 {
		return nil, fmt.Errorf("extending leases: %w: LeaseDuration %v", kapsel.ErrInvalid, params.LeaseDuration)
	}
	until := ts(params.Now.Add(params.LeaseDuration))
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := make([]bool, len(params.Leases))
	for i, l := range params.Leases {
		d, err := s.leased(l.DeliveryID, l.LeaseToken)
		if err != nil || d.Status != kapsel.DeliveryDelivering {
			continue // a failed one was ended by its endpoint's deletion
		}
		d.LeaseExpiresAt = until
		ok[i] = true
	}
	return ok, nil
}
