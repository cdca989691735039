package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// getMetrics sends GET /metrics with the Authorization header given ("" =
// none) and returns the status, the WWW-Authenticate header and the body.
func getMetrics(t *testing.T, base, authorization string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(raw)
}

// TestMetricsToken: with KAPSEL_METRICS_TOKEN set, /metrics answers only a
// scrape that sends it as a bearer token (docs/operations.md); the other routes are
// unaffected, and without the variable /metrics stays open.
func TestMetricsToken(t *testing.T) {
	t.Parallel()
	const token = "scrape-7f3a9c"
	r := startServer(t, map[string]string{"KAPSEL_DATA_DIR": t.TempDir(), "KAPSEL_METRICS_TOKEN": token})
	for _, auth := range []string{"", "Bearer wrong", "Bearer " + token + "x", "Bearer " + token[:len(token)-1], "Basic " + token, token} {
		status, challenge, body := getMetrics(t, r.base, auth)
		if status != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Bearer") ||
			!strings.Contains(body, `"E1010"`) || strings.Contains(body, "kapsel_") {
			t.Fatalf("Authorization %q: status %d, WWW-Authenticate %q, body %.200q; want 401 E1010 with a Bearer challenge", auth, status, challenge, body)
		}
	}
	for _, auth := range []string{"Bearer " + token, "bearer  " + token} {
		status, _, body := getMetrics(t, r.base, auth)
		if status != http.StatusOK || !strings.Contains(body, "kapsel_queue_depth{") {
			t.Fatalf("Authorization %q: status %d, want 200 with the queue series:\n%.300s", auth, status, body)
		}
	}
	r.must(http.StatusOK, "GET", "/healthz", "", nil)
	if strings.Contains(r.logs.String(), token) {
		t.Fatal("the metrics token appears in the logs")
	}

	open := startServer(t, map[string]string{"KAPSEL_DATA_DIR": t.TempDir()})
	if status, _, _ := getMetrics(t, open.base, ""); status != http.StatusOK {
		t.Fatalf("/metrics without KAPSEL_METRICS_TOKEN: status %d, want 200", status)
	}
}
