package service

import (
	"context"
	"net/http"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// sourceJSON is a source on the wire. Verifier secrets are never sent,
// only their count.
type sourceJSON struct {
	ID                 kapsel.SourceID `json:"id"`
	TenantID           kapsel.TenantID `json:"tenant_id"`
	Name               string          `json:"name"`
	State              string          `json:"state"`
	IngestURL          string          `json:"ingest_url"`
	Verifier           verifierJSON    `json:"verifier"`
	EventTypeFrom      string          `json:"event_type_from"`
	IdempotencyKeyFrom string          `json:"idempotency_key_from"`
	CreatedAt          time.Time       `json:"created_at"`
	UpdatedAt          time.Time       `json:"updated_at"`
}

// verifierJSON is a verifier as answered: never its secrets.
type verifierJSON struct {
	Scheme string `json:"scheme"`
	// Header is always present (SPEC §6 lists it): "" when the scheme takes
	// none or the default is used.
	Header string `json:"header"`
	// SecretCount says how many secrets are configured, so that a rotation
	// can be checked without revealing them.
	SecretCount int `json:"secret_count"`
}

func toSourceJSON(src *kapsel.Source) sourceJSON {
	out := sourceJSON{
		ID: src.ID, TenantID: src.TenantID, Name: src.Name, State: string(src.State), IngestURL: IngestURL(src.ID),
		Verifier: verifierJSON{
			Scheme: src.Verifier.Scheme, Header: src.Verifier.Header, SecretCount: len(src.Verifier.Secrets),
		},
		EventTypeFrom: string(src.EventTypeFrom), IdempotencyKeyFrom: string(src.IdempotencyKeyFrom),
		CreatedAt: src.CreatedAt.UTC(), UpdatedAt: src.UpdatedAt.UTC(),
	}
	if out.Verifier.Scheme == "" {
		out.Verifier.Scheme = kapsel.SchemeNone
	}
	return out
}

// sourceRequest is the body of POST /v1/sources and PATCH
// /v1/sources/{id}. In a PATCH, absent or null fields are kept and present
// ones replace the stored value whole.
type sourceRequest struct {
	Name               *string          `json:"name"`
	Verifier           *verifierRequest `json:"verifier"`
	EventTypeFrom      *kapsel.FieldRef `json:"event_type_from"`
	IdempotencyKeyFrom *kapsel.FieldRef `json:"idempotency_key_from"`
}

type verifierRequest struct {
	Scheme  string   `json:"scheme"`
	Secrets []string `json:"secrets"`
	Header  string   `json:"header"`
}

// update converts the request into the operation's input.
func (req *sourceRequest) update() SourceUpdate {
	u := SourceUpdate{Name: req.Name, EventTypeFrom: req.EventTypeFrom, IdempotencyKeyFrom: req.IdempotencyKeyFrom}
	if v := req.Verifier; v != nil {
		u.Verifier = &kapsel.VerifierConfig{Scheme: v.Scheme, Secrets: v.Secrets, Header: v.Header}
	}
	return u
}

func sourceID(r *http.Request) (kapsel.SourceID, error) {
	return pathID(r, "source", kapsel.ParseSourceID)
}

// httpCreateSource: POST /v1/sources → 201 with its ingest_url.
func (s *Service) httpCreateSource(w http.ResponseWriter, r *http.Request) error {
	var req sourceRequest
	if err := s.decode(w, r, &req, false); err != nil {
		return err
	}
	u := req.update()
	var in SourceCreate
	if u.Name != nil {
		in.Name = *u.Name
	}
	if u.Verifier != nil {
		in.Verifier = *u.Verifier
	}
	if u.EventTypeFrom != nil {
		in.EventTypeFrom = *u.EventTypeFrom
	}
	if u.IdempotencyKeyFrom != nil {
		in.IdempotencyKeyFrom = *u.IdempotencyKeyFrom
	}
	src, err := s.CreateSource(r.Context(), tenantOf(r), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/sources/"+string(src.ID))
	writeJSON(w, http.StatusCreated, toSourceJSON(src))
	return nil
}

// httpListSources: GET /v1/sources.
func (s *Service) httpListSources(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	p, err := s.ListSources(r.Context(), tenantOf(r), o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toPageJSON(p, toSourceJSON))
	return nil
}

// httpGetSource: GET /v1/sources/{id}.
func (s *Service) httpGetSource(w http.ResponseWriter, r *http.Request) error {
	return s.answerSource(w, r, s.GetSource)
}

// httpPauseSource: POST /v1/sources/{id}/pause.
func (s *Service) httpPauseSource(w http.ResponseWriter, r *http.Request) error {
	return s.answerSource(w, r, s.PauseSource)
}

// httpResumeSource: POST /v1/sources/{id}/resume.
func (s *Service) httpResumeSource(w http.ResponseWriter, r *http.Request) error {
	return s.answerSource(w, r, s.ResumeSource)
}

// answerSource runs an operation on the source {id} and answers it.
func (s *Service) answerSource(w http.ResponseWriter, r *http.Request,
	op func(ctx context.Context, tenant kapsel.TenantID, id kapsel.SourceID) (*kapsel.Source, error),
) error {
	id, err := sourceID(r)
	if err != nil {
		return err
	}
	src, err := op(r.Context(), tenantOf(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toSourceJSON(src))
	return nil
}

// httpUpdateSource: PATCH /v1/sources/{id}.
func (s *Service) httpUpdateSource(w http.ResponseWriter, r *http.Request) error {
	id, err := sourceID(r)
	if err != nil {
		return err
	}
	var req sourceRequest
	if err := s.decode(w, r, &req, false); err != nil {
		return err
	}
	src, err := s.UpdateSource(r.Context(), tenantOf(r), id, req.update())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toSourceJSON(src))
	return nil
}

// httpDeleteSource: DELETE /v1/sources/{id} → 204.
func (s *Service) httpDeleteSource(w http.ResponseWriter, r *http.Request) error {
	id, err := sourceID(r)
	if err != nil {
		return err
	}
	if err := s.DeleteSource(r.Context(), tenantOf(r), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
