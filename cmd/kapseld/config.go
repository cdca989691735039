package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/retention"
)

// Defaults of the configuration (docs/configuration.md lists them all).
const (
	defaultListen          = ":8080"
	defaultDataDir         = "./kapsel-data"
	defaultLogLevel        = "info"
	defaultLogFormat       = "json"
	defaultShutdownTimeout = 30 * time.Second
)

// config is kapseld's configuration, from KAPSEL_* environment variables
// overridden by flags.
type config struct {
	DatabaseURL              string
	DataDir                  string
	Listen                   string
	AdminToken               string
	MetricsToken             string
	AllowPrivateDestinations bool
	Workers                  int
	MaxBodyBytes             int64
	LogLevel                 slog.Level
	LogFormat                string
	Migrate                  bool
	ShutdownTimeout          time.Duration
	LeaseDuration            time.Duration
	// Tracing is read from OpenTelemetry's OTEL_* variables (tracing.go),
	// not from flags.
	Tracing tracingConfig
	// Retention is the retention policy and pace (config_retention.go);
	// its clock, logger and hooks are the service's.
	Retention retention.Config
}

// setting is one configuration knob: its flag, its environment variable,
// and how to parse it into config.
type setting struct {
	flag, env, def, usage string
	set                   func(c *config, v string) error
}

var settings = append([]setting{
	{"database-url", "KAPSEL_DATABASE_URL", "", "Postgres connection URL; empty = the embedded store in -data-dir",
		func(c *config, v string) error { c.DatabaseURL = v; return nil }},
	{"data-dir", "KAPSEL_DATA_DIR", defaultDataDir, "directory of the embedded store (used when -database-url is empty)",
		func(c *config, v string) error { c.DataDir = v; return nonEmpty(v) }},
	{"listen", "KAPSEL_LISTEN", defaultListen, "address to serve HTTP on",
		func(c *config, v string) error { c.Listen = v; return nonEmpty(v) }},
	{"admin-token", "KAPSEL_ADMIN_TOKEN", "", "token for the tenant routes; empty = generate one and print it once to stderr (prefer the environment variable: flags show in ps)",
		func(c *config, v string) error { c.AdminToken = v; return nil }},
	{"metrics-token", "KAPSEL_METRICS_TOKEN", "", "bearer token GET /metrics requires; empty = /metrics is open to anyone who reaches the listener (prefer the environment variable: flags show in ps)",
		func(c *config, v string) error { c.MetricsToken = v; return nil }},
	{"allow-private-destinations", "KAPSEL_ALLOW_PRIVATE_DESTINATIONS", "false", "turn the SSRF guard off (local development only)",
		boolSetting(func(c *config, b bool) { c.AllowPrivateDestinations = b })},
	{"workers", "KAPSEL_WORKERS", "0", "delivery attempts in flight at once; 0 = the dispatcher's default (128; at most half of them, and at most 64, to one endpoint)",
		intSetting(func(c *config, n int64) { c.Workers = int(n) })},
	{"max-body-bytes", "KAPSEL_MAX_BODY_BYTES", "0", "largest webhook body accepted; 0 = the ingester's default (10 MiB)",
		intSetting(func(c *config, n int64) { c.MaxBodyBytes = n })},
	{"log-level", "KAPSEL_LOG_LEVEL", defaultLogLevel, "debug, info, warn or error",
		func(c *config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
	{"log-format", "KAPSEL_LOG_FORMAT", defaultLogFormat, "json or text",
		func(c *config, v string) error {
			if v != "json" && v != "text" {
				return errors.New("must be json or text")
			}
			c.LogFormat = v
			return nil
		}},
	{"migrate", "KAPSEL_MIGRATE", "true", "apply Postgres schema migrations at start",
		boolSetting(func(c *config, b bool) { c.Migrate = b })},
	{"shutdown-timeout", "KAPSEL_SHUTDOWN_TIMEOUT", defaultShutdownTimeout.String(), "how long a graceful shutdown may take (Go duration)",
		func(c *config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return errors.New("must be a positive duration such as 30s")
			}
			c.ShutdownTimeout = d
			return nil
		}},
	{"lease-duration", "KAPSEL_LEASE_DURATION", delivery.DefaultLeaseDuration.String(),
		"how long a claimed delivery stays this process's without a renewal (renewed every third of it while its attempt runs); a crashed process's deliveries are re-claimed within it (Go duration, at least " + delivery.MinLeaseDuration.String() + ")",
		func(c *config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < delivery.MinLeaseDuration {
				return fmt.Errorf("must be a duration of at least %s such as 30s", delivery.MinLeaseDuration)
			}
			c.LeaseDuration = d
			return nil
		}},
}, retentionSettings...)

func nonEmpty(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func boolSetting(set func(*config, bool)) func(*config, string) error {
	return func(c *config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("must be true or false")
		}
		set(c, b)
		return nil
	}
}

func intSetting(set func(*config, int64)) func(*config, string) error {
	return func(c *config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errors.New("must be a non-negative integer")
		}
		set(c, n)
		return nil
	}
}

// parseConfig reads the defaults, then the environment, then the flags in
// args: flags win. Errors name the flag or variable at fault. A help flag
// returns flag.ErrHelp after printing the usage to out.
func parseConfig(name string, args []string, getenv func(string) string, out io.Writer) (*config, error) {
	c := &config{}
	for _, s := range settings {
		if err := s.set(c, s.def); err != nil {
			return nil, fmt.Errorf("default of -%s: %w", s.flag, err)
		}
	}
	for _, s := range settings {
		if v, ok := lookup(getenv, s.env); ok {
			if err := s.set(c, v); err != nil {
				return nil, fmt.Errorf("%s: %w", s.env, err)
			}
		}
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	for _, s := range settings {
		usage := fmt.Sprintf("%s (env %s, default %q)", s.usage, s.env, s.def)
		set := func(v string) error { return s.set(c, v) }
		if s.def == "true" || s.def == "false" {
			fs.BoolFunc(s.flag, usage, set) // "-migrate" alone means true
		} else {
			fs.Func(s.flag, usage, set)
		}
	}
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: %s [flags]\n\nFlags (each also read from its KAPSEL_* variable; flags win):\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if c.Tracing, err = tracingFromEnv(getenv); err != nil {
		return nil, err
	}
	return c, nil
}

// lookup returns the value of an environment variable, treating an empty
// value as unset.
func lookup(getenv func(string) string, name string) (string, bool) {
	v := strings.TrimSpace(getenv(name))
	return v, v != ""
}
