package service

import (
	"context"
	"net/http"
	"time"

	"github.com/kapsel-dev/kapsel"
)

func endpointID(r *http.Request) (kapsel.EndpointID, error) {
	return pathID(r, "endpoint", kapsel.ParseEndpointID)
}

// httpCreateEndpoint: POST /v1/endpoints → 201 with the signing secret, once.
func (s *Service) httpCreateEndpoint(w http.ResponseWriter, r *http.Request) error {
	var req endpointRequest
	if err := s.decode(w, r, &req, false); err != nil {
		return err
	}
	u, err := req.update()
	if err != nil {
		return err
	}
	in := EndpointCreate{
		RetryPolicy: u.RetryPolicy, Headers: u.Headers, EventTypes: u.EventTypes, SourceIDs: u.SourceIDs, Channels: u.Channels,
	}
	if u.Name != nil {
		in.Name = *u.Name
	}
	if u.URL != nil {
		in.URL = *u.URL
	}
	if u.Timeout != nil {
		in.Timeout = *u.Timeout
	}
	if req.SigningSecret != nil {
		if *req.SigningSecret == "" {
			return invalid("signing_secret must not be empty; omit it to have one generated")
		}
		in.SigningSecret = *req.SigningSecret
	}
	e, secret, err := s.CreateEndpoint(r.Context(), tenantOf(r), in)
	if err != nil {
		return err
	}
	out := toEndpointJSON(e)
	out.SigningSecret = secret
	w.Header().Set("Location", "/v1/endpoints/"+string(e.ID))
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// httpListEndpoints: GET /v1/endpoints.
func (s *Service) httpListEndpoints(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	p, err := s.ListEndpoints(r.Context(), tenantOf(r), o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toPageJSON(p, toEndpointJSON))
	return nil
}

// httpGetEndpoint: GET /v1/endpoints/{id}.
func (s *Service) httpGetEndpoint(w http.ResponseWriter, r *http.Request) error {
	return s.answerEndpoint(w, r, s.GetEndpoint)
}

// httpPauseEndpoint: POST /v1/endpoints/{id}/pause.
func (s *Service) httpPauseEndpoint(w http.ResponseWriter, r *http.Request) error {
	return s.answerEndpoint(w, r, s.PauseEndpoint)
}

// httpResumeEndpoint: POST /v1/endpoints/{id}/resume.
func (s *Service) httpResumeEndpoint(w http.ResponseWriter, r *http.Request) error {
	return s.answerEndpoint(w, r, s.ResumeEndpoint)
}

// answerEndpoint runs an operation on the endpoint {id} and answers it.
func (s *Service) answerEndpoint(w http.ResponseWriter, r *http.Request,
	op func(ctx context.Context, tenant kapsel.TenantID, id kapsel.EndpointID) (*kapsel.Endpoint, error),
) error {
	id, err := endpointID(r)
	if err != nil {
		return err
	}
	e, err := op(r.Context(), tenantOf(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toEndpointJSON(e))
	return nil
}

// httpUpdateEndpoint: PATCH /v1/endpoints/{id}. Present fields replace the
// stored ones whole; the signing secret changes only by rotation.
func (s *Service) httpUpdateEndpoint(w http.ResponseWriter, r *http.Request) error {
	id, err := endpointID(r)
	if err != nil {
		return err
	}
	var req endpointRequest
	if err := s.decode(w, r, &req, false); err != nil {
		return err
	}
	if req.SigningSecret != nil {
		return invalid("signing_secret cannot be patched; use POST /v1/endpoints/{id}/rotate-signing-secret")
	}
	u, err := req.update()
	if err != nil {
		return err
	}
	e, err := s.UpdateEndpoint(r.Context(), tenantOf(r), id, u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toEndpointJSON(e))
	return nil
}

// httpDeleteEndpoint: DELETE /v1/endpoints/{id} → 204.
func (s *Service) httpDeleteEndpoint(w http.ResponseWriter, r *http.Request) error {
	id, err := endpointID(r)
	if err != nil {
		return err
	}
	if err := s.DeleteEndpoint(r.Context(), tenantOf(r), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// rotateRequest is the body of rotate-signing-secret.
type rotateRequest struct {
	// GracePeriodS is how long the previous secret keeps signing, in
	// seconds; absent = DefaultGracePeriod, 0 = it stops at once.
	GracePeriodS *int64 `json:"grace_period_s"`
}

// rotateResponse shows the new secret, once.
type rotateResponse struct {
	SigningSecret string `json:"signing_secret"`
	// PreviousExpiresAt is when the previous secret stops signing; null when
	// it stopped at once.
	PreviousExpiresAt *time.Time `json:"previous_expires_at"`
}

// httpRotateSigningSecret: POST /v1/endpoints/{id}/rotate-signing-secret.
func (s *Service) httpRotateSigningSecret(w http.ResponseWriter, r *http.Request) error {
	id, err := endpointID(r)
	if err != nil {
		return err
	}
	var req rotateRequest
	if err := s.decode(w, r, &req, true); err != nil {
		return err
	}
	var rot Rotation
	if rot.Grace, err = duration(req.GracePeriodS, time.Second, "grace_period_s"); err != nil {
		return err
	}
	secret, expires, err := s.RotateSigningSecret(r.Context(), tenantOf(r), id, rot)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rotateResponse{SigningSecret: secret, PreviousExpiresAt: timePtr(expires)})
	return nil
}

// healthJSON is the body of GET /v1/endpoints/{id}/health.
type healthJSON struct {
	EndpointID     kapsel.EndpointID `json:"endpoint_id"`
	State          string            `json:"state"`
	DisabledReason *string           `json:"disabled_reason"`
	Breaker        breakerJSON       `json:"breaker"`
	// WindowS is the period, in seconds, of Attempts, Succeeded and
	// SuccessRate.
	WindowS   int64 `json:"window_s"`
	Attempts  int64 `json:"attempts"`
	Succeeded int64 `json:"succeeded"`
	// SuccessRate is Succeeded/Attempts; null when there were no attempts.
	SuccessRate   *float64   `json:"success_rate"`
	LastSuccessAt *time.Time `json:"last_success_at"`
	LastFailureAt *time.Time `json:"last_failure_at"`
}

// breakerJSON is an endpoint's circuit breaker as stored.
type breakerJSON struct {
	State        string     `json:"state"`
	OpenUntil    *time.Time `json:"open_until"`
	Trips        int        `json:"trips"`
	FailingSince *time.Time `json:"failing_since"`
}

// httpEndpointHealth: GET /v1/endpoints/{id}/health.
func (s *Service) httpEndpointHealth(w http.ResponseWriter, r *http.Request) error {
	id, err := endpointID(r)
	if err != nil {
		return err
	}
	h, err := s.EndpointHealth(r.Context(), tenantOf(r), id)
	if err != nil {
		return err
	}
	ep := toEndpointJSON(h.Endpoint)
	out := healthJSON{
		EndpointID: id, State: ep.State, DisabledReason: ep.DisabledReason,
		Breaker: breakerJSON{
			State: string(h.Breaker.Status), OpenUntil: timePtr(h.Breaker.OpenUntil), Trips: h.Breaker.Trips,
			FailingSince: timePtr(h.Breaker.FailingSince),
		},
		WindowS:  int64(h.Window / time.Second),
		Attempts: h.Attempts.Total, Succeeded: h.Attempts.Succeeded,
		LastSuccessAt: timePtr(h.Attempts.LastSuccessAt), LastFailureAt: timePtr(h.Attempts.LastFailureAt),
	}
	if rate, ok := h.SuccessRate(); ok {
		out.SuccessRate = &rate
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// replayRequest is the body of POST /v1/endpoints/{id}/replay.
type replayRequest struct {
	Status string     `json:"status"`
	Since  *time.Time `json:"since"`
	Until  *time.Time `json:"until"`
}

// httpReplayEndpoint: POST /v1/endpoints/{id}/replay → 202 {"count"}.
func (s *Service) httpReplayEndpoint(w http.ResponseWriter, r *http.Request) error {
	id, err := endpointID(r)
	if err != nil {
		return err
	}
	var req replayRequest
	if err := s.decode(w, r, &req, false); err != nil {
		return err
	}
	rp := Replay{Status: kapsel.DeliveryStatus(req.Status)}
	if req.Since != nil {
		rp.Since = *req.Since
	}
	if req.Until != nil {
		rp.Until = *req.Until
	}
	n, err := s.ReplayEndpoint(r.Context(), tenantOf(r), id, rp)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, countJSON{Count: n})
	return nil
}

// backfillRequest is the body of POST /v1/endpoints/{id}/backfill.
type backfillRequest struct {
	Since  *time.Time      `json:"since"`
	Until  *time.Time      `json:"until"`
	Cursor *kapsel.EventID `json:"cursor"`
}

// backfillResponse is its answer: count, and where to continue when the
// range held more events than one call looks at (the request again, with
// cursor = next_cursor).
type backfillResponse struct {
	Count      int             `json:"count"`
	HasMore    bool            `json:"has_more"`
	NextCursor *kapsel.EventID `json:"next_cursor"`
}

// httpBackfillEndpoint: POST /v1/endpoints/{id}/backfill → 202 {"count"}.
func (s *Service) httpBackfillEndpoint(w http.ResponseWriter, r *http.Request) error {
	id, err := endpointID(r)
	if err != nil {
		return err
	}
	var req backfillRequest
	if err := s.decode(w, r, &req, true); err != nil {
		return err
	}
	var b Backfill
	if req.Since != nil {
		b.Since = *req.Since
	}
	if req.Until != nil {
		b.Until = *req.Until
	}
	if req.Cursor != nil {
		b.Cursor = *req.Cursor
	}
	res, err := s.BackfillEndpoint(r.Context(), tenantOf(r), id, b)
	if err != nil {
		return err
	}
	out := backfillResponse{Count: res.Created, HasMore: res.More}
	if res.More {
		out.NextCursor = &res.Next
	}
	writeJSON(w, http.StatusAccepted, out)
	return nil
}
