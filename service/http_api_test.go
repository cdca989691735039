package service_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/kapseltest"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

const adminToken = "test-admin-token"

// fixture is the management API of a service over a fresh memstore and a
// fake clock. The service is not started: the management routes need no
// running dispatcher, and the tests record attempts by hand.
type fixture struct {
	t       testing.TB
	store   *memstore.Store
	clock   *kapseltest.Clock
	svc     *service.Service
	handler http.Handler
}

func setup(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, store: memstore.New(), clock: kapseltest.NewClock(time.Time{})}
	svc, err := service.New(f.store, &service.Config{AdminToken: adminToken, Clock: f.clock})
	if err != nil {
		t.Fatalf("service.New: %v", err)
	}
	f.svc, f.handler = svc, svc.ManagementHandler()
	return f
}

// start starts the service, for the routes that need its ingester (sends).
// Its dispatcher then delivers what is due: the test's endpoints must be
// paused or local.
func (f *fixture) start() {
	f.t.Helper()
	if err := f.svc.Start(context.Background()); err != nil {
		f.t.Fatalf("Start: %v", err)
	}
	f.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = f.svc.Stop(ctx)
	})
}

// pausedEndpoint creates a paused endpoint (its deliveries wait) and
// returns its id.
func (f *fixture) pausedEndpoint(key string, body map[string]any) string {
	f.t.Helper()
	id := f.endpoint(key, body)["id"].(string)
	f.ok(http.StatusOK, "POST", "/v1/endpoints/"+id+"/pause", key, nil)
	return id
}

// managementHandler builds a service over st and returns its management
// handler.
func managementHandler(t testing.TB, st kapsel.Store, cfg service.Config) http.Handler {
	t.Helper()
	svc, err := service.New(st, &cfg)
	if err != nil {
		t.Fatalf("service.New: %v", err)
	}
	return svc.ManagementHandler()
}

// do sends one request; body is marshalled unless it is a string.
func (f *fixture) do(method, path, token string, body any) *httptest.ResponseRecorder {
	f.t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	return rec
}

// ok sends a request that must answer status and decodes its JSON body.
func (f *fixture) ok(status int, method, path, token string, body any) map[string]any {
	f.t.Helper()
	rec := f.do(method, path, token, body)
	if rec.Code != status {
		f.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, rec.Code, status, rec.Body)
	}
	if status == http.StatusNoContent {
		return nil
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		f.t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		f.t.Fatalf("%s %s: %v; body %s", method, path, err, rec.Body)
	}
	return out
}

// problem sends a request that must fail with status and code.
func (f *fixture) problem(status int, code kapsel.Code, method, path, token string, body any) map[string]any {
	f.t.Helper()
	rec := f.do(method, path, token, body)
	return requireProblem(f.t, rec, status, code)
}

func requireProblem(t testing.TB, rec *httptest.ResponseRecorder, status int, code kapsel.Code) map[string]any {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	var p map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p["code"] != string(code) || p["status"] != float64(status) {
		t.Fatalf("problem %v, want code %s status %d", p, code, status)
	}
	return p
}

// tenant creates a tenant and returns its id and API key.
func (f *fixture) tenant(name string) (kapsel.TenantID, string) {
	f.t.Helper()
	out := f.ok(http.StatusCreated, "POST", "/v1/tenants", adminToken, map[string]any{"name": name})
	return kapsel.TenantID(out["id"].(string)), out["api_key"].(string)
}

// endpoint creates an endpoint for the key's tenant with body merged over
// a minimal valid one.
func (f *fixture) endpoint(key string, body map[string]any) map[string]any {
	f.t.Helper()
	req := map[string]any{"name": "orders", "url": "https://example.com/hook"}
	for k, v := range body {
		req[k] = v
	}
	return f.ok(http.StatusCreated, "POST", "/v1/endpoints", key, req)
}

