package api

import (
	"encoding/base64"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/kapsel-dev/kapsel"
)

// Body encodings of event bodies and attempt response bodies.
const (
	// EncodingText: the body is valid UTF-8 and sent as a JSON string.
	EncodingText = "text"
	// EncodingBase64: the body is not valid UTF-8 and sent in standard
	// base64.
	EncodingBase64 = "base64"
)

// eventJSON is an event on the wire. Body and BodyEncoding are present only
// with ?include=body. Forwarded headers are not returned: providers put
// shared tokens in them (X-Gitlab-Token, for one).
type eventJSON struct {
	ID             kapsel.EventID    `json:"id"`
	EndpointID     kapsel.EndpointID `json:"endpoint_id"`
	Status         string            `json:"status"`
	Attempts       int               `json:"attempts"`
	NextAttemptAt  *time.Time        `json:"next_attempt_at"`
	LastError      string            `json:"last_error"`
	IdempotencyKey string            `json:"idempotency_key"`
	ContentType    string            `json:"content_type"`
	Size           int               `json:"size"`
	CreatedAt      time.Time         `json:"created_at"`
	DeliveredAt    *time.Time        `json:"delivered_at"`
	Body           *string           `json:"body,omitempty"`
	BodyEncoding   string            `json:"body_encoding,omitempty"`
}

func toEventJSON(e *kapsel.Event) eventJSON {
	out := eventJSON{
		ID: e.ID, EndpointID: e.EndpointID, Status: string(e.Status), Attempts: e.Attempts,
		LastError: e.LastError, IdempotencyKey: e.IdempotencyKey, ContentType: e.ContentType,
		Size: e.Size, CreatedAt: e.CreatedAt.UTC(), DeliveredAt: timePtr(e.DeliveredAt),
	}
	// Only a pending event has a next attempt; a delivering one has a lease.
	if e.Status == kapsel.EventPending {
		out.NextAttemptAt = timePtr(e.NextAttemptAt)
	}
	return out
}

// encodeBody returns b as a JSON string value and its encoding.
func encodeBody(b []byte) (string, string) {
	if utf8.Valid(b) {
		return string(b), EncodingText
	}
	return base64.StdEncoding.EncodeToString(b), EncodingBase64
}

// attemptJSON is an attempt on the wire.
type attemptJSON struct {
	ID                   kapsel.AttemptID `json:"id"`
	EventID              kapsel.EventID   `json:"event_id"`
	Attempt              int              `json:"attempt"`
	Trigger              string           `json:"trigger"`
	StartedAt            time.Time        `json:"started_at"`
	DurationMS           int64            `json:"duration_ms"`
	StatusCode           int              `json:"status_code"`
	ErrorCode            string           `json:"error_code"`
	Error                string           `json:"error"`
	ResponseBody         string           `json:"response_body"`
	ResponseBodyEncoding string           `json:"response_body_encoding"`
	// ResponseBodyTruncated is set when ResponseBody is a preview of a
	// longer stored body (lists; see AttemptBodyPreview).
	ResponseBodyTruncated bool `json:"response_body_truncated"`
}

func toAttemptJSON(at *kapsel.Attempt) attemptJSON {
	body, enc := encodeBody(at.ResponseBody)
	return attemptJSON{
		ID: at.ID, EventID: at.EventID, Attempt: at.Number, Trigger: string(at.Trigger),
		StartedAt: at.StartedAt.UTC(), DurationMS: at.Duration.Milliseconds(),
		StatusCode: at.StatusCode, ErrorCode: string(at.ErrorCode), Error: at.Error,
		ResponseBody: body, ResponseBodyEncoding: enc,
	}
}

// eventID parses the {id} path value; malformed ids answer 404.
func eventID(r *http.Request) (kapsel.EventID, error) {
	id, err := kapsel.ParseEventID(r.PathValue("id"))
	if err != nil {
		return "", notFound("event", r.PathValue("id"))
	}
	return id, nil
}

// listEvents: GET /v1/events?endpoint_id=&status=&limit=&cursor=. A
// foreign or unknown endpoint_id answers 404, like every foreign id.
func (a *API) listEvents(w http.ResponseWriter, r *http.Request) error {
	limit, cursor, err := pageParams(r, func(s string) error { _, err := kapsel.ParseEventID(s); return err })
	if err != nil {
		return err
	}
	tenant := tenantFrom(r.Context()).ID
	q := r.URL.Query()
	params := kapsel.EventListParams{TenantID: tenant, Status: kapsel.EventStatus(q.Get("status"))}
	if params.Status != "" && !params.Status.Valid() {
		return badRequest("status must be one of pending, delivering, delivered, failed")
	}
	if s := q.Get("endpoint_id"); s != "" {
		id, err := kapsel.ParseEndpointID(s)
		if err != nil {
			return notFound("endpoint", s)
		}
		if _, err := a.store.EndpointGet(r.Context(), &kapsel.EndpointGetParams{ID: id, TenantID: tenant}); err != nil {
			if errors.Is(err, kapsel.ErrNotFound) {
				return notFound("endpoint", s)
			}
			return err
		}
		params.EndpointID = id
	}
	p, err := list(limit, cursor,
		func(limit int, cursor string) ([]*kapsel.Event, error) {
			params.Limit, params.Cursor = limit, kapsel.EventID(cursor)
			return a.store.EventList(r.Context(), &params)
		},
		func(e *kapsel.Event) string { return string(e.ID) }, toEventJSON)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// getEvent: GET /v1/events/{id}[?include=body].
func (a *API) getEvent(w http.ResponseWriter, r *http.Request) error {
	id, err := eventID(r)
	if err != nil {
		return err
	}
	include := r.URL.Query().Get("include")
	if include != "" && include != "body" {
		return badRequest(`include must be "body"`)
	}
	e, err := a.store.EventGet(r.Context(), &kapsel.EventGetParams{
		ID: id, TenantID: tenantFrom(r.Context()).ID, IncludeBody: include == "body",
	})
	if err != nil {
		if errors.Is(err, kapsel.ErrNotFound) {
			return notFound("event", string(id))
		}
		return err
	}
	out := toEventJSON(e)
	if include == "body" {
		body, enc := encodeBody(e.Body)
		out.Body, out.BodyEncoding = &body, enc
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// retryEvent: POST /v1/events/{id}/retry → 202 with the event. Only a
// delivered or failed event can be retried; a pending or delivering one
// answers 400 E1009.
func (a *API) retryEvent(w http.ResponseWriter, r *http.Request) error {
	id, err := eventID(r)
	if err != nil {
		return err
	}
	e, err := a.store.EventRetry(r.Context(), &kapsel.EventRetryParams{
		ID: id, TenantID: tenantFrom(r.Context()).ID, Now: a.now(),
	})
	switch {
	case errors.Is(err, kapsel.ErrNotFound):
		return notFound("event", string(id))
	case errors.Is(err, kapsel.ErrIllegalTransition):
		return badRequest("event %s is neither delivered nor failed; only finished events can be retried", id)
	case err != nil:
		return err
	}
	a.wake()
	writeJSON(w, http.StatusAccepted, toEventJSON(e))
	return nil
}
