package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/kapsel-dev/kapsel"
)

// DeliveryBackfill creates the missing deliveries of the endpoint for the
// events of its tenant created in [Since, Until) that its subscription
// matches, looking at at most Limit events in id order after Cursor. An
// event that already has a delivery to the endpoint is left alone,
// so repeating a backfill creates nothing twice.
func (s *Store) DeliveryBackfill(ctx context.Context, params *kapsel.DeliveryBackfillParams) (*kapsel.DeliveryBackfillResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("backfilling deliveries: %w: %w", kapsel.ErrUnavailable, err)
	}
	limit := params.BackfillLimit()
	since, until, now := ts(params.Since), ts(params.Until), ts(params.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.endpoint(params.EndpointID, params.TenantID)
	if err != nil {
		return nil, fmt.Errorf("backfilling deliveries of %w", err)
	}
	ep := r.endpoint
	var inRangeEvents []*kapsel.Event
	for _, e := range s.events {
		if e.TenantID == ep.TenantID && e.ID > params.Cursor && inRange(e.CreatedAt, since, until) {
			inRangeEvents = append(inRangeEvents, e)
		}
	}
	slices.SortFunc(inRangeEvents, func(a, b *kapsel.Event) int { return cmp.Compare(a.ID, b.ID) })
	res := &kapsel.DeliveryBackfillResult{}
	if len(inRangeEvents) > limit {
		inRangeEvents = inRangeEvents[:limit]
		res.More, res.Next = true, inRangeEvents[limit-1].ID
	}
	for _, e := range inRangeEvents {
		if ep.Receives(e.Routing()) && s.addDelivery(e, ep.ID, kapsel.TriggerManual, now) {
			res.Created++
		}
	}
	return res, nil
}
