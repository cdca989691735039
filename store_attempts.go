package kapsel

import (
	"context"
	"time"
)

// AttemptStore reads the audit trail; attempts are written by
// DeliveryComplete.
//
// For store implementers: a role interface of [Store]. Applications do not
// call it to create or change anything; the front door (package service)
// does, after validating.
type AttemptStore interface {
	// AttemptList lists the attempts of one delivery (DeliveryID set) or
	// of all the deliveries of one event (EventID set), oldest first.
	// ErrNotFound when that delivery or event is not visible to TenantID;
	// ErrInvalid unless exactly one of the two is set.
	AttemptList(ctx context.Context, params *AttemptListParams) ([]*Attempt, error)
	// AttemptStats summarises an endpoint's attempts since Since.
	AttemptStats(ctx context.Context, params *AttemptStatsParams) (*AttemptStats, error)
}

// AttemptListParams are the arguments of AttemptList.
type AttemptListParams struct {
	DeliveryID DeliveryID
	EventID    EventID
	TenantID   TenantID
	Limit      int
	// Cursor is the last attempt id of the previous page.
	Cursor AttemptID
	// ResponseBodyLimit, when positive, cuts each ResponseBody to its first
	// ResponseBodyLimit bytes, and ErrorLimit each Error to its first
	// ErrorLimit characters, in the store's read itself: a page then holds
	// at most Limit × (ResponseBodyLimit + 4×ErrorLimit) bytes of them
	// whatever the rows hold. Zero reads them whole (up to MaxResponseBody
	// for a body). A caller that asks for one byte more than it shows
	// learns whether a body was cut.
	ResponseBodyLimit int
	ErrorLimit        int
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
