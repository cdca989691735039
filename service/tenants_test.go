package service_test

import (
	"errors"
	"math"
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

func TestUpdateTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{})
	ten, key, err := e.svc.CreateTenant(e.ctx, service.TenantCreate{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	rate, burst, name := 2.5, 10, " Acme Corp "
	got, err := e.svc.UpdateTenant(e.ctx, ten.ID, service.TenantUpdate{RateLimit: &rate, RateBurst: &burst})
	if err != nil || got.Name != "acme" || got.RateLimit != 2.5 || got.RateBurst != 10 {
		t.Fatalf("UpdateTenant of the rate = %+v, %v", got, err)
	}
	got, err = e.svc.UpdateTenant(e.ctx, ten.ID, service.TenantUpdate{Name: &name})
	if err != nil || got.Name != "Acme Corp" || got.RateLimit != 2.5 || got.RateBurst != 10 {
		t.Fatalf("UpdateTenant of the name = %+v, %v", got, err)
	}
	if auth, err := e.svc.AuthenticateTenant(e.ctx, key); err != nil || auth.Name != "Acme Corp" {
		t.Fatalf("AuthenticateTenant after the updates = %+v, %v", auth, err)
	}

	neg, nan, negBurst, blank := -1.0, math.NaN(), -1, "  "
	for what, u := range map[string]service.TenantUpdate{
		"blank name":     {Name: &blank},
		"negative rate":  {RateLimit: &neg},
		"NaN rate":       {RateLimit: &nan},
		"negative burst": {RateBurst: &negBurst},
	} {
		_, err := e.svc.UpdateTenant(e.ctx, ten.ID, u)
		requireCode(t, err, kapsel.CodeMalformedRequest, "UpdateTenant with a "+what)
	}
	_, err = e.svc.UpdateTenant(e.ctx, kapsel.NewTenantID(), service.TenantUpdate{Name: &name})
	requireCode(t, err, kapsel.CodeNotFound, "UpdateTenant of an unknown tenant")
	if got, _ := e.svc.GetTenant(e.ctx, ten.ID); got.Name != "Acme Corp" || got.RateLimit != 2.5 || got.RateBurst != 10 {
		t.Fatalf("tenant after refused updates = %+v", got)
	}
}

func TestDeleteTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, service.Config{})
	ten, key, err := e.svc.CreateTenant(e.ctx, service.TenantCreate{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	other, otherKey, err := e.svc.CreateTenant(e.ctx, service.TenantCreate{Name: "globex"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteTenant(e.ctx, ten.ID); err != nil {
		t.Fatalf("DeleteTenant: %v", err)
	}
	_, err = e.svc.AuthenticateTenant(e.ctx, key)
	requireCode(t, err, kapsel.CodeUnauthenticated, "AuthenticateTenant with the deleted tenant's key")
	_, err = e.svc.GetTenant(e.ctx, ten.ID)
	requireCode(t, err, kapsel.CodeNotFound, "GetTenant of the deleted tenant")
	_, err = e.svc.Send(e.ctx, ten.ID, service.Send{Body: []byte(`{}`)})
	requireCode(t, err, kapsel.CodeNotFound, "Send for the deleted tenant")
	_, err = e.svc.CreateSource(e.ctx, ten.ID, service.SourceCreate{Name: "late"})
	if !errors.Is(err, kapsel.ErrNotFound) {
		t.Fatalf("CreateSource for the deleted tenant: %v, want ErrNotFound", err)
	}
	err = e.svc.DeleteTenant(e.ctx, ten.ID)
	requireCode(t, err, kapsel.CodeNotFound, "a second DeleteTenant")

	if got, err := e.svc.AuthenticateTenant(e.ctx, otherKey); err != nil || got.ID != other.ID {
		t.Fatalf("AuthenticateTenant of the other tenant = %+v, %v", got, err)
	}
	page, err := e.svc.ListTenants(e.ctx, service.ListOptions{})
	if err != nil || len(page.Data) != 1 || page.Data[0].ID != other.ID || page.HasMore {
		t.Fatalf("ListTenants after the delete = %+v, %v", page, err)
	}
	_, err = e.svc.ListTenants(e.ctx, service.ListOptions{Cursor: "src_01M8KRGKE0VYVQGH2M6M1VXAAA"})
	requireCode(t, err, kapsel.CodeMalformedRequest, "ListTenants with a source id as cursor")
}
