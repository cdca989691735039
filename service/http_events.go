package service

import (
	"encoding/base64"
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
	ID             kapsel.EventID   `json:"id"`
	SourceID       *kapsel.SourceID `json:"source_id"`
	Type           string           `json:"type"`
	Channels       []string         `json:"channels"`
	IdempotencyKey string           `json:"idempotency_key"`
	ContentType    string           `json:"content_type"`
	Size           int              `json:"size"`
	CreatedAt      time.Time        `json:"created_at"`
	Deliveries     summaryJSON      `json:"deliveries"`
	Body           *string          `json:"body,omitempty"`
	BodyEncoding   string           `json:"body_encoding,omitempty"`
	// BodyExpired, BodyErasure and BodyErasedAt say whether, why and when
	// the body was erased (retention or expunge).
	BodyExpired  bool       `json:"body_expired"`
	BodyErasure  *string    `json:"body_erasure"`
	BodyErasedAt *time.Time `json:"body_erased_at"`
}

// summaryJSON counts an event's deliveries by status.
type summaryJSON struct {
	Total      int `json:"total"`
	Pending    int `json:"pending"`
	Delivering int `json:"delivering"`
	Delivered  int `json:"delivered"`
	Failed     int `json:"failed"`
}

func toEventJSON(e *kapsel.Event) eventJSON {
	d := e.Deliveries
	out := eventJSON{
		ID: e.ID, Type: e.Type, Channels: append([]string{}, e.Channels...),
		IdempotencyKey: e.IdempotencyKey, ContentType: e.ContentType, Size: e.Size, CreatedAt: e.CreatedAt.UTC(),
		Deliveries: summaryJSON{Total: d.Total, Pending: d.Pending, Delivering: d.Delivering, Delivered: d.Delivered, Failed: d.Failed},
	}
	if e.SourceID != "" {
		src := e.SourceID
		out.SourceID = &src
	}
	if e.BodyErasure != kapsel.BodyKept {
		why, when := string(e.BodyErasure), e.BodyErasedAt.UTC()
		out.BodyExpired, out.BodyErasure, out.BodyErasedAt = true, &why, &when
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
	ID                   kapsel.AttemptID  `json:"id"`
	DeliveryID           kapsel.DeliveryID `json:"delivery_id"`
	EventID              kapsel.EventID    `json:"event_id"`
	EndpointID           kapsel.EndpointID `json:"endpoint_id"`
	Attempt              int               `json:"attempt"`
	Trigger              string            `json:"trigger"`
	StartedAt            time.Time         `json:"started_at"`
	DurationMS           int64             `json:"duration_ms"`
	StatusCode           int               `json:"status_code"`
	ErrorCode            string            `json:"error_code"`
	Error                string            `json:"error"`
	ResponseBody         string            `json:"response_body"`
	ResponseBodyEncoding string            `json:"response_body_encoding"`
	// ResponseBodyTruncated is set when ResponseBody is a preview of a
	// longer stored body (see AttemptBodyPreview).
	ResponseBodyTruncated bool `json:"response_body_truncated"`
}

func toAttemptJSON(la ListedAttempt) attemptJSON {
	at := la.Attempt
	body, enc := encodeBody(at.ResponseBody)
	return attemptJSON{
		ID: at.ID, DeliveryID: at.DeliveryID, EventID: at.EventID, EndpointID: at.EndpointID,
		Attempt: at.Number, Trigger: string(at.Trigger),
		StartedAt: at.StartedAt.UTC(), DurationMS: at.Duration.Milliseconds(),
		StatusCode: at.StatusCode, ErrorCode: string(at.ErrorCode), Error: at.Error,
		ResponseBody: body, ResponseBodyEncoding: enc, ResponseBodyTruncated: la.ResponseBodyTruncated,
	}
}

func eventID(r *http.Request) (kapsel.EventID, error) {
	return pathID(r, "event", kapsel.ParseEventID)
}

// httpListEvents: GET /v1/events?source_id=&type=&limit=&cursor=.
func (s *Service) httpListEvents(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if q.Has("endpoint_id") || q.Has("status") {
		// 0.1's filters: answered, not ignored, so that an old client does
		// not take every event for its endpoint's.
		return invalid("events have no endpoint_id or status filter since 0.2: list their deliveries instead, GET /v1/deliveries (filters endpoint_id, event_id, status)")
	}
	f := EventFilter{SourceID: kapsel.SourceID(q.Get("source_id")), Type: q.Get("type"), ListOptions: o}
	p, err := s.ListEvents(r.Context(), tenantOf(r), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toPageJSON(p, toEventJSON))
	return nil
}

// httpGetEvent: GET /v1/events/{id}[?include=body].
func (s *Service) httpGetEvent(w http.ResponseWriter, r *http.Request) error {
	id, err := eventID(r)
	if err != nil {
		return err
	}
	include := r.URL.Query().Get("include")
	if include != "" && include != "body" {
		return invalid(`include must be "body"`)
	}
	e, err := s.GetEvent(r.Context(), tenantOf(r), id, include == "body")
	if err != nil {
		return err
	}
	out := toEventJSON(e)
	if include == "body" && !out.BodyExpired {
		body, enc := encodeBody(e.Body)
		out.Body, out.BodyEncoding = &body, enc
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// httpListAttempts: GET /v1/events/{id}/attempts[?include=response_body],
// the attempts of all the event's deliveries.
func (s *Service) httpListAttempts(w http.ResponseWriter, r *http.Request) error {
	id, err := eventID(r)
	if err != nil {
		return err
	}
	o, err := attemptListOptions(r)
	if err != nil {
		return err
	}
	p, err := s.ListAttempts(r.Context(), tenantOf(r), id, o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toPageJSON(p, toAttemptJSON))
	return nil
}

// attemptListOptions reads the query of an attempts list: ?limit=,
// ?cursor= and ?include=response_body.
func attemptListOptions(r *http.Request) (AttemptListOptions, error) {
	o, err := listOptions(r)
	if err != nil {
		return AttemptListOptions{}, err
	}
	include := r.URL.Query().Get("include")
	if include != "" && include != "response_body" {
		return AttemptListOptions{}, invalid(`include must be "response_body"`)
	}
	return AttemptListOptions{ListOptions: o, WholeBodies: include != ""}, nil
}

// httpRetryEvent: POST /v1/events/{id}/retry → 202 {"count"}.
func (s *Service) httpRetryEvent(w http.ResponseWriter, r *http.Request) error {
	id, err := eventID(r)
	if err != nil {
		return err
	}
	n, err := s.RetryEvent(r.Context(), tenantOf(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, countJSON{Count: n})
	return nil
}

// httpExpungeEvent: DELETE /v1/events/{id}/body → 200 the event.
func (s *Service) httpExpungeEvent(w http.ResponseWriter, r *http.Request) error {
	id, err := eventID(r)
	if err != nil {
		return err
	}
	e, err := s.ExpungeEvent(r.Context(), tenantOf(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toEventJSON(e))
	return nil
}

// countJSON answers the operations that queue deliveries.
type countJSON struct {
	Count int `json:"count"`
}
