// Command kapsel-bench measures kapseld from outside, as a user would see
// it: it starts kapseld as a subprocess (or targets a running one), sets up
// a tenant, a source and endpoints through the management API, drives GitHub-signed
// webhooks at it from a load generator calibrated in the same run against
// a handler that does nothing, receives the deliveries at a local
// destination, and reports acks/s, deliveries/s, ack latency and
// ack → destination latency (p50/p90/p99/max), duplicates and lost events —
// a live progress line, a JSON result (--out) and an SVG chart (--chart).
// With --baseline river the same generator, destination and Postgres
// measure an HTTP service that enqueues one River job per webhook and a
// River worker that delivers it.
//
// The load goes to one source; --endpoints endpoints are subscribed to it,
// so each event fans out to all of them and deliveries/s counts every
// delivery (--endpoints 10: the SPEC's one event to 10 endpoints).
//
// Modes: ingest (endpoints paused: acknowledgements only), sustained
// (closed loop, ingest + delivery), rate (open loop at --rate per second,
// latency from each request's scheduled time), drain (--events accepted
// while the endpoints are paused, then resumed: deliveries/s), failing
// (--endpoints sources with an endpoint each, the load spread over them,
// one endpoint answering 500), memory (--rounds bursts of --clients
// concurrent --body-bytes bodies, the endpoint paused, while kapseld's
// VmRSS and VmHWM are read from /proc every 50 ms; then its RSS 5 s and
// 30 s after).
//
//	cd bench && go run ./cmd/kapsel-bench --mode sustained --baseline river
//
// All traffic stays on 127.0.0.1, and every loop is bounded in count and
// time. docs/benchmarks.md records runs and how to read them.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kapsel-bench:", err)
		os.Exit(1)
	}
}

// run dispatches to a subcommand: the services kapsel-bench starts as
// subprocesses of itself (serve-noop, serve-river), or the benchmark.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "serve-noop":
			return serveNoop(ctx, args[1:])
		case "serve-river":
			return serveRiver(ctx, args[1:])
		}
	}
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	return bench(ctx, opts, stdout, stderr)
}
