package kapsel

import (
	"context"
	"time"
)

// AttemptStore reads the audit trail; attempts are written by EventComplete.
type AttemptStore interface {
	// AttemptList lists an event's attempts, oldest first. ErrNotFound when
	// the event is not visible to TenantID.
	AttemptList(ctx context.Context, params *AttemptListParams) ([]*Attempt, error)
	// AttemptStats summarises an endpoint's attempts since Since.
	AttemptStats(ctx context.Context, params *AttemptStatsParams) (*AttemptStats, error)
}

// AttemptListParams are the arguments of AttemptList.
type AttemptListParams struct {
	EventID  EventID
	TenantID TenantID
	Limit    int
	// Cursor is the last attempt id of the previous page.
	Cursor AttemptID
}

// AttemptStatsParams are the arguments of AttemptStats.
type AttemptStatsParams struct {
	EndpointID EndpointID
	Since      time.Time
}

// AttemptStats summarise attempts.
type AttemptStats struct {
	Total, Succeeded int64
	// LastSuccessAt and LastFailureAt are zero when there was none, over the
	// endpoint's whole history.
	LastSuccessAt, LastFailureAt time.Time
}
