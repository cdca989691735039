package kapsel

import (
	"slices"
	"strings"
	"time"
)

// SourceState is the state of a [Source].
type SourceState string

// Source states. A paused source refuses ingest with 503 E3001 and
// Retry-After, so that providers keep the webhooks and retry them later.
const (
	SourceActive SourceState = "active"
	SourcePaused SourceState = "paused"
)

// Valid reports whether s is one of the documented states.
func (s SourceState) Valid() bool { return s == SourceActive || s == SourcePaused }

// Source is an inbound door: providers POST webhooks to its ingest URL,
// /ingest/{id}, where its verifier checks them; the events it accepts fan
// out to the endpoints of its tenant subscribed to them.
type Source struct {
	ID       SourceID
	TenantID TenantID
	Name     string
	State    SourceState
	Verifier VerifierConfig
	// EventTypeFrom overrides where the event type is read from; empty
	// takes the scheme's default (docs/ingest.md).
	EventTypeFrom FieldRef
	// IdempotencyKeyFrom names where the idempotency key is read from when
	// the request carries neither an Idempotency-Key header nor the
	// provider's delivery id; empty for none.
	IdempotencyKeyFrom FieldRef
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// Clone returns a copy of s that shares no slice with it.
func (s *Source) Clone() *Source {
	c := *s
	c.Verifier.Secrets = slices.Clone(s.Verifier.Secrets)
	return &c
}

// ValidateConfig checks a source's configuration by the rules every store
// and the front door apply (the front door checks the name): the
// verifier passes [VerifierConfig.Validate], both field references pass
// [FieldRef.Validate] and the state, when set, is valid. Errors are *Error
// values with code E1009 wrapping ErrInvalid, and never contain a secret.
func (s *Source) ValidateConfig() error {
	if err := s.Verifier.Validate(); err != nil {
		return err
	}
	if err := s.EventTypeFrom.Validate(); err != nil {
		return invalid(CodeMalformedRequest, "event_type_from: %s", err.(*Error).Detail)
	}
	if err := s.IdempotencyKeyFrom.Validate(); err != nil {
		return invalid(CodeMalformedRequest, "idempotency_key_from: %s", err.(*Error).Detail)
	}
	if s.State != "" && !s.State.Valid() {
		return invalid(CodeMalformedRequest, "state %q is not one of active, paused", clip(string(s.State), 64))
	}
	return nil
}

// FieldRef names where a value is read from in an inbound request:
// "header:<Field-Name>" for a request header, or "json:<pointer>" for the
// value at an RFC 6901 JSON pointer in a JSON body ("json:/data/type"). The
// value read must be a string (or, for a JSON pointer, a number, written
// as its JSON text). The empty FieldRef reads nothing.
type FieldRef string

// Prefixes of a [FieldRef].
const (
	FieldRefHeader = "header:"
	FieldRefJSON   = "json:"
)

// MaxFieldRefLen is the longest FieldRef, in bytes.
const MaxFieldRefLen = 255

// Header returns the header name r refers to, and whether it refers to one.
func (r FieldRef) Header() (string, bool) {
	name, ok := strings.CutPrefix(string(r), FieldRefHeader)
	return name, ok && name != ""
}

// JSONPointer returns the RFC 6901 pointer r refers to, and whether it
// refers to one.
func (r FieldRef) JSONPointer() (string, bool) {
	p, ok := strings.CutPrefix(string(r), FieldRefJSON)
	return p, ok && p != ""
}

// Validate returns a *Error with code E1009 wrapping ErrInvalid unless r is
// empty, "header:" and a valid HTTP field name, or "json:" and a JSON
// pointer ("/" followed by reference tokens, "~" only as "~0" or "~1").
func (r FieldRef) Validate() error {
	if r == "" {
		return nil
	}
	if len(r) > MaxFieldRefLen {
		return invalid(CodeMalformedRequest, "longer than %d bytes", MaxFieldRefLen)
	}
	if name, ok := strings.CutPrefix(string(r), FieldRefHeader); ok {
		if !ValidHeaderName(name) {
			return invalid(CodeMalformedRequest, "%q is not a valid HTTP field name", clip(name, 64))
		}
		return nil
	}
	if p, ok := strings.CutPrefix(string(r), FieldRefJSON); ok {
		if !strings.HasPrefix(p, "/") {
			return invalid(CodeMalformedRequest, "JSON pointer %q must start with /", clip(p, 64))
		}
		for i := 0; i < len(p); i++ {
			if p[i] == '~' && (i+1 == len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
				return invalid(CodeMalformedRequest, "JSON pointer %q has ~ not followed by 0 or 1", clip(p, 64))
			}
		}
		if SafeText(p) != p {
			return invalid(CodeMalformedRequest, "JSON pointer is not valid UTF-8 text")
		}
		return nil
	}
	return invalid(CodeMalformedRequest, "%q is neither header:<name> nor json:<pointer>", clip(string(r), 64))
}

// LegacySourceID returns the id of the source the 0.1 → 0.2 migration made
// from the 0.1 endpoint id: "src_" and the same ULID. The ingester resolves
// an ingest URL naming a 0.1 endpoint (/ingest/ep_…, handed out to
// providers before the upgrade) to that source, so those URLs keep working
// (docs/operations.md, "Upgrading from 0.1"). Endpoints created since 0.2
// have no such source, so their ids are not ingest URLs.
func LegacySourceID(id EndpointID) SourceID {
	return SourceID(SourceIDPrefix + strings.TrimPrefix(string(id), EndpointIDPrefix))
}