// source creates a source for the key's tenant with body merged over a
// minimal valid one.
func (f *fixture) source(key string, body map[string]any) map[string]any {
	f.t.Helper()
	req := map[string]any{"name": "github"}
	for k, v := range body {
		req[k] = v
	}
	return f.ok(http.StatusCreated, "POST", "/v1/sources", key, req)
}

// event stores an event sent to the endpoint directly (to the tenant's
// subscribed endpoints when endpoint is "") and returns its id.
func (f *fixture) event(tenant kapsel.TenantID, endpoint, body string) kapsel.EventID {
	f.t.Helper()
	p := &kapsel.EventInsertParams{TenantID: tenant, Body: []byte(body)}
	if endpoint != "" {
		p.EndpointIDs = []kapsel.EndpointID{kapsel.EndpointID(endpoint)}
	}
	return f.insert(p)
}

// insert stores one event directly, with its BodyHash and a JSON content
// type, and returns its id.
func (f *fixture) insert(p *kapsel.EventInsertParams) kapsel.EventID {
	f.t.Helper()
	sum := sha256.Sum256(p.Body)
	p.BodyHash, p.ContentType = sum[:], "application/json"
	res, err := f.store.EventInsertMany(context.Background(), &kapsel.EventInsertManyParams{
		Events: []*kapsel.EventInsertParams{p}, Now: f.clock.Now(),
	})
	if err != nil || res[0].Err != nil {
		f.t.Fatalf("inserting event: %v %v", err, res)
	}
	return res[0].Event.ID
}

// attempt claims every due delivery and completes each with statusCode:
// 2xx delivers it, anything else fails it for good. It returns how many.
func (f *fixture) attempt(statusCode int) int {
	f.t.Helper()
	ctx := context.Background()
	now := f.clock.Now()
	ds, err := f.store.DeliveryClaim(ctx, &kapsel.DeliveryClaimParams{Limit: 100, LeaseDuration: time.Minute, Now: now})
	if err != nil {
		f.t.Fatal(err)
	}
	var cs []kapsel.DeliveryCompletion
	for _, d := range ds {
		c := kapsel.DeliveryCompletion{
			DeliveryID: d.ID, LeaseToken: d.LeaseToken, Status: kapsel.DeliveryDelivered,
			Attempt: kapsel.Attempt{
				Number: d.Attempts + 1, Trigger: d.NextTrigger, StartedAt: now,
				Duration: 15 * time.Millisecond, StatusCode: statusCode, ResponseBody: []byte("ok"),
			},
		}
		if statusCode < 200 || statusCode > 299 {
			c.Status, c.LastError = kapsel.DeliveryFailed, "destination answered 500"
			c.Attempt.ErrorCode, c.Attempt.Error = kapsel.CodeAttemptStatus, c.LastError
			c.Attempt.ResponseBody = []byte{0xff, 0xfe, 'x'}
		}
		cs = append(cs, c)
	}
	if len(cs) == 0 {
		return 0
	}
	errs, err := f.store.DeliveryComplete(ctx, &kapsel.DeliveryCompleteParams{Completions: cs, Now: now})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, err := range errs {
		if err != nil {
			f.t.Fatal(err)
		}
	}
	return len(cs)
}

// list returns a list answer's data items.
func data(t *testing.T, out map[string]any) []map[string]any {
	t.Helper()
	raw, ok := out["data"].([]any)
	if !ok {
		t.Fatalf("no data array in %v", out)
	}
	items := make([]map[string]any, len(raw))
	for i, it := range raw {
		items[i] = it.(map[string]any)
	}
	return items
}

// requireNoSecret fails when body contains any of the secrets.
func requireNoSecret(t *testing.T, body string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(body, s) {
			t.Fatalf("answer reveals a secret: %s", body)
		}
	}
}

func newRequest(method, path, body string) *http.Request {
	return httptest.NewRequest(method, path, strings.NewReader(body))
}

func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func authed(req *http.Request, key string) *http.Request {
	req.Header.Set("Authorization", "Bearer "+key)
	return req
}

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}
