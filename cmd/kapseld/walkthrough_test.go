package main

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestWalkthrough runs the curl walk-through of docs/api.md
// (testdata/walkthrough.sh) against a running kapseld, so the documented
// commands stay true. It needs bash, curl, jq and openssl.
func TestWalkthrough(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl", "jq", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	r := startServer(t, map[string]string{
		"KAPSEL_ADMIN_TOKEN":                "dev-admin-token",
		"KAPSEL_ALLOW_PRIVATE_DESTINATIONS": "true",
		"KAPSEL_DATA_DIR":                   t.TempDir(),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "testdata/walkthrough.sh")
	cmd.Env = append(os.Environ(), "BASE="+r.base, "KAPSEL_ADMIN_TOKEN=dev-admin-token")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("walk-through failed: %v\n%s\nkapseld logs:\n%s", err, out, r.logs.String())
	}
	t.Logf("%s", out)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}
