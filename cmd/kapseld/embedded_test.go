package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDefaultEmbeddedStore: with no database URL kapseld keeps its data
// in ./kapsel-data, durably, and it survives a restart.
func TestDefaultEmbeddedStore(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	r := startServer(t, map[string]string{"KAPSEL_ADMIN_TOKEN": "adm"})
	if r.srv.store.kind != "embedded" {
		t.Fatalf("store %s, want embedded", r.srv.store.kind)
	}
	r.must(200, "GET", "/readyz", "", nil)
	ten := r.must(201, "POST", "/v1/tenants", "adm", map[string]any{"name": "acme"})
	key := ten["api_key"].(string)
	ep := r.must(201, "POST", "/v1/endpoints", key, map[string]any{"url": "https://example.com/hook"})
	src := r.must(201, "POST", "/v1/sources", key, map[string]any{"name": "provider"})
	if err := r.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kapsel-data", "kapsel.db")); err != nil {
		t.Fatalf("no database in ./kapsel-data: %v", err)
	}

	// A second run on the same directory sees the tenant, the endpoint and
	// the source.
	r2 := startServer(t, map[string]string{"KAPSEL_ADMIN_TOKEN": "adm"})
	got := r2.must(200, "GET", "/v1/endpoints/"+ep["id"].(string), key, nil)
	if got["url"] != "https://example.com/hook" {
		t.Fatalf("after restart %v", got)
	}
	if got := r2.must(200, "GET", "/v1/sources/"+src["id"].(string), key, nil); got["name"] != "provider" {
		t.Fatalf("source after restart %v", got)
	}
	if err := r2.stop(); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
}
