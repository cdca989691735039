package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

func ptr[T any](v T) *T { return &v }

func TestCreateEndpointValidatesWithTheOneSetOfRules(t *testing.T) {
	t.Parallel()
	// No loopback allowance here: the SSRF guard refuses 127.0.0.1 as
	// delivery would.
	svc, err := service.New(memstore.New(), &service.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ten, _, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	ok := service.EndpointCreate{URL: "https://example.com/hook"}
	for name, c := range map[string]struct {
		in   func(*service.EndpointCreate)
		code kapsel.Code
	}{
		"ftp URL":              {func(in *service.EndpointCreate) { in.URL = "ftp://example.com/" }, kapsel.CodeInvalidURL},
		"URL with credentials": {func(in *service.EndpointCreate) { in.URL = "https://u:p@example.com/" }, kapsel.CodeInvalidURL},
		"loopback destination": {func(in *service.EndpointCreate) { in.URL = "http://127.0.0.1:8080/" }, kapsel.CodeInvalidURL},
		"Host header":          {func(in *service.EndpointCreate) { in.Headers = map[string]string{"Host": "evil"} }, kapsel.CodeInvalidHeader},
		"headers differing by case": {func(in *service.EndpointCreate) {
			in.Headers = map[string]string{"x-a": "1", "X-A": "2"}
		}, kapsel.CodeInvalidHeader},
		"bad event type pattern": {func(in *service.EndpointCreate) { in.EventTypes = []string{"a*"} }, kapsel.CodeMalformedRequest},
		"malformed source id":    {func(in *service.EndpointCreate) { in.SourceIDs = []kapsel.SourceID{"src_x"} }, kapsel.CodeMalformedRequest},
		"unknown source id": {func(in *service.EndpointCreate) {
			in.SourceIDs = []kapsel.SourceID{kapsel.NewSourceID()}
		}, kapsel.CodeNotFound},
		"short signing secret": {func(in *service.EndpointCreate) { in.SigningSecret = "whsec_c2hvcnQ=" }, kapsel.CodeMalformedRequest},
		"timeout too long":     {func(in *service.EndpointCreate) { in.Timeout = 10 * time.Minute }, kapsel.CodeMalformedRequest},
		"zero max attempts": {func(in *service.EndpointCreate) {
			in.RetryPolicy = &service.RetryPolicyUpdate{MaxAttempts: ptr(0)}
		}, kapsel.CodeMalformedRequest},
		"name too long": {func(in *service.EndpointCreate) { in.Name = strings.Repeat("n", service.MaxNameLength+1) }, kapsel.CodeMalformedRequest},
	} {
		in := ok
		c.in(&in)
		_, _, err := svc.CreateEndpoint(ctx, ten.ID, in)
		requireCode(t, err, c.code, name)
	}
	page, err := svc.ListEndpoints(ctx, ten.ID, service.ListOptions{})
	if err != nil || len(page.Data) != 0 {
		t.Fatalf("after refused creations ListEndpoints = %+v, %v; want none", page, err)
	}
	ep, secret, err := svc.CreateEndpoint(ctx, ten.ID, ok)
	if err != nil {
		t.Fatalf("CreateEndpoint of a valid endpoint: %v", err)
	}
	if err := kapsel.CheckSigningSecret(secret); err != nil {
		t.Fatalf("generated signing secret %q: %v", secret, err)
	}
	if ep.RetryPolicy != kapsel.DefaultRetryPolicy() || ep.Timeout != kapsel.DefaultAttemptTimeout {
		t.Fatalf("defaults not applied: %+v", ep)
	}
}

func TestUpdateEndpointOperation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{})
	ten := e.tenant()
	ep, secret, err := e.svc.CreateEndpoint(e.ctx, ten.ID, service.EndpointCreate{
		Name: "a", URL: "https://example.com/a", Headers: map[string]string{"Authorization": "Bearer s3cret", "X-Team": "billing"},
		RetryPolicy: &service.RetryPolicyUpdate{MaxAttempts: ptr(7)},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.UpdateEndpoint(e.ctx, ten.ID, ep.ID, service.EndpointUpdate{
		URL:         ptr("https://example.com/b"),
		RetryPolicy: &service.RetryPolicyUpdate{Retry4xx: ptr(true)},
		// A read answered by the API redacts the credential; sending it
		// back keeps the stored value.
		Headers: map[string]string{"Authorization": service.RedactedValue, "X-Team": "payments"},
	})
	if err != nil {
		t.Fatalf("UpdateEndpoint: %v", err)
	}
	if got.Name != "a" || got.URL != "https://example.com/b" {
		t.Fatalf("name/url after update = %q, %q", got.Name, got.URL)
	}
	if got.RetryPolicy.MaxAttempts != 7 || !got.RetryPolicy.Retry4xx {
		t.Fatalf("retry policy after a partial update = %+v; want max attempts 7 kept and retry_4xx set", got.RetryPolicy)
	}
	if got.Headers["Authorization"] != "Bearer s3cret" || got.Headers["X-Team"] != "payments" {
		t.Fatalf("headers after update = %v", got.Headers)
	}
	if len(got.SigningSecrets) != 1 || got.SigningSecrets[0].Secret != secret {
		t.Fatal("an update changed the signing secrets")
	}
	_, err = e.svc.UpdateEndpoint(e.ctx, ten.ID, ep.ID, service.EndpointUpdate{URL: ptr("gopher://example.com")})
	requireCode(t, err, kapsel.CodeInvalidURL, "UpdateEndpoint to a gopher URL")
	_, err = e.svc.UpdateEndpoint(e.ctx, e.tenant().ID, ep.ID, service.EndpointUpdate{Name: ptr("x")})
	requireCode(t, err, kapsel.CodeNotFound, "UpdateEndpoint of another tenant's endpoint")
}

func TestRotateSigningSecretOperation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{})
	ten := e.tenant()
	ep, first, err := e.svc.CreateEndpoint(e.ctx, ten.ID, service.EndpointCreate{URL: "https://example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	second, expires, err := e.svc.RotateSigningSecret(e.ctx, ten.ID, ep.ID, service.Rotation{})
	if err != nil {
		t.Fatalf("RotateSigningSecret: %v", err)
	}
	if second == first || kapsel.CheckSigningSecret(second) != nil {
		t.Fatalf("rotated secret %q is not a new valid secret", second)
	}
	if d := expires.Sub(before); d < service.DefaultGracePeriod-time.Minute || d > service.DefaultGracePeriod+time.Minute {
		t.Fatalf("previous secret expires after %s, want about %s", d, service.DefaultGracePeriod)
	}
	got, err := e.svc.GetEndpoint(e.ctx, ten.ID, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if active := got.ActiveSigningSecrets(time.Now()); len(active) != 2 || active[0] != second || active[1] != first {
		t.Fatalf("active secrets after rotation = %d, want the new then the old", len(active))
	}
	_, expires, err = e.svc.RotateSigningSecret(e.ctx, ten.ID, ep.ID, service.Rotation{Grace: ptr(time.Duration(0))})
	if err != nil || !expires.IsZero() {
		t.Fatalf("rotation without grace = %v, %v; want a zero expiry", expires, err)
	}
	_, _, err = e.svc.RotateSigningSecret(e.ctx, ten.ID, ep.ID, service.Rotation{Grace: ptr(service.MaxGracePeriod + time.Second)})
	requireCode(t, err, kapsel.CodeMalformedRequest, "rotation with a grace period over the cap")
	_, _, err = e.svc.RotateSigningSecret(e.ctx, e.tenant().ID, ep.ID, service.Rotation{})
	requireCode(t, err, kapsel.CodeNotFound, "rotation of another tenant's endpoint")
}

func TestPauseResumeDeleteAndHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{})
	ten := e.tenant()
	ep, _, err := e.svc.CreateEndpoint(e.ctx, ten.ID, service.EndpointCreate{URL: "https://example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	// A breaker that is open must be reset by resume.
	if _, err := e.store.BreakerSave(e.ctx, &kapsel.BreakerSaveParams{State: &kapsel.BreakerState{
		EndpointID: ep.ID, Status: kapsel.BreakerOpen, Trips: 3, OpenUntil: time.Now().Add(time.Hour),
	}}); err != nil {
		t.Fatalf("BreakerSave: %v", err)
	}
	h, err := e.svc.EndpointHealth(e.ctx, ten.ID, ep.ID)
	if err != nil || h.Breaker.Status != kapsel.BreakerOpen || h.Window != service.DefaultHealthWindow {
		t.Fatalf("EndpointHealth = %+v, %v; want an open breaker over the default window", h, err)
	}
	if _, ok := h.SuccessRate(); ok {
		t.Fatal("SuccessRate with no attempts reported a rate")
	}
	if got, err := e.svc.PauseEndpoint(e.ctx, ten.ID, ep.ID); err != nil || got.State != kapsel.EndpointPaused {
		t.Fatalf("PauseEndpoint = %v, %v", got, err)
	}
	if got, err := e.svc.ResumeEndpoint(e.ctx, ten.ID, ep.ID); err != nil || got.State != kapsel.EndpointActive {
		t.Fatalf("ResumeEndpoint = %v, %v", got, err)
	}
	h, err = e.svc.EndpointHealth(e.ctx, ten.ID, ep.ID)
	if err != nil || h.Breaker.Status != kapsel.BreakerClosed {
		t.Fatalf("breaker after resume = %+v, %v; want closed", h.Breaker, err)
	}
	_, err = e.svc.ResumeEndpoint(e.ctx, e.tenant().ID, ep.ID)
	requireCode(t, err, kapsel.CodeNotFound, "ResumeEndpoint of another tenant's endpoint")
	_, err = e.svc.ReplayEndpoint(e.ctx, ten.ID, ep.ID, service.Replay{Status: kapsel.DeliveryPending})
	requireCode(t, err, kapsel.CodeMalformedRequest, "ReplayEndpoint of pending deliveries")
	now := time.Now()
	_, err = e.svc.ReplayEndpoint(e.ctx, ten.ID, ep.ID, service.Replay{Status: kapsel.DeliveryFailed, Since: now, Until: now})
	requireCode(t, err, kapsel.CodeMalformedRequest, "ReplayEndpoint of an empty range")
	if n, err := e.svc.ReplayEndpoint(e.ctx, ten.ID, ep.ID, service.Replay{Status: kapsel.DeliveryFailed}); err != nil || n != 0 {
		t.Fatalf("ReplayEndpoint with nothing failed = %d, %v", n, err)
	}
	if err := e.svc.DeleteEndpoint(e.ctx, ten.ID, ep.ID); err != nil {
		t.Fatalf("DeleteEndpoint: %v", err)
	}
	_, err = e.svc.GetEndpoint(e.ctx, ten.ID, ep.ID)
	requireCode(t, err, kapsel.CodeNotFound, "GetEndpoint after delete")
	requireCode(t, e.svc.DeleteEndpoint(e.ctx, ten.ID, ep.ID), kapsel.CodeNotFound, "a second DeleteEndpoint")
}
