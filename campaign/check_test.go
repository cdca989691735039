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

// TestTransportReplay checks which requests without an attempt record an
// I5 violation names as looking like net/http's own resend (fixed in
// c607879): only one carrying an idempotency header, followed within 200 ms
// on another connection by a request of the same attempt.
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

// TestCheckI5IsExact checks that I5 is strict by default: a request with no
// attempt record fails the check — even one that looks like net/http
// resending it, the bug fixed in c607879 — unless it came on a connection of
// a node killed while it was open, which is counted as cut.
func TestCheckI5IsExact(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	key := map[string][]string{"Idempotency-Key": {"k-1"}}
	epIndex := map[string]string{"0": "ep_1"}
	conns := map[uint64]connInfo{1: {RemotePort: 4001, Opened: at.Add(-time.Second)}, 2: {RemotePort: 4002, Opened: at}}
	rec := []attemptJSON{{EventID: "evt_1", EndpointID: "ep_1", Attempt: 1}}
	two := []request{
		{Seq: 0, Conn: 1, At: at, Endpoint: "0", WebhookID: "evt_1", Attempt: 1, Header: key},
		{Seq: 1, Conn: 2, At: at.Add(2 * time.Millisecond), Endpoint: "0", WebhookID: "evt_1", Attempt: 1, Header: key},
	}
	kill := killRecord{Node: "node1", At: at.Add(time.Second), Ports: map[int]bool{4001: true}}
	cases := []struct {
		name       string
		reqs       []request
		records    []attemptJSON
		kills      []killRecord
		violations int
		cut        int
	}{
		{"equal", two[:1], rec, nil, 0, 0},
		{"resent by net/http, no kill", two, rec, nil, 1, 0},
		{"cut by a kill", two, rec, []killRecord{kill}, 0, 1},
		{"a record without a request", nil, rec, nil, 1, 0},
		{"a request without any record", two[:1], nil, nil, 1, 0},
	}
	for _, c := range cases {
		res := &result{}
		checkI5(res, c.reqs, c.records, conns, c.kills, epIndex, 2*time.Second)
		if len(res.Violations) != c.violations || res.Cut != c.cut {
			t.Errorf("%s: %d violations (%v), %d cut; want %d violations, %d cut",
				c.name, len(res.Violations), res.Violations, res.Cut, c.violations, c.cut)
		}
		if res.Requests != len(c.reqs) || res.Records != len(c.records) {
			t.Errorf("%s: counted %d requests, %d records", c.name, res.Requests, res.Records)
		}
	}
	res := &result{}
	checkI5(res, two, rec, conns, nil, epIndex, 2*time.Second)
	if len(res.Violations) == 1 && !strings.Contains(res.Violations[0], "net/http") {
		t.Errorf("the violation does not name the suspect: %s", res.Violations[0])
	}
}

// TestCheckI4DuplicateAfter2xx: a request answered 2xx and sent again is a
// violation unless a kill cut it, or the dispatcher's record of that
// attempt says it failed in a way that can hide a 2xx (a timeout, a reset):
// a 2xx recorded as any other failure is a dispatcher bug, and is caught.
func TestCheckI4DuplicateAfter2xx(t *testing.T) {
	t.Parallel()
	epIndex := map[string]string{"0": "ep_1"}
	twice := []request{
		{Seq: 0, Endpoint: "0", WebhookID: "evt_1", Attempt: 1, Answered2xx: true},
		{Seq: 1, Endpoint: "0", WebhookID: "evt_1", Attempt: 2, Answered2xx: true},
	}
	record := func(code string) []attemptJSON {
		return []attemptJSON{{EventID: "evt_1", EndpointID: "ep_1", Attempt: 1, ErrorCode: code},
			{EventID: "evt_1", EndpointID: "ep_1", Attempt: 2}}
	}
	cases := []struct {
		name       string
		attempts   []attemptJSON
		cut        []bool
		violations int
	}{
		{"recorded as a success", record(""), []bool{false, false}, 1},
		{"cut by a kill", record(""), []bool{true, false}, 0},
		{"timed out (E2001)", record("E2001"), []bool{false, false}, 0},
		{"reset (E2002)", record("E2002"), []bool{false, false}, 0},
		{"a 2xx recorded as a bad status (E2005)", record("E2005"), []bool{false, false}, 1},
		{"a 2xx recorded as an internal error (E3002)", record("E3002"), []bool{false, false}, 1},
	}
	for _, c := range cases {
		res := &result{}
		checkI4Duplicates(res, twice, c.attempts, epIndex, c.cut)
		if len(res.Violations) != c.violations || res.Duplicates != 1 {
			t.Errorf("%s: %d violations (%v), %d duplicates; want %d violations, 1 duplicate",
				c.name, len(res.Violations), res.Violations, res.Duplicates, c.violations)
		}
	}
}
