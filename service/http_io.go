package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/internal/problem"
)

// ErrorCode returns the code the management API answers err with:
// [kapsel.CodeOf], except that a status change the lifecycle refuses
// (kapsel.ErrIllegalTransition) is the caller's mistake, E1009. Only the
// details of *kapsel.Error values are shown to the caller; everything else
// answers with the code's title.
func ErrorCode(err error) kapsel.Code {
	var ke *kapsel.Error
	if !errors.As(err, &ke) && errors.Is(err, kapsel.ErrIllegalTransition) {
		return kapsel.CodeMalformedRequest
	}
	return kapsel.CodeOf(err)
}

// writeError answers with the problem for err (problem.WriteError: the
// *kapsel.Error's detail and Retry-After, or the code's title), logging it
// when it is the server's fault.
func (s *Service) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := ErrorCode(err)
	if code.Info().Status >= 500 {
		s.logError(r, code, err)
	}
	if code != kapsel.CodeOf(err) {
		// ErrorCode's own mapping: answer with its code and that code's title.
		err = &kapsel.Error{Code: code, Detail: code.Info().Title, Err: err}
	}
	problem.WriteError(w, err)
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads r's JSON body into v: at most Config.MaxRequestBytes, one
// JSON value, no unknown fields. An empty body is allowed when optional is
// set and leaves v untouched.
func (s *Service) decode(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	return decodeLimited(w, r, v, optional, s.cfg.MaxRequestBytes)
}

// decodeLimited is decode with a size limit of its own.
func decodeLimited(w http.ResponseWriter, r *http.Request, v any, optional bool, limit int64) error {
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return kapsel.NewError(kapsel.CodeBodyTooLarge, "request body is larger than %d bytes", limit)
	case errors.Is(err, io.EOF) && optional:
		return nil
	case errors.Is(err, io.EOF):
		return invalid("request body is empty; a JSON object is expected")
	case err != nil:
		return invalid("request body is not valid JSON for this route: %s", jsonErrorDetail(err))
	}
	if dec.More() {
		return invalid("request body has data after the JSON object")
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

// pageJSON is the body of every list answer.
type pageJSON[T any] struct {
	Data []T `json:"data"`
	// NextCursor is the cursor of the next page; null on the last page.
	NextCursor *string `json:"next_cursor"`
	HasMore    bool    `json:"has_more"`
}

// toPageJSON converts a page's items with conv.
func toPageJSON[S, T any](p *Page[S], conv func(S) T) pageJSON[T] {
	out := pageJSON[T]{Data: make([]T, 0, len(p.Data)), HasMore: p.HasMore}
	for _, it := range p.Data {
		out.Data = append(out.Data, conv(it))
	}
	if p.NextCursor != "" {
		next := p.NextCursor
		out.NextCursor = &next
	}
	return out
}

// listOptions reads ?limit= (1–500, default 50) and ?cursor=. It refuses
// only what ListOptions cannot say (not an integer; 0, which in Go means the
// default); the operation checks the range and the cursor.
func listOptions(r *http.Request) (ListOptions, error) {
	q := r.URL.Query()
	o := ListOptions{Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n == 0 {
			return o, errLimit
		}
		o.Limit = n
	}
	return o, nil
}

// pathID parses the {id} path value with parse; a malformed id is one
// that does not exist, so it answers 404 like an unknown or foreign one.
func pathID[T ~string](r *http.Request, kind string, parse func(string) (T, error)) (T, error) {
	raw := r.PathValue("id")
	id, err := parse(raw)
	if err != nil {
		return "", notFoundErr(kapsel.ErrNotFound, kind, raw)
	}
	return id, nil
}

// timePtr returns nil for the zero time, so that JSON says null.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
