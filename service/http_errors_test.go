package service_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

func TestErrorCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		code kapsel.Code
	}{
		{fmt.Errorf("get: %w", kapsel.ErrNotFound), kapsel.CodeNotFound},
		{fmt.Errorf("x: %w", kapsel.ErrInvalid), kapsel.CodeMalformedRequest},
		{kapsel.ErrIllegalTransition, kapsel.CodeMalformedRequest},
		{fmt.Errorf("db: %w", kapsel.ErrUnavailable), kapsel.CodeStorageUnavailable},
		{kapsel.ErrShuttingDown, kapsel.CodeShuttingDown},
		{kapsel.ErrDuplicate, kapsel.CodeInternal},
		{errors.New("boom"), kapsel.CodeInternal},
		{fmt.Errorf("wrapped: %w", kapsel.NewError(kapsel.CodeInvalidURL, "bad")), kapsel.CodeInvalidURL},
	} {
		if got := service.ErrorCode(tc.err); got != tc.code {
			t.Errorf("ErrorCode(%v) = %s, want %s", tc.err, got, tc.code)
		}
	}
}

// flakyStore fails every call with err while failing is set.
type flakyStore struct {
	*memstore.Store
	failing atomic.Bool
	err     error
}

func (s *flakyStore) TenantGetByAPIKey(ctx context.Context, p *kapsel.TenantGetByAPIKeyParams) (*kapsel.Tenant, error) {
	if s.failing.Load() {
		return nil, s.err
	}
	return s.Store.TenantGetByAPIKey(ctx, p)
}

func (s *flakyStore) EndpointList(ctx context.Context, p *kapsel.EndpointListParams) ([]*kapsel.Endpoint, error) {
	return nil, s.err
}

func TestStorageErrors(t *testing.T) {
	t.Parallel()
	f := setup(t)
	fs := &flakyStore{Store: f.store, err: fmt.Errorf("dial tcp 10.0.0.5:5432: %w", kapsel.ErrUnavailable)}
	var logs strings.Builder
	f.handler = managementHandler(t, fs, service.Config{AdminToken: adminToken, Logger: newTextLogger(&logs)})
	_, key := f.tenant("acme")

	// The list fails in the store: 503 E3001 with Retry-After, no internals.
	rec := f.do("GET", "/v1/endpoints", key, nil)
	requireProblem(t, rec, http.StatusServiceUnavailable, kapsel.CodeStorageUnavailable)
	if rec.Header().Get("Retry-After") == "" || strings.Contains(rec.Body.String(), "10.0.0.5") {
		t.Fatalf("storage problem: %v %s", rec.Header(), rec.Body)
	}
	if !strings.Contains(logs.String(), "10.0.0.5") || strings.Contains(logs.String(), key) {
		t.Fatalf("log should name the cause but never the key: %s", logs.String())
	}

	// Authentication itself fails: still 503, not 401.
	fs.failing.Store(true)
	requireProblem(t, f.do("GET", "/v1/endpoints", key, nil), http.StatusServiceUnavailable, kapsel.CodeStorageUnavailable)

	// An unexpected error hides its message.
	fs.err = errors.New("pq: relation secret_table does not exist")
	rec = f.do("GET", "/v1/endpoints", key, nil)
	requireProblem(t, rec, http.StatusInternalServerError, kapsel.CodeInternal)
	if strings.Contains(rec.Body.String(), "secret_table") {
		t.Fatalf("internal error leaked: %s", rec.Body)
	}
}

// FuzzCreateEndpoint: whatever the body, the API answers a documented 4xx
// or 201, never a 5xx, and never echoes a secret it was given.
func FuzzCreateEndpoint(f *testing.F) {
	f.Add(`{"name":"x","url":"https://example.com/"}`)
	f.Add(`{"url":"https://example.com/","headers":{"Authorization":"s3cr3t"}}`)
	f.Add(`{"url":"http://[::1]/","headers":{"Host":"x"}}`)
	f.Add(`{"url":"https://e.com/","retry_policy":{"max_attempts":1e9,"initial_interval_ms":-1}}`)
	f.Add(`{"timeout_ms":1.5}`)
	f.Add(`[`)
	fx := setup(f)
	_, key := fx.tenant("fuzz")
	f.Fuzz(func(t *testing.T, body string) {
		rec := serve(fx.handler, authed(newRequest("POST", "/v1/endpoints", body), key))
		switch rec.Code {
		case 201, 400, 413, 422:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code == 201 && strings.Contains(body, "s3cr3t") && strings.Contains(rec.Body.String(), "s3cr3t") {
			t.Fatalf("a credential header echoed: %s", rec.Body)
		}
	})
}
