package receiver

import (
	"context"
	"time"
)

// SeenStore remembers which webhook-ids a receiver has handled, so that a
// repeated delivery is answered without being handled twice. Handling an id
// is a claim followed by either a commit (the handler succeeded: remember
// the id) or a release (it failed: forget the claim, so that the sender's
// retry is handled again).
//
// Implementations must be safe for concurrent use. A store shared by
// several processes should let a claim lapse after a lease longer than the
// longest handling, so that a process that dies mid-handling does not keep
// an id claimed forever; [MemorySeen] needs no lease, since its claims die
// with the process.
type SeenStore interface {
	// Claim reserves id for one handling. It returns ClaimAcquired when id
	// is neither remembered (or its record expired before now) nor claimed;
	// the caller must then call Commit or Release. It returns ClaimSeen when
	// a record of id has not expired, and ClaimBusy when another handling
	// holds the claim. An error means the store could not answer; nothing
	// was claimed.
	Claim(ctx context.Context, id string, now time.Time) (ClaimStatus, error)
	// Commit turns the claim on id into a record that lasts until expires.
	// An error means the id may not be remembered; the claim is then still
	// held and the caller releases it.
	Commit(ctx context.Context, id string, expires time.Time) error
	// Release drops the claim on id without remembering it. Releasing an id
	// that is not claimed is not an error.
	Release(ctx context.Context, id string) error
}

// ClaimStatus is the answer of [SeenStore.Claim].
type ClaimStatus int

// Answers of [SeenStore.Claim].
const (
	// ClaimAcquired: the id is new and now claimed by the caller.
	ClaimAcquired ClaimStatus = iota + 1
	// ClaimSeen: the id was handled successfully and is still remembered.
	ClaimSeen
	// ClaimBusy: another handling of the id is in progress.
	ClaimBusy
)

// String returns "acquired", "seen" or "busy".
func (s ClaimStatus) String() string {
	switch s {
	case ClaimAcquired:
		return "acquired"
	case ClaimSeen:
		return "seen"
	case ClaimBusy:
		return "busy"
	}
	return "unknown"
}
