package service_test

import (
	"strings"
	"testing"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/service"
)

func TestCreateTenantValidates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{})
	neg, nan := -1.0, 0.0
	nan = nan / nan
	burst := -1
	for name, in := range map[string]service.TenantCreate{
		"no name":             {Name: "  "},
		"name too long":       {Name: strings.Repeat("x", service.MaxNameLength+1)},
		"negative rate":       {Name: "a", RateLimit: &neg},
		"NaN rate":            {Name: "a", RateLimit: &nan},
		"negative rate burst": {Name: "a", RateBurst: &burst},
	} {
		_, _, err := e.svc.CreateTenant(e.ctx, in)
		requireCode(t, err, kapsel.CodeMalformedRequest, name)
	}
}

func TestCreateTenantUsesTheConfiguredDefaultRate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{DefaultRateLimit: 5, DefaultRateBurst: 7})
	ten, key, err := e.svc.CreateTenant(e.ctx, service.TenantCreate{Name: "  acme  "})
	if err != nil {
		t.Fatal(err)
	}
	if ten.Name != "acme" || ten.RateLimit != 5 || ten.RateBurst != 7 {
		t.Fatalf("tenant = %+v, want name acme, rate 5, burst 7", ten)
	}
	if !strings.HasPrefix(key, service.APIKeyPrefix) || len(key) != len(service.APIKeyPrefix)+43 {
		t.Fatalf("API key %q is not kap_ + 43 base64url characters", key)
	}
	got, err := e.svc.AuthenticateTenant(e.ctx, key)
	if err != nil || got.ID != ten.ID {
		t.Fatalf("AuthenticateTenant(new key) = %v, %v; want tenant %s", got, err, ten.ID)
	}
}

func TestRotateTenantAPIKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{})
	ten, old, err := e.svc.CreateTenant(e.ctx, service.TenantCreate{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	rotated, key, err := e.svc.RotateTenantAPIKey(e.ctx, ten.ID)
	if err != nil {
		t.Fatalf("RotateTenantAPIKey: %v", err)
	}
	if rotated.ID != ten.ID || rotated.Name != "acme" {
		t.Fatalf("RotateTenantAPIKey returned tenant %+v", rotated)
	}
	if key == old {
		t.Fatal("the rotated key equals the old one")
	}
	if got, err := e.svc.AuthenticateTenant(e.ctx, key); err != nil || got.ID != ten.ID {
		t.Fatalf("AuthenticateTenant(new key) = %v, %v", got, err)
	}
	_, err = e.svc.AuthenticateTenant(e.ctx, old)
	requireCode(t, err, kapsel.CodeUnauthenticated, "AuthenticateTenant(rotated-out key)")
	_, _, err = e.svc.RotateTenantAPIKey(e.ctx, kapsel.NewTenantID())
	requireCode(t, err, kapsel.CodeNotFound, "RotateTenantAPIKey of an unknown tenant")
	_, err = e.svc.AuthenticateTenant(e.ctx, "not-a-key")
	requireCode(t, err, kapsel.CodeUnauthenticated, "AuthenticateTenant(no prefix)")
}
