package problem

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/kapsel-dev/kapsel"
)

func TestWriteError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter string
		detail     string
	}{
		{"typed", kapsel.NewError(kapsel.CodeSignature, "no signature"), 401, "E1001", "", "no signature"},
		{"rate", &kapsel.Error{Code: kapsel.CodeRateLimited, Detail: "slow down", RetryAfterSeconds: 3}, 429, "E1006", "3", "slow down"},
		{"storage sentinel", fmt.Errorf("insert: %w", kapsel.ErrUnavailable), 503, "E3001", "1", "Storage unavailable"},
		{"typed storage keeps its Retry-After", &kapsel.Error{Code: kapsel.CodeStorageUnavailable, Detail: "busy", RetryAfterSeconds: 5}, 503, "E3001", "5", "busy"},
		{"typed shutting down without Retry-After", &kapsel.Error{Code: kapsel.CodeShuttingDown, Detail: "stopping"}, 503, "E3003", "1", "stopping"},
		{"shutting down sentinel", fmt.Errorf("stop: %w", kapsel.ErrShuttingDown), 503, "E3003", "1", kapsel.CodeShuttingDown.Info().Title},
		{"internal hides message", fmt.Errorf("secret=hunter2"), 500, "E3002", "", "Internal error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, tc.err)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if ct := rec.Header().Get("Content-Type"); ct != ContentType {
				t.Fatalf("content type %q", ct)
			}
			if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Fatalf("Retry-After %q, want %q", got, tc.retryAfter)
			}
			var d Details
			if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
				t.Fatal(err)
			}
			if d.Code != tc.code || d.Status != tc.status || d.Detail != tc.detail || d.Type != TypeBase+tc.code {
				t.Fatalf("body %+v", d)
			}
		})
	}
}
