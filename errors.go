package kapsel

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors. Stores, the ingester and the dispatcher return errors that
// wrap these, so callers test with [errors.Is].
var (
	// ErrNotFound: the resource does not exist, was deleted, or belongs to
	// another tenant (a foreign id is indistinguishable from an unknown one).
	ErrNotFound = errors.New("kapsel: not found")
	// ErrDuplicate: a unique constraint was violated (for example a second
	// tenant with the same API key hash).
	ErrDuplicate = errors.New("kapsel: duplicate")
	// ErrIdempotencyConflict: an idempotency key was reused, within its window,
	// for a different body.
	ErrIdempotencyConflict = errors.New("kapsel: idempotency key reused with a different body")
	// ErrLeaseLost: a completion, reschedule or release presented a lease token
	// that no longer owns the event (the lease expired and the event was
	// re-claimed, or it was already completed). Nothing was changed.
	ErrLeaseLost = errors.New("kapsel: lease lost")
	// ErrConflict: an optimistic compare-and-set lost (for example a breaker
	// state saved with a stale version). Nothing was changed.
	ErrConflict = errors.New("kapsel: conflicting concurrent update")
	// ErrInvalid: an argument is malformed.
	ErrInvalid = errors.New("kapsel: invalid argument")
	// ErrUnavailable: the store cannot be reached or is overloaded. Nothing was
	// written; the operation may be retried.
	ErrUnavailable = errors.New("kapsel: storage unavailable")
	// ErrShuttingDown: the component is stopping and takes no new work.
	ErrShuttingDown = errors.New("kapsel: shutting down")
	// ErrIllegalTransition: an event status change that the lifecycle does not
	// allow (see [EventStatus.CanTransitionTo]).
	ErrIllegalTransition = errors.New("kapsel: illegal status transition")
)

// Code is one of Kapsel's documented error codes (docs/api.md#errors). E1xxx codes are
// about a request, E2xxx about a delivery attempt, E3xxx about Kapsel itself.
type Code string

// Request errors.
const (
	CodeSignature          Code = "E1001" // missing or bad signature, or timestamp outside tolerance
	CodeBodyTooLarge       Code = "E1002" // body over the limit
	CodeUnknownSource      Code = "E1003" // unknown, malformed or deleted source id (ingest)
	CodeBadIdempotencyKey  Code = "E1004" // idempotency key is not 1–255 printable ASCII characters
	CodeIdempotencyReused  Code = "E1005" // idempotency key reused with another body
	CodeRateLimited        Code = "E1006" // tenant over its ingest rate
	CodeInvalidURL         Code = "E1007" // invalid destination URL
	CodeInvalidHeader      Code = "E1008" // invalid custom header
	CodeMalformedRequest   Code = "E1009" // malformed request body or parameter
	CodeUnauthenticated    Code = "E1010" // missing or wrong credentials
	CodeNotFound           Code = "E1011" // resource not found (management API)
	CodeAttemptTimeout     Code = "E2001" // attempt timed out
	CodeAttemptConnection  Code = "E2002" // connection refused or reset
	CodeAttemptDNS         Code = "E2003" // DNS resolution failed
	CodeAttemptTLS         Code = "E2004" // TLS handshake or verification failed
	CodeAttemptStatus      Code = "E2005" // destination answered a non-2xx status
	CodeAttemptBlocked     Code = "E2006" // destination blocked by the SSRF guard
	CodeAttemptRedirect    Code = "E2007" // destination answered a redirect, not followed
	CodeStorageUnavailable Code = "E3001" // storage unavailable or overloaded
	CodeInternal           Code = "E3002" // internal error
	CodeShuttingDown       Code = "E3003" // shutting down
	CodeSchemaMismatch     Code = "E3004" // schema version mismatch
)

// CodeInfo describes a [Code]: its HTTP status when it answers a request, and a
// short human title.
type CodeInfo struct {
	Status int
	Title  string
}

// codes is the one table from error codes to HTTP statuses and titles. The
// ingest handler and the management API both answer through it.
var codes = map[Code]CodeInfo{
	CodeSignature:          {http.StatusUnauthorized, "Invalid signature"},
	CodeBodyTooLarge:       {http.StatusRequestEntityTooLarge, "Body too large"},
	CodeUnknownSource:      {http.StatusNotFound, "Unknown source"},
	CodeBadIdempotencyKey:  {http.StatusBadRequest, "Invalid idempotency key"},
	CodeIdempotencyReused:  {http.StatusUnprocessableEntity, "Idempotency key reused with a different body"},
	CodeRateLimited:        {http.StatusTooManyRequests, "Rate limited"},
	CodeInvalidURL:         {http.StatusUnprocessableEntity, "Invalid destination URL"},
	CodeInvalidHeader:      {http.StatusUnprocessableEntity, "Invalid custom header"},
	CodeMalformedRequest:   {http.StatusBadRequest, "Malformed request"},
	CodeUnauthenticated:    {http.StatusUnauthorized, "Unauthenticated"},
	CodeNotFound:           {http.StatusNotFound, "Not found"},
	CodeAttemptTimeout:     {http.StatusGatewayTimeout, "Attempt timed out"},
	CodeAttemptConnection:  {http.StatusBadGateway, "Connection refused or reset"},
	CodeAttemptDNS:         {http.StatusBadGateway, "DNS resolution failed"},
	CodeAttemptTLS:         {http.StatusBadGateway, "TLS failure"},
	CodeAttemptStatus:      {http.StatusBadGateway, "Destination answered non-2xx"},
	CodeAttemptBlocked:     {http.StatusBadGateway, "Destination blocked by the SSRF guard"},
	CodeAttemptRedirect:    {http.StatusBadGateway, "Redirect not followed"},
	CodeStorageUnavailable: {http.StatusServiceUnavailable, "Storage unavailable"},
	CodeInternal:           {http.StatusInternalServerError, "Internal error"},
	CodeShuttingDown:       {http.StatusServiceUnavailable, "Shutting down"},
	CodeSchemaMismatch:     {http.StatusServiceUnavailable, "Schema version mismatch"},
}

// Info returns the code's HTTP status and title. An unknown code reports
// 500 Internal Server Error.
func (c Code) Info() CodeInfo {
	if info, ok := codes[c]; ok {
		return info
	}
	return codes[CodeInternal]
}

// Known reports whether c is one of the documented codes.
func (c Code) Known() bool { _, ok := codes[c]; return ok }

// Error is Kapsel's rich error: a documented [Code], a message that is safe to
// show to the API caller (it never contains secrets or bodies), and the cause.
type Error struct {
	Code   Code
	Detail string
	// RetryAfterSeconds, when positive, is how long the caller should wait before
	// retrying (rate limits, storage unavailability).
	RetryAfterSeconds int
	Err               error
}

// NewError returns an *Error with the given code and a formatted detail.
func NewError(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Detail, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Detail)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns the [Code] of err: the code of the first *Error in its chain,
// or a code derived from the sentinel it wraps, or [CodeInternal].
func CodeOf(err error) Code {
	var ke *Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	case errors.Is(err, ErrIdempotencyConflict):
		return CodeIdempotencyReused
	case errors.Is(err, ErrInvalid):
		return CodeMalformedRequest
	case errors.Is(err, ErrUnavailable):
		return CodeStorageUnavailable
	case errors.Is(err, ErrShuttingDown):
		return CodeShuttingDown
	}
	return CodeInternal
}
