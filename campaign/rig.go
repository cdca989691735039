package campaign

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// envKeepLogs, when set, keeps the node logs of passing scenarios too.
const envKeepLogs = "KAPSEL_CAMPAIGN_KEEP_LOGS"

// rigConfig describes the system a scenario runs against.
type rigConfig struct {
	Nodes     int
	Endpoints int
	Seed      int64
	Plan      faultPlan
	// EndpointTimeout is every endpoint's timeout_ms.
	EndpointTimeout time.Duration
	// Lease, when set, is passed as KAPSEL_LEASE_DURATION (kapseld ignores
	// it when it does not know the variable; rig.leaseKnob tells).
	Lease time.Duration
	// Guard leaves kapseld's SSRF guard on (its default); the destination
	// on 127.0.0.1 is then out of reach, so such a rig has no Endpoints.
	Guard bool
}

// rig is one scenario's world: a private Postgres, the fault-injecting
// destination, kapseld nodes on that Postgres, and a tenant with one
// Standard Webhooks source and Endpoints endpoints subscribed to it, all
// made through the real API.
type rig struct {
	t    testing.TB
	cfg  rigConfig
	dir  string // node logs
	pg   *cluster
	dest *destination
	api  *api

	nodes     []*node
	leaseKnob bool // kapseld honours KAPSEL_LEASE_DURATION

	admin, metricsToken string
	tenant              tenantJSON
	verifierSecret      string
	source              sourceJSON
	endpoints           []endpointJSON // index i receives at dest.url(i)
	rr                  atomic.Uint64

	// fronts, when set, are in-process front doors (httptest servers) the
	// rig uses instead of kapseld nodes.
	fronts []string

	extraMu sync.Mutex
	extra   map[string]string // more secrets a scenario made, by name
}

// addSecret adds a secret a scenario made to those the checker searches
// for (SPEC I8).
func (r *rig) addSecret(name, secret string) {
	r.extraMu.Lock()
	defer r.extraMu.Unlock()
	if r.extra == nil {
		r.extra = map[string]string{}
	}
	r.extra[name] = secret
	if k := base64Part(secret); strings.HasPrefix(secret, "whsec_") && k != "" {
		r.extra[name+" (base64)"] = k
	}
}

func newRig(t testing.TB, cfg rigConfig) *rig {
	t.Helper()
	r := &rig{t: t, cfg: cfg, admin: "kadm_campaign_" + randHex(16), metricsToken: "campaign-metrics-" + randHex(16)}
	go func() { _, _ = clusterTemplate() }() // initdb while kapseld builds
	bin := kapseldBinary(t)
	r.leaseKnob = binaryKnows(t, bin, "KAPSEL_LEASE_DURATION")
	dir, err := os.MkdirTemp("", "kapsel-campaign-logs-")
	if err != nil {
		t.Fatal(err)
	}
	r.dir = dir
	t.Cleanup(func() {
		if t.Failed() || os.Getenv(envKeepLogs) != "" {
			t.Logf("campaign: node logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	r.pg = newCluster(t)
	r.dest = newDestination(t, cfg.Seed, cfg.Plan)
	env := map[string]string{
		"KAPSEL_DATABASE_URL":               r.pg.url(),
		"KAPSEL_ADMIN_TOKEN":                r.admin,
		"KAPSEL_METRICS_TOKEN":              r.metricsToken,
		"KAPSEL_ALLOW_PRIVATE_DESTINATIONS": "true", // the destination is on 127.0.0.1
		"KAPSEL_LOG_LEVEL":                  "debug",
		"KAPSEL_SHUTDOWN_TIMEOUT":           "5s",
	}
	if cfg.Lease > 0 {
		env["KAPSEL_LEASE_DURATION"] = cfg.Lease.String()
	}
	if cfg.Guard {
		env["KAPSEL_ALLOW_PRIVATE_DESTINATIONS"] = "false"
	}
	for i := range cfg.Nodes {
		n := newNode(t, fmt.Sprintf("node%d", i+1), bin, dir, env)
		n.start()
		r.nodes = append(r.nodes, n)
	}
	r.api = newAPI(t, r.anyNode)
	r.setup()
	return r
}

// setup makes the tenant, the source and the endpoints.
func (r *rig) setup() {
	r.api.must(http.MethodPost, "/v1/tenants", r.admin, map[string]any{"name": "campaign"}, &r.tenant)
	r.verifierSecret = newWhsec()
	r.api.must(http.MethodPost, "/v1/sources", r.tenant.APIKey, map[string]any{
		"name":     "provider",
		"verifier": map[string]any{"scheme": "standard-webhooks", "secrets": []string{r.verifierSecret}},
	}, &r.source)
	for i := range r.cfg.Endpoints {
		var ep endpointJSON
		r.api.must(http.MethodPost, "/v1/endpoints", r.tenant.APIKey, map[string]any{
			"name":           fmt.Sprintf("dest-%d", i),
			"url":            r.dest.url(i),
			"source_ids":     []string{r.source.ID},
			"signing_secret": newWhsec(),
			"timeout_ms":     r.cfg.EndpointTimeout.Milliseconds(),
			"retry_policy": map[string]any{
				"max_attempts": 1000, "initial_interval_ms": 200, "max_interval_ms": 1000, "max_age_s": 3600,
			},
		}, &ep)
		r.endpoints = append(r.endpoints, ep)
	}
}

// liveNodes returns the base URLs of the running nodes.
func (r *rig) liveNodes() []string {
	if len(r.fronts) > 0 {
		return r.fronts
	}
	var out []string
	for _, n := range r.nodes {
		if u := n.baseURL(); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// anyNode returns a running node's base URL, round-robin.
func (r *rig) anyNode() string {
	live := r.liveNodes()
	if len(live) == 0 {
		return ""
	}
	return live[r.rr.Add(1)%uint64(len(live))]
}

// newLoader returns a loader at rate events/s on this rig's source.
func (r *rig) newLoader(rate float64) *loader {
	return newLoader(r.source.IngestURL, r.verifierSecret, r.liveNodes, rate, fmt.Sprintf("k%d", r.cfg.Seed))
}

// secrets returns every secret of the run, by name: none may appear in a
// log line, an error body or an outbound header (SPEC I8).
func (r *rig) secrets() map[string]string {
	s := map[string]string{
		"admin token":       r.admin,
		"metrics token":     r.metricsToken,
		"tenant API key":    r.tenant.APIKey,
		"verifier secret":   r.verifierSecret,
		"database password": r.pg.password,
	}
	if k := base64Part(r.verifierSecret); k != "" {
		s["verifier secret (base64)"] = k
	}
	r.extraMu.Lock()
	for k, v := range r.extra {
		s[k] = v
	}
	r.extraMu.Unlock()
	for i, ep := range r.endpoints {
		s[fmt.Sprintf("signing secret %d", i)] = ep.SigningSecret
		if k := base64Part(ep.SigningSecret); k != "" {
			s[fmt.Sprintf("signing secret %d (base64)", i)] = k
		}
	}
	return s
}

func newWhsec() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:])
}

func base64Part(whsec string) string {
	if len(whsec) > len("whsec_") {
		return whsec[len("whsec_"):]
	}
	return ""
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
