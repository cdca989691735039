package campaign

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckSecretsFindsThem plants secrets where the scan looks — a node's
// log, an API error body, an ingest error body, an outbound header — and
// expects one violation for each, and none for a clean run.
func TestCheckSecretsFindsThem(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(dir, "node1.log")
	r := &rig{
		t:              t,
		admin:          "kadm_campaign_admin_0123456789",
		metricsToken:   "campaign-metrics-0123456789",
		tenant:         tenantJSON{APIKey: "kap_0123456789abcdef"},
		verifierSecret: "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0",
		pg:             &cluster{password: "campaign-db-0123456789"},
		endpoints:      []endpointJSON{{SigningSecret: "whsec_c2lnbmluZy1zaWduaW5nLXNpZ25pbmctc2lnbg=="}},
		nodes:          []*node{{name: "node1", logPath: log}},
		api:            &api{},
	}
	l := &loader{}
	clean := func() *result {
		res := &result{}
		r.checkSecrets(res, l, []request{{Header: map[string][]string{"Webhook-Id": {"evt_1"}}}})
		return res
	}
	if err := os.WriteFile(log, []byte(`{"msg":"request","status":200}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := clean(); len(res.Violations) != 0 {
		t.Fatalf("clean run: %v", res.Violations)
	}

	if err := os.WriteFile(log, []byte(`{"msg":"connect","dsn":"postgres://kapsel:campaign-db-0123456789@x"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.api.errorTexts = []string{`{"detail":"bad token kadm_campaign_admin_0123456789"}`}
	l.errBodies = []string{`{"detail":"secret c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}`}
	res := &result{}
	r.checkSecrets(res, l, []request{{Header: map[string][]string{"X-Leak": {"kap_0123456789abcdef"}}}})
	want := []string{"database password appears 1 time(s) in node1 log", "admin token appears 1 time(s) in management API error bodies",
		"verifier secret (base64) appears 1 time(s) in ingest error bodies", "tenant API key appears 1 time(s) in outbound headers"}
	got := strings.Join(res.Violations, "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if len(res.Violations) != len(want) {
		t.Errorf("%d violations, want %d:\n%s", len(res.Violations), len(want), got)
	}
}

// TestTransportReplay checks which requests without an attempt record are
// put down to net/http's own replay (the known bug) rather than failing:
// only one carrying an idempotency header, followed within 200 ms on
// another connection by a request of the same attempt.
func TestTransportReplay(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	key := map[string][]string{"Idempotency-Key": {"k-1"}}
	cases := []struct {
		name   string
		second request
		header map[string][]string
		want   bool
	}{
		{"replayed", request{Conn: 2, At: at.Add(2 * time.Millisecond)}, key, true},
		{"no idempotency header", request{Conn: 2, At: at.Add(2 * time.Millisecond)}, nil, false},
		{"same connection", request{Conn: 1, At: at.Add(2 * time.Millisecond)}, key, false},
		{"a retry, later", request{Conn: 2, At: at.Add(time.Second)}, key, false},
	}
	for _, c := range cases {
		reqs := []request{{Conn: 1, At: at, Header: c.header}, c.second}
		if got := transportReplay(reqs, []int{0, 1}, 0); got != c.want {
			t.Errorf("%s: %t, want %t", c.name, got, c.want)
		}
	}
}
