// Command kapseld is Kapsel's standalone server: webhook ingest, delivery,
// the management API, health probes and metrics on one listener.
//
//	kapseld [serve] [flags]      run the server (the default command)
//	kapseld migrate up [flags]   apply the schema migrations, then print the version
//	kapseld migrate status       print the schema version
//	kapseld version              print the version
//
// Every flag has a KAPSEL_* environment variable; flags win. See
// docs/configuration.md. kapseld holds no business logic: it reads its
// configuration, builds the library's parts and serves them.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/kapsel-dev/kapsel"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tuneRuntime = true // this process is kapseld's own: see memory.go
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kapseld:", err)
		os.Exit(1)
	}
}

// run executes the command in args. A cancelled ctx makes "serve" shut
// down gracefully and return nil. ready, when not nil, receives the server
// once it listens (tests use it to learn the :0 address).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, ready func(*server)) error {
	cmd, rest := "serve", args
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, rest = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "serve":
		cfg, log, err := setup("kapseld serve", rest, getenv, stderr)
		if err != nil {
			return err
		}
		if cfg.AdminToken == "" {
			cfg.AdminToken = newAdminToken()
			// Printed once, on stderr, never through the logger: log lines
			// must never carry a secret.
			fmt.Fprintf(stderr, "kapseld: KAPSEL_ADMIN_TOKEN is not set; the admin token of this run is:\n\n    %s\n\n"+
				"Set KAPSEL_ADMIN_TOKEN to keep one across restarts.\n", cfg.AdminToken)
		}
		s, err := newServer(ctx, cfg, log)
		if err != nil {
			return redactErr(err, cfg.DatabaseURL)
		}
		if ready != nil {
			ready(s)
		}
		if tuneRuntime {
			tuneMemory(ctx, cfg, getenv, log)
		}
		return redactErr(s.Run(ctx), cfg.DatabaseURL)
	case "migrate":
		if len(rest) == 0 || (rest[0] != "up" && rest[0] != "status") {
			return errors.New("usage: kapseld migrate up|status [flags]")
		}
		cfg, log, err := setup("kapseld migrate "+rest[0], rest[1:], getenv, stderr)
		if err != nil {
			return err
		}
		err = migrateCommand(ctx, rest[0], cfg, log, func(format string, a ...any) { fmt.Fprintf(stdout, format, a...) })
		return redactErr(err, cfg.DatabaseURL)
	case "help":
		fmt.Fprintln(stdout, "usage: kapseld [serve] [flags] | kapseld migrate up|status [flags] | kapseld version\n"+
			"Run \"kapseld serve -h\" for the flags.")
		return nil
	}
	return fmt.Errorf("unknown command %q; try kapseld help", cmd)
}

// setup parses the configuration and builds the logger.
func setup(name string, args []string, getenv func(string) string, stderr io.Writer) (*config, *slog.Logger, error) {
	cfg, err := parseConfig(name, args, getenv, stderr)
	if err != nil {
		return nil, nil, err
	}
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler = slog.NewJSONHandler(stderr, opts)
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(stderr, opts)
	}
	return cfg, slog.New(h), nil
}

// newAdminToken returns a random admin token: 32 bytes, base64url.
func newAdminToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "kadm_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// versionString is "kapseld <version> (<vcs revision>, <go version>)".
func versionString() string {
	rev := "unknown revision"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = s.Value[:12]
			}
		}
	}
	return fmt.Sprintf("kapseld %s (%s, %s)", kapsel.Version, rev, runtime.Version())
}
