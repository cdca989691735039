package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/internal/problem"
)

// ErrorCode returns the code the management API answers err with:
// [kapsel.CodeOf], except that a status change the lifecycle refuses
// (kapsel.ErrIllegalTransition, e.g. retrying a pending event) is the
// caller's mistake, E1009. A duplicate API key hash or a lost compare-and-set
// cannot be caused by the caller's input, so CodeOf's E3002 stands for them.
// Only the *kapsel.Error details and the messages of ErrInvalid are shown to
// the caller; everything else answers with the code's title.
func ErrorCode(err error) kapsel.Code {
	var ke *kapsel.Error
	if !errors.As(err, &ke) && errors.Is(err, kapsel.ErrIllegalTransition) {
		return kapsel.CodeMalformedRequest
	}
	return kapsel.CodeOf(err)
}

// writeError answers with the problem for err, logging it when it is the
// server's fault. The detail is the *kapsel.Error's, or the code's title.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := ErrorCode(err)
	detail := code.Info().Title
	retryAfter := 0
	var ke *kapsel.Error
	if errors.As(err, &ke) {
		detail, retryAfter = ke.Detail, ke.RetryAfterSeconds
	}
	if code == kapsel.CodeStorageUnavailable || code == kapsel.CodeShuttingDown {
		retryAfter = max(retryAfter, 1)
	}
	if code.Info().Status >= 500 {
		// Store errors carry ids and driver messages, never secrets or bodies.
		log.LogAttrs(r.Context(), slog.LevelError, "management request failed",
			slog.String("method", r.Method), slog.String("route", r.Pattern),
			slog.String("code", string(code)), slog.String("error", err.Error()))
	}
	problem.Write(w, code, detail, retryAfter)
}

// badRequest returns an E1009 error with a formatted detail.
func badRequest(format string, args ...any) error {
	return kapsel.NewError(kapsel.CodeMalformedRequest, format, args...)
}

// notFound returns an E1011 error for a resource kind and id.
func notFound(kind, id string) error {
	if len(id) > 64 {
		id = id[:64] + "…"
	}
	return kapsel.NewError(kapsel.CodeNotFound, "%s %q not found", kind, id)
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads r's JSON body into v: at most MaxRequestBytes, one JSON
// value, no unknown fields. An empty body is allowed when optional is set
// and leaves v untouched.
func (a *API) decode(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	body := http.MaxBytesReader(w, r.Body, a.cfg.MaxRequestBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return kapsel.NewError(kapsel.CodeBodyTooLarge, "request body is larger than %d bytes", a.cfg.MaxRequestBytes)
	case errors.Is(err, io.EOF) && optional:
		return nil
	case errors.Is(err, io.EOF):
		return badRequest("request body is empty; a JSON object is expected")
	case err != nil:
		return badRequest("request body is not valid JSON for this route: %s", jsonErrorDetail(err))
	}
	if dec.More() {
		return badRequest("request body has data after the JSON object")
	}
	return nil
}

// jsonErrorDetail describes a decoding error without quoting the input.
func jsonErrorDetail(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q must be %s", typ.Field, typ.Type)
		}
		return fmt.Sprintf("expected %s", typ.Type)
	}
	// Unknown-field errors read `json: unknown field "x"`; the field name is
	// the caller's own input and safe to show.
	return err.Error()
}
