package receiver

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// DefaultMaxSeen is how many handled webhook-ids a [MemorySeen] remembers
// at most, unless told otherwise.
const DefaultMaxSeen = 100_000

var _ SeenStore = (*MemorySeen)(nil)

// MemorySeen is the in-memory [SeenStore]: bounded in time (a record is
// dropped once it expires) and in size (when full, the record closest to
// expiry makes room for the new one). Claims are not counted against the
// size: there is at most one per request in progress. It suits a receiver
// running as one process; its memory is lost on restart, so a delivery
// repeated across a restart is handled again. It is safe for concurrent use.
type MemorySeen struct {
	maxIDs int

	mu       sync.Mutex
	records  map[string]*seenRecord
	byExpiry expiryHeap
	claims   map[string]struct{}
}

type seenRecord struct {
	id      string
	expires time.Time
	index   int // in byExpiry
}

// NewMemorySeen returns an empty MemorySeen that remembers at most maxIDs
// handled ids. Zero or less means DefaultMaxSeen.
func NewMemorySeen(maxIDs int) *MemorySeen {
	if maxIDs <= 0 {
		maxIDs = DefaultMaxSeen
	}
	return &MemorySeen{maxIDs: maxIDs, records: map[string]*seenRecord{}, claims: map[string]struct{}{}}
}

// Claim implements [SeenStore]. It never fails.
func (m *MemorySeen) Claim(_ context.Context, id string, now time.Time) (ClaimStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expireLocked(now)
	if _, ok := m.records[id]; ok {
		return ClaimSeen, nil
	}
	if _, ok := m.claims[id]; ok {
		return ClaimBusy, nil
	}
	m.claims[id] = struct{}{}
	return ClaimAcquired, nil
}

// Commit implements [SeenStore]. It never fails; committing an id that is
// not claimed records it all the same.
func (m *MemorySeen) Commit(_ context.Context, id string, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.claims, id)
	if r, ok := m.records[id]; ok {
		r.expires = expires
		heap.Fix(&m.byExpiry, r.index)
		return nil
	}
	for len(m.records) >= m.maxIDs {
		r := heap.Pop(&m.byExpiry).(*seenRecord)
		delete(m.records, r.id)
	}
	r := &seenRecord{id: id, expires: expires}
	heap.Push(&m.byExpiry, r)
	m.records[id] = r
	return nil
}

// Release implements [SeenStore]. It never fails.
func (m *MemorySeen) Release(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.claims, id)
	return nil
}

// Len returns how many handled ids are remembered, expired ones included
// until the next Claim drops them.
func (m *MemorySeen) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.records)
}

// expireLocked drops the records that expired at or before now.
func (m *MemorySeen) expireLocked(now time.Time) {
	for len(m.byExpiry) > 0 && !m.byExpiry[0].expires.After(now) {
		r := heap.Pop(&m.byExpiry).(*seenRecord)
		delete(m.records, r.id)
	}
}

// expiryHeap orders records by expiry, soonest first.
type expiryHeap []*seenRecord

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *expiryHeap) Push(x any) {
	r := x.(*seenRecord)
	r.index = len(*h)
	*h = append(*h, r)
}
func (h *expiryHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return r
}
