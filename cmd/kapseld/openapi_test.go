package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/kapsel-dev/kapsel/service"
)

// TestOpenAPIServed: kapseld serves the management API's OpenAPI document
// without a token, byte for byte the one in the repository, and its own
// routes (/healthz, /readyz, /metrics) answer as that document describes
// them — validated with kin-openapi like the management routes are in
// package service.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	const token = "scrape-token"
	r := startServer(t, map[string]string{"KAPSEL_DATA_DIR": t.TempDir(), "KAPSEL_METRICS_TOKEN": token})

	resp, err := http.Get(r.base + service.OpenAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != service.OpenAPIContentType ||
		!bytes.Equal(raw, service.OpenAPI()) {
		t.Fatalf("GET %s: %d %q, %d bytes", service.OpenAPIPath, resp.StatusCode, resp.Header.Get("Content-Type"), len(raw))
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	// check sends method path (with the bearer token, when given) and
	// validates the exchange; it returns the status.
	check := func(path, bearer string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", r.base+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatalf("GET %s: not in openapi.yaml: %v", path, err)
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Body: io.NopCloser(bytes.NewReader(body)), Options: opts,
		})
		if err != nil {
			t.Fatalf("GET %s answered %d %q, which openapi.yaml does not describe: %v\n%.300s", path, resp.StatusCode, resp.Header.Get("Content-Type"), err, body)
		}
		return resp.StatusCode
	}
	for _, tc := range []struct {
		path, bearer string
		status       int
	}{
		{service.OpenAPIPath, "", 200},
		{"/healthz", "", 200},
		{"/readyz", "", 200},
		{"/metrics", token, 200},
		{"/metrics", "", 401},
	} {
		if got := check(tc.path, tc.bearer); got != tc.status {
			t.Fatalf("GET %s: %d, want %d", tc.path, got, tc.status)
		}
	}
	// Shutting down: /readyz answers its documented 503 E3003.
	r.srv.stopping.Store(true)
	if got := check("/readyz", ""); got != 503 {
		t.Fatalf("/readyz while stopping: %d", got)
	}
	r.srv.stopping.Store(false)
}
