package kapsel

import (
	"context"
	"time"
)

// BreakerStore keeps circuit breaker state.
//
// For store implementers: a role interface of [Store]. Applications do not
// call it to create or change anything; the front door (package service)
// does, after validating.
type BreakerStore interface {
	// BreakerGet returns the endpoint's breaker state; ErrNotFound when none
	// was saved (a closed breaker).
	BreakerGet(ctx context.Context, params *BreakerGetParams) (*BreakerState, error)
	// BreakerSave writes State if the stored version equals ExpectedVersion
	// (0: no state stored yet) and returns it with Version incremented;
	// ErrConflict otherwise.
	BreakerSave(ctx context.Context, params *BreakerSaveParams) (*BreakerState, error)
	// BreakerDelete forgets the endpoint's breaker state (a reset).
	BreakerDelete(ctx context.Context, params *BreakerDeleteParams) error
}

// BreakerGetParams are the arguments of BreakerGet.
type BreakerGetParams struct {
	EndpointID EndpointID
}

// BreakerSaveParams are the arguments of BreakerSave.
type BreakerSaveParams struct {
	State           *BreakerState
	ExpectedVersion int64
	Now             time.Time
}

// BreakerDeleteParams are the arguments of BreakerDelete.
type BreakerDeleteParams struct {
	EndpointID EndpointID
}
