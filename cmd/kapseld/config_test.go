package main

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := parseConfig("kapseld", nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		DataDir: "./kapsel-data", Listen: ":8080", LogLevel: slog.LevelInfo, LogFormat: "json",
		Migrate: true, ShutdownTimeout: 30 * time.Second, LeaseDuration: 25 * time.Second,
		Retention: defaultRetention,
	}
	if !reflect.DeepEqual(*c, want) {
		t.Fatalf("defaults %+v, want %+v", *c, want)
	}
}

func TestParseConfigEnvAndFlags(t *testing.T) {
	t.Parallel()
	e := env(map[string]string{
		"KAPSEL_DATABASE_URL":               "postgres://env",
		"KAPSEL_DATA_DIR":                   "/var/lib/kapsel",
		"KAPSEL_LISTEN":                     ":9000",
		"KAPSEL_ADMIN_TOKEN":                "from-env",
		"KAPSEL_METRICS_TOKEN":              "scrape-env",
		"KAPSEL_ALLOW_PRIVATE_DESTINATIONS": "true",
		"KAPSEL_WORKERS":                    "8",
		"KAPSEL_MAX_BODY_BYTES":             "1048576",
		"KAPSEL_LOG_LEVEL":                  "debug",
		"KAPSEL_LOG_FORMAT":                 "text",
		"KAPSEL_MIGRATE":                    "false",
		"KAPSEL_SHUTDOWN_TIMEOUT":           "5s",
		"KAPSEL_LEASE_DURATION":             "4s",
	})
	c, err := parseConfig("kapseld", nil, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		DatabaseURL: "postgres://env", DataDir: "/var/lib/kapsel", Listen: ":9000", AdminToken: "from-env", MetricsToken: "scrape-env",
		AllowPrivateDestinations: true, Workers: 8, MaxBodyBytes: 1 << 20, LogLevel: slog.LevelDebug,
		LogFormat: "text", Migrate: false, ShutdownTimeout: 5 * time.Second, LeaseDuration: 4 * time.Second,
		Retention: defaultRetention,
	}
	if !reflect.DeepEqual(*c, want) {
		t.Fatalf("from env %+v, want %+v", *c, want)
	}
	// Flags win over the environment; bare boolean flags mean true.
	c, err = parseConfig("kapseld", []string{
		"-listen", "127.0.0.1:0", "-workers=3", "-migrate", "-allow-private-destinations=false",
		"-log-level", "WARN", "-database-url=", "-admin-token", "flag", "-lease-duration=2.5s",
	}, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:0" || c.Workers != 3 || !c.Migrate || c.AllowPrivateDestinations || c.LeaseDuration != 2500*time.Millisecond ||
		c.LogLevel != slog.LevelWarn || c.DatabaseURL != "" || c.AdminToken != "flag" || c.DataDir != "/var/lib/kapsel" {
		t.Fatalf("flags over env %+v", *c)
	}
}

func TestParseConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"bad bool env", map[string]string{"KAPSEL_MIGRATE": "yes please"}, nil, "KAPSEL_MIGRATE"},
		{"bad int env", map[string]string{"KAPSEL_WORKERS": "-1"}, nil, "KAPSEL_WORKERS"},
		{"bad level env", map[string]string{"KAPSEL_LOG_LEVEL": "loud"}, nil, "KAPSEL_LOG_LEVEL"},
		{"bad format env", map[string]string{"KAPSEL_LOG_FORMAT": "xml"}, nil, "KAPSEL_LOG_FORMAT"},
		{"bad timeout env", map[string]string{"KAPSEL_SHUTDOWN_TIMEOUT": "0s"}, nil, "KAPSEL_SHUTDOWN_TIMEOUT"},
		{"short lease env", map[string]string{"KAPSEL_LEASE_DURATION": "1s"}, nil, "KAPSEL_LEASE_DURATION"},
		{"bad lease flag", nil, []string{"-lease-duration", "30"}, "lease-duration"},
		{"bad body flag", nil, []string{"-max-body-bytes", "ten"}, "max-body-bytes"},
		{"empty listen flag", nil, []string{"-listen="}, "listen"},
		{"unknown flag", nil, []string{"-nope"}, "nope"},
		{"extra argument", nil, []string{"extra"}, "extra"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig("kapseld", tc.args, env(tc.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func TestParseConfigHelp(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	_, err := parseConfig("kapseld serve", []string{"-h"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err %v", err)
	}
	for _, s := range settings {
		if !strings.Contains(out.String(), "-"+s.flag) || !strings.Contains(out.String(), s.env) {
			t.Fatalf("usage lacks %s / %s:\n%s", s.flag, s.env, out.String())
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ msg, dsn string }{
		{"failed to connect to postgres://kapsel:hunter2@db/kapsel", "postgres://kapsel:hunter2@db/kapsel"},
		{"bad dsn host=db password=hunter2 user=k", "host=db password=hunter2 user=k"},
		{"cannot parse password=hunter2", "host=db password='hunter2'"},
	} {
		if got := redact(tc.msg, tc.dsn); strings.Contains(got, "hunter2") {
			t.Errorf("redact(%q) = %q", tc.msg, got)
		}
	}
	if got := redact("plain", "postgres://db/x"); got != "plain" {
		t.Fatalf("redact changed a message without secrets: %q", got)
	}
}
