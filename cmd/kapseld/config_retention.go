package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/retention"
)

// retentionSettings are the KAPSEL_RETENTION_* knobs (docs/configuration.md,
// "Retention"): the global policy, per-tenant policies and the pace of the
// background removal.
var retentionSettings = []setting{
	{"retention", "KAPSEL_RETENTION", "true", "remove expired bodies, events, deliveries, attempts and idempotency keys in the background (false: keep everything)",
		boolSetting(func(c *config, b bool) { c.Retention.Disabled = !b })},
	{"retention-body", "KAPSEL_RETENTION_BODY", "30d", "how long event bodies (and forwarded headers) are kept: a duration such as 30d or 12h, or forever",
		func(c *config, v string) error { return parseRetention(v, &c.Retention.Policy.Body) }},
	{"retention-metadata", "KAPSEL_RETENTION_METADATA", "90d", "how long events, deliveries and attempts are kept (at least the body retention and 24h): a duration such as 90d, or forever",
		func(c *config, v string) error { return parseRetention(v, &c.Retention.Policy.Metadata) }},
	{"retention-tenants", "KAPSEL_RETENTION_TENANTS", "", "per-tenant policies, body/metadata per tenant, comma-separated: ten_…=7d/30d,ten_…=forever/forever (an empty side takes the global value)",
		parseTenantPolicies},
	{"retention-interval", "KAPSEL_RETENTION_INTERVAL", retention.DefaultInterval.String(), "time between two retention passes (Go duration)",
		func(c *config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return errors.New("must be a positive duration such as 1m")
			}
			c.Retention.Interval = d
			return nil
		}},
	{"retention-batch-size", "KAPSEL_RETENTION_BATCH_SIZE", "0", "events one retention batch (one short transaction) examines; 0 = " +
		strconv.Itoa(kapsel.DefaultRetentionBatch),
		func(c *config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100_000 {
				return errors.New("must be an integer from 0 to 100000")
			}
			c.Retention.BatchSize = n
			return nil
		}},
	{"retention-share", "KAPSEL_RETENTION_SHARE", strconv.FormatFloat(retention.DefaultShare, 'f', -1, 64), "most of the time retention may spend in batches (0.01 to 1): after a batch it pauses so long that it stays under this share",
		func(c *config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0.01 || f > 1 {
				return errors.New("must be a number from 0.01 to 1")
			}
			c.Retention.Share = f
			return nil
		}},
	{"retention-batch-pause", "KAPSEL_RETENTION_BATCH_PAUSE", retention.DefaultBatchPause.String(), "pause after each retention batch on top of the share's (Go duration; 0 for none)",
		func(c *config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return errors.New("must be a duration such as 10ms, or 0")
			}
			if d == 0 {
				d = -1 // retention.Config: negative is none, zero the default
			}
			c.Retention.BatchPause = d
			return nil
		}},
}

// parseRetention reads a retention duration: "forever", "<n>d" (days) or a
// positive Go duration.
func parseRetention(v string, dst *time.Duration) error {
	if v == "forever" {
		*dst = kapsel.RetentionForever
		return nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 100_000 {
			return fmt.Errorf("%q: days must be a positive integer", v)
		}
		*dst = time.Duration(n) * 24 * time.Hour
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q: must be forever, a number of days such as 30d, or a positive duration such as 12h", v)
	}
	*dst = d
	return nil
}

// parseTenantPolicies reads KAPSEL_RETENTION_TENANTS.
func parseTenantPolicies(c *config, v string) error {
	c.Retention.Tenants = nil
	if v == "" {
		return nil
	}
	c.Retention.Tenants = map[kapsel.TenantID]kapsel.RetentionPolicy{}
	for _, entry := range strings.Split(v, ",") {
		id, pol, ok := strings.Cut(strings.TrimSpace(entry), "=")
		body, meta, ok2 := strings.Cut(pol, "/")
		if !ok || !ok2 {
			return fmt.Errorf("%q: want tenant_id=body/metadata", entry)
		}
		tid, err := kapsel.ParseTenantID(id)
		if err != nil {
			return fmt.Errorf("%q: %w", entry, err)
		}
		var p kapsel.RetentionPolicy
		if body != "" {
			if err := parseRetention(body, &p.Body); err != nil {
				return fmt.Errorf("tenant %s body: %w", id, err)
			}
		}
		if meta != "" {
			if err := parseRetention(meta, &p.Metadata); err != nil {
				return fmt.Errorf("tenant %s metadata: %w", id, err)
			}
		}
		if _, dup := c.Retention.Tenants[tid]; dup {
			return fmt.Errorf("tenant %s is named twice", id)
		}
		c.Retention.Tenants[tid] = p
	}
	return nil
}
