package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// setState answers the endpoint after changing its state.
func (a *API) setState(w http.ResponseWriter, r *http.Request, e *kapsel.Endpoint, state kapsel.EndpointState) error {
	updated, err := a.store.EndpointSetState(r.Context(), &kapsel.EndpointSetStateParams{
		ID: e.ID, TenantID: e.TenantID, State: state, Now: a.now(),
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toEndpointJSON(updated))
	return nil
}

// pauseEndpoint: POST /v1/endpoints/{id}/pause. Events keep being accepted
// and wait until the endpoint is resumed.
func (a *API) pauseEndpoint(w http.ResponseWriter, r *http.Request) error {
	e, err := a.getOwnEndpoint(r)
	if err != nil {
		return err
	}
	return a.setState(w, r, e, kapsel.EndpointPaused)
}

// resumeEndpoint: POST /v1/endpoints/{id}/resume. It also re-enables a
// disabled endpoint and resets its circuit breaker, then wakes the
// dispatcher for the waiting events. Ownership is checked before the
// breaker is touched.
func (a *API) resumeEndpoint(w http.ResponseWriter, r *http.Request) error {
	e, err := a.getOwnEndpoint(r)
	if err != nil {
		return err
	}
	if err := a.cfg.Breakers.Reset(r.Context(), e.ID); err != nil && !errors.Is(err, kapsel.ErrNotFound) {
		return err
	}
	if err := a.setState(w, r, e, kapsel.EndpointActive); err != nil {
		return err
	}
	a.wake()
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

// rotateSigningSecret: POST /v1/endpoints/{id}/rotate-signing-secret. The
// new secret signs from now on; during the grace period deliveries carry
// the previous one's signature too (at most kapsel.MaxSigningSecrets in
// all, the oldest dropped). The rotation is one store operation
// (EndpointRotateSecret), so no concurrent PATCH or rotation can undo it
// once it is answered (SPEC I8).
func (a *API) rotateSigningSecret(w http.ResponseWriter, r *http.Request) error {
	id, err := endpointID(r)
	if err != nil {
		return err
	}
	var req rotateRequest
	if err := a.decode(w, r, &req, true); err != nil {
		return err
	}
	grace := DefaultGracePeriod
	if req.GracePeriodS != nil {
		if *req.GracePeriodS < 0 || *req.GracePeriodS > int64(MaxGracePeriod/time.Second) {
			return badRequest("grace_period_s must be from 0 to %d", int64(MaxGracePeriod/time.Second))
		}
		grace = time.Duration(*req.GracePeriodS) * time.Second
	}
	now := a.now()
	secret := NewSigningSecret()
	_, err = a.store.EndpointRotateSecret(r.Context(), &kapsel.EndpointRotateSecretParams{
		ID: id, TenantID: tenantFrom(r.Context()).ID, Secret: secret, Grace: grace, Now: now,
	})
	if errors.Is(err, kapsel.ErrNotFound) {
		return notFound("endpoint", string(id))
	}
	if err != nil {
		return err
	}
	out := rotateResponse{SigningSecret: secret}
	if grace > 0 {
		t := now.Add(grace).UTC().Truncate(time.Microsecond)
		out.PreviousExpiresAt = &t
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// healthResponse is the body of GET /v1/endpoints/{id}/health.
type healthResponse struct {
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

// endpointHealth: GET /v1/endpoints/{id}/health.
func (a *API) endpointHealth(w http.ResponseWriter, r *http.Request) error {
	e, err := a.getOwnEndpoint(r)
	if err != nil {
		return err
	}
	now := a.now()
	out := toEndpointJSON(e)
	h := healthResponse{
		EndpointID: e.ID, State: out.State, DisabledReason: out.DisabledReason,
		Breaker: breakerJSON{State: string(kapsel.BreakerClosed)},
		WindowS: int64(a.cfg.HealthWindow / time.Second),
	}
	b, err := a.store.BreakerGet(r.Context(), &kapsel.BreakerGetParams{EndpointID: e.ID})
	switch {
	case err == nil:
		h.Breaker = breakerJSON{
			State: string(b.Status), OpenUntil: timePtr(b.OpenUntil), Trips: b.Trips,
			FailingSince: timePtr(b.FailingSince),
		}
	case !errors.Is(err, kapsel.ErrNotFound):
		return err
	}
	st, err := a.store.AttemptStats(r.Context(), &kapsel.AttemptStatsParams{EndpointID: e.ID, Since: now.Add(-a.cfg.HealthWindow)})
	if err != nil {
		return err
	}
	h.Attempts, h.Succeeded = st.Total, st.Succeeded
	if st.Total > 0 {
		rate := float64(st.Succeeded) / float64(st.Total)
		h.SuccessRate = &rate
	}
	h.LastSuccessAt, h.LastFailureAt = timePtr(st.LastSuccessAt), timePtr(st.LastFailureAt)
	writeJSON(w, http.StatusOK, h)
	return nil
}

// timePtr returns nil for the zero time, so that JSON says null.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// replayRequest is the body of POST /v1/endpoints/{id}/replay.
type replayRequest struct {
	Status string     `json:"status"`
	Since  *time.Time `json:"since"`
	Until  *time.Time `json:"until"`
}

// replayEndpoint: POST /v1/endpoints/{id}/replay → 202 {"count"}. Every
// event of the endpoint with the status, created in [since, until), is
// queued again for a manual attempt with the same webhook-id.
func (a *API) replayEndpoint(w http.ResponseWriter, r *http.Request) error {
	e, err := a.getOwnEndpoint(r)
	if err != nil {
		return err
	}
	var req replayRequest
	if err := a.decode(w, r, &req, false); err != nil {
		return err
	}
	status := kapsel.EventStatus(req.Status)
	if status != kapsel.EventFailed && status != kapsel.EventDelivered {
		return badRequest(`status must be "failed" or "delivered"`)
	}
	params := &kapsel.EventReplayParams{TenantID: e.TenantID, EndpointID: e.ID, Status: status, Now: a.now()}
	if req.Since != nil {
		params.Since = *req.Since
	}
	if req.Until != nil {
		params.Until = *req.Until
	}
	if !params.Since.IsZero() && !params.Until.IsZero() && !params.Since.Before(params.Until) {
		return badRequest("since must be before until")
	}
	n, err := a.store.EventReplay(r.Context(), params)
	if err != nil {
		return err
	}
	if n > 0 {
		a.wake()
	}
	writeJSON(w, http.StatusAccepted, map[string]int{"count": n})
	return nil
}
