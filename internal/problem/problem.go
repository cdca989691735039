// Package problem writes RFC 9457 application/problem+json answers carrying
// Kapsel's error code, for the ingest handler and the management API alike.
package problem

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/kapsel-dev/kapsel"
)

// ContentType is the media type of problem answers.
const ContentType = "application/problem+json"

// Details is the body of a problem answer.
type Details struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Code   string `json:"code"`
}

// TypeBase prefixes the code to form the problem type URI.
const TypeBase = "https://kapsel.dev/errors/"

// Write answers with the problem for code. retryAfter, when positive, is sent
// as Retry-After in seconds.
func Write(w http.ResponseWriter, code kapsel.Code, detail string, retryAfter int) {
	info := code.Info()
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(info.Status)
	_ = json.NewEncoder(w).Encode(Details{
		Type:   TypeBase + string(code),
		Title:  info.Title,
		Status: info.Status,
		Detail: detail,
		Code:   string(code),
	})
}

// WriteError answers with the problem for err: its *kapsel.Error code,
// detail and Retry-After, or the code [kapsel.CodeOf] derives. Errors that are
// not *kapsel.Error get a generic detail, so that internal messages never reach
// the caller; storage unavailability and shutting down always carry
// Retry-After (1 s unless the error names another).
func WriteError(w http.ResponseWriter, err error) {
	code := kapsel.CodeOf(err)
	detail, retry := code.Info().Title, 0
	if ke := (*kapsel.Error)(nil); errors.As(err, &ke) {
		detail, retry = ke.Detail, ke.RetryAfterSeconds
	}
	if retry <= 0 && (code == kapsel.CodeStorageUnavailable || code == kapsel.CodeShuttingDown) {
		retry = 1
	}
	Write(w, code, detail, retry)
}
