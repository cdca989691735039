package memstore

import (
	"context"
	"fmt"
	"iter"
	"slices"

	"github.com/kapsel-dev/kapsel"
)

// AttemptList lists the attempts of one delivery, or of all the deliveries
// of one event, oldest first (attempt ids grow with time, so id order is
// recording order).
func (s *Store) AttemptList(ctx context.Context, params *kapsel.AttemptListParams) ([]*kapsel.Attempt, error) {
	if (params.DeliveryID == "") == (params.EventID == "") {
		return nil, fmt.Errorf("listing attempts: %w: exactly one of DeliveryID and EventID must be set", kapsel.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var list iter.Seq[*kapsel.Attempt]
	if params.DeliveryID != "" {
		if _, err := s.delivery(params.DeliveryID, params.TenantID); err != nil {
			return nil, fmt.Errorf("listing attempts of %w", err)
		}
		list = slices.Values(s.attempts[params.DeliveryID])
	} else {
		if _, err := s.event(params.EventID, params.TenantID); err != nil {
			return nil, fmt.Errorf("listing attempts of %w", err)
		}
		list = func(yield func(*kapsel.Attempt) bool) {
			for _, d := range s.byEvent[params.EventID] {
				for _, a := range s.attempts[d.ID] {
					if !yield(a) {
						return
					}
				}
			}
		}
	}
	return page(list, func(a *kapsel.Attempt) kapsel.AttemptID { return a.ID }, params.Cursor, params.Limit,
		func(a *kapsel.Attempt) *kapsel.Attempt {
			return cutAttempt(a, params.ResponseBodyLimit, params.ErrorLimit)
		}), nil
}

// cutAttempt copies a with its response body cut to bodyLimit bytes and its
// error to errorLimit characters (a zero limit keeps it whole), copying no
// more of the body than it keeps.
func cutAttempt(a *kapsel.Attempt, bodyLimit, errorLimit int) *kapsel.Attempt {
	c := *a
	body := a.ResponseBody
	if bodyLimit > 0 && len(body) > bodyLimit {
		body = body[:bodyLimit]
	}
	c.ResponseBody = cloneBytes(body)
	if errorLimit > 0 {
		n := 0
		for i := range c.Error { // i is the byte offset of each character
			if n == errorLimit {
				c.Error = c.Error[:i]
				break
			}
			n++
		}
	}
	return &c
}

// AttemptStats summarises an endpoint's attempts started at or after Since;
// LastSuccessAt and LastFailureAt cover its whole history.
func (s *Store) AttemptStats(ctx context.Context, params *kapsel.AttemptStatsParams) (*kapsel.AttemptStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	since := ts(params.Since)
	st := &kapsel.AttemptStats{}
	for _, list := range s.attempts {
		for _, a := range list {
			if a.EndpointID != params.EndpointID {
				continue
			}
			ok := a.Succeeded()
			if !a.StartedAt.Before(since) {
				st.Total++
				if ok {
					st.Succeeded++
				}
			}
			last := &st.LastFailureAt
			if ok {
				last = &st.LastSuccessAt
			}
			if a.StartedAt.After(*last) {
				*last = a.StartedAt
			}
		}
	}
	return st, nil
}
