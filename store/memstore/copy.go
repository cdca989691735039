package memstore

import (
	"maps"
	"net/http"
	"slices"

	"github.com/kapsel-dev/kapsel"
)

// The store hands out and keeps only its own copies, so that a caller
// changing a slice or map it passed in or got back never changes stored
// state behind the store's back.

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func copyTenant(t *kapsel.Tenant) *kapsel.Tenant {
	c := *t
	c.APIKeyHash = cloneBytes(t.APIKeyHash)
	return &c
}

func copyEndpoint(e *kapsel.Endpoint) *kapsel.Endpoint {
	c := *e
	c.SigningSecrets = append([]kapsel.SigningSecret(nil), e.SigningSecrets...)
	for i := range c.SigningSecrets {
		c.SigningSecrets[i].ExpiresAt = ts(c.SigningSecrets[i].ExpiresAt)
	}
	if e.Headers != nil {
		c.Headers = maps.Clone(e.Headers)
	}
	c.Subscription = kapsel.Subscription{
		EventTypes: slices.Clone(e.Subscription.EventTypes),
		SourceIDs:  slices.Clone(e.Subscription.SourceIDs),
		Channels:   slices.Clone(e.Subscription.Channels),
	}
	return &c
}

func copySource(src *kapsel.Source) *kapsel.Source { return src.Clone() }

func copyHeader(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	return h.Clone()
}

// copyEvent copies e, with its body only when withBody is set.
func copyEvent(e *kapsel.Event, withBody bool) *kapsel.Event {
	c := *e
	c.Headers = copyHeader(e.Headers)
	c.Channels = slices.Clone(e.Channels)
	c.BodyHash = cloneBytes(e.BodyHash)
	c.Body = nil
	if withBody {
		c.Body = cloneBytes(e.Body)
		if c.Body == nil {
			c.Body = []byte{}
		}
	}
	return &c
}

// copyDelivery copies d, without its Event.
func copyDelivery(d *kapsel.Delivery) *kapsel.Delivery {
	c := *d
	c.Event = nil
	return &c
}

func copyAttempt(a *kapsel.Attempt) *kapsel.Attempt {
	c := *a
	c.ResponseBody = cloneBytes(a.ResponseBody)
	return &c
}

func copyBreaker(b *kapsel.BreakerState) *kapsel.BreakerState {
	c := *b
	return &c
}
