package main

import (
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/retention"
)

const day = 24 * time.Hour

// defaultRetention is the retention config with no KAPSEL_RETENTION_*
// set: kapsel's default policy, written out.
var defaultRetention = retention.Config{
	Policy:   kapsel.RetentionPolicy{Body: 30 * day, Metadata: 90 * day},
	Interval: time.Minute, BatchPause: 10 * time.Millisecond, Share: 0.05,
}

func TestParseRetentionConfig(t *testing.T) {
	t.Parallel()
	a, b := kapsel.NewTenantID(), kapsel.NewTenantID()
	c, err := parseConfig("kapseld", []string{"-retention-batch-pause", "0"}, env(map[string]string{
		"KAPSEL_RETENTION_BODY":       "12h",
		"KAPSEL_RETENTION_METADATA":   "forever",
		"KAPSEL_RETENTION_TENANTS":    string(a) + "=7d/30d, " + string(b) + "=/365d",
		"KAPSEL_RETENTION_INTERVAL":   "5m",
		"KAPSEL_RETENTION_BATCH_SIZE": "500",
		"KAPSEL_RETENTION_SHARE":      "0.5",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := retention.Config{
		Policy: kapsel.RetentionPolicy{Body: 12 * time.Hour, Metadata: kapsel.RetentionForever},
		Tenants: map[kapsel.TenantID]kapsel.RetentionPolicy{
			a: {Body: 7 * day, Metadata: 30 * day},
			b: {Metadata: 365 * day},
		},
		Interval: 5 * time.Minute, BatchSize: 500, BatchPause: -1, Share: 0.5,
	}
	if !reflect.DeepEqual(c.Retention, want) {
		t.Fatalf("retention %+v, want %+v", c.Retention, want)
	}
	off, err := parseConfig("kapseld", nil, env(map[string]string{"KAPSEL_RETENTION": "false"}), io.Discard)
	if err != nil || !off.Retention.Disabled {
		t.Fatalf("KAPSEL_RETENTION=false: %+v, %v", off, err)
	}
}

func TestParseRetentionConfigErrors(t *testing.T) {
	t.Parallel()
	for env_, v := range map[string]string{
		"KAPSEL_RETENTION_BODY":        "0d",
		"KAPSEL_RETENTION_METADATA":    "-1h",
		"KAPSEL_RETENTION_TENANTS":     "acme=7d/30d",
		"KAPSEL_RETENTION_INTERVAL":    "0s",
		"KAPSEL_RETENTION_BATCH_SIZE":  "-1",
		"KAPSEL_RETENTION_BATCH_PAUSE": "-1s",
		"KAPSEL_RETENTION_SHARE":       "2",
	} {
		_, err := parseConfig("kapseld", nil, env(map[string]string{env_: v}), io.Discard)
		if err == nil || !strings.Contains(err.Error(), env_) {
			t.Errorf("%s=%s: error %v, want one naming the variable", env_, v, err)
		}
	}
	dup := string(kapsel.NewTenantID())
	if _, err := parseConfig("kapseld", nil, env(map[string]string{"KAPSEL_RETENTION_TENANTS": dup + "=1d/2d," + dup + "=1d/3d"}), io.Discard); err == nil {
		t.Error("a tenant named twice was accepted")
	}
}
