package service

import (
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/kapsel-dev/kapsel"
)

// sendRequest is the body of POST /v1/events (SPEC §4b): a JSON payload,
// or a base64 body with its content type.
type sendRequest struct {
	Type string `json:"type"`
	// Payload is any JSON value, stored as its bytes as sent.
	Payload     json.RawMessage      `json:"payload"`
	Body        *string              `json:"body"`
	ContentType string               `json:"content_type"`
	Channels    []string             `json:"channels"`
	EndpointIDs *[]kapsel.EndpointID `json:"endpoint_ids"`
	// IdempotencyKey may also come as the Idempotency-Key header (the two
	// must agree when both are sent).
	IdempotencyKey string `json:"idempotency_key"`
}

// sendResponse is the answer of POST /v1/events.
type sendResponse struct {
	ID         kapsel.EventID `json:"id"`
	Deliveries int            `json:"deliveries"`
	Duplicate  bool           `json:"duplicate"`
}

// httpSend: POST /v1/events → 202 {"id","deliveries","duplicate":false},
// or 200 with "duplicate":true and Idempotent-Replayed: true for a key
// already used with the same body.
func (s *Service) httpSend(w http.ResponseWriter, r *http.Request) error {
	var req sendRequest
	if err := decodeLimited(w, r, &req, false, s.sendRequestLimit()); err != nil {
		return err
	}
	in := Send{Type: req.Type, Channels: req.Channels, ContentType: req.ContentType, IdempotencyKey: req.IdempotencyKey,
		Trace: kapsel.TraceContextFromHeader(r.Header)}
	switch h := r.Header.Get("Idempotency-Key"); {
	case in.IdempotencyKey == "":
		in.IdempotencyKey = h
	case h != "" && h != in.IdempotencyKey:
		return invalid("the Idempotency-Key header and idempotency_key differ; send one of them")
	}
	if req.EndpointIDs != nil {
		in.EndpointIDs = *req.EndpointIDs
		if in.EndpointIDs == nil {
			in.EndpointIDs = []kapsel.EndpointID{}
		}
	}
	switch {
	case req.Payload != nil && req.Body != nil:
		return invalid("set payload or body, not both")
	case req.Payload != nil:
		in.Body = req.Payload
		if in.ContentType == "" {
			in.ContentType = "application/json"
		}
	case req.Body != nil:
		b, err := base64.StdEncoding.DecodeString(*req.Body)
		if err != nil {
			return invalid("body must be standard base64 (for a JSON body, send payload instead)")
		}
		in.Body = b
		if in.ContentType == "" {
			in.ContentType = "application/octet-stream"
		}
	default:
		return invalid("payload or body is required")
	}
	res, err := s.Send(r.Context(), tenantOf(r), in)
	if err != nil {
		return err
	}
	status := http.StatusAccepted
	if res.Duplicate {
		status = http.StatusOK
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, status, sendResponse{ID: res.Event.ID, Deliveries: res.Deliveries, Duplicate: res.Duplicate})
	return nil
}
