package kapsel

import "time"

// Tenant owns sources, endpoints and their events. Its API key is stored only as a
// SHA-256 hash; the key itself is shown once, at creation.
type Tenant struct {
	ID   TenantID
	Name string
	// APIKeyHash is the SHA-256 of the tenant's API key.
	APIKeyHash []byte
	// RateLimit is the tenant's ingest rate in events per second; 0 means
	// unlimited.
	RateLimit float64
	// RateBurst is the number of events the tenant may ingest at once above
	// its rate; 0 means the same as RateLimit (rounded up, at least 1).
	RateBurst int
	CreatedAt time.Time
	// UpdatedAt is CreatedAt until TenantUpdate changes the tenant.
	UpdatedAt time.Time
}
