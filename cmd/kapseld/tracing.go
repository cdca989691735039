package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/tracing/oteltracing"
)

// Tracing is off by default and configured only by OpenTelemetry's
// standard variables (docs/operations.md, Tracing):
//
//   - It is on when OTEL_TRACES_EXPORTER is "otlp", or when an OTLP
//     endpoint is set (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
//     OTEL_EXPORTER_OTLP_ENDPOINT) and OTEL_TRACES_EXPORTER is unset.
//     Setting an endpoint is how operators point every OpenTelemetry SDK
//     at a collector; the SDK's own default exporter is otlp, but a server
//     that sends spans to localhost:4318 unasked would surprise.
//   - OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn it off
//     whatever else is set. Another exporter name is refused at start.
//   - The exporter is OTLP over HTTP (http/protobuf, the OTLP default);
//     OTEL_EXPORTER_OTLP_PROTOCOL or OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
//     set to anything else is refused at start.
//   - The rest is the SDK's, from the process environment: headers,
//     timeout, compression, certificates (OTEL_EXPORTER_OTLP_*), sampler
//     (OTEL_TRACES_SAMPLER, default parentbased_always_on), batching
//     (OTEL_BSP_*), resource (OTEL_SERVICE_NAME, default "kapseld";
//     OTEL_RESOURCE_ATTRIBUTES).

// tracingConfig is what kapseld reads of the OTEL_* variables itself.
type tracingConfig struct {
	Enabled bool
	// EndpointURL is the OTLP traces URL; empty = the SDK's default
	// (http://localhost:4318/v1/traces).
	EndpointURL string
	// ServiceName is OTEL_SERVICE_NAME; empty = "kapseld".
	ServiceName string
}

// tracingFromEnv reads the tracing configuration; errors name the variable.
func tracingFromEnv(getenv func(string) string) (tracingConfig, error) {
	var tc tracingConfig
	if v, _ := lookup(getenv, "OTEL_SDK_DISABLED"); strings.EqualFold(v, "true") {
		return tc, nil
	}
	traces, _ := lookup(getenv, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	base, _ := lookup(getenv, "OTEL_EXPORTER_OTLP_ENDPOINT")
	switch exporter, set := lookup(getenv, "OTEL_TRACES_EXPORTER"); {
	case set && exporter == "none":
		return tc, nil
	case set && exporter != "otlp":
		return tc, fmt.Errorf("OTEL_TRACES_EXPORTER: kapseld exports traces with otlp only (or none), not %q", exporter)
	case !set && traces == "" && base == "":
		return tc, nil
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v, ok := lookup(getenv, name); ok && v != "http/protobuf" {
			return tc, fmt.Errorf("%s: kapseld exports OTLP over HTTP (http/protobuf), not %q", name, v)
		}
	}
	tc.Enabled = true
	switch {
	case traces != "":
		tc.EndpointURL = traces
	case base != "":
		// As the OTLP exporter specification says: the signal's path is
		// appended to the base endpoint.
		tc.EndpointURL = strings.TrimSuffix(base, "/") + "/v1/traces"
	}
	tc.ServiceName, _ = lookup(getenv, "OTEL_SERVICE_NAME")
	return tc, nil
}

// tracing is kapseld's tracer provider while tracing is on.
type tracing struct {
	provider *sdktrace.TracerProvider
}

// newTracing builds the OTLP exporter and the tracer provider. Nothing is
// sent before the first span ends; an unreachable collector costs dropped
// spans (and a log line of the SDK), never an ingest or a delivery.
func newTracing(ctx context.Context, tc tracingConfig) (*tracing, error) {
	var opts []otlptracehttp.Option
	if tc.EndpointURL != "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(tc.EndpointURL))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	name := tc.ServiceName
	if name == "" {
		name = "kapseld"
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", name), attribute.String("service.version", kapsel.Version)))
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	if fromEnv, err := resource.New(ctx, resource.WithFromEnv()); err == nil {
		if merged, err := resource.Merge(res, fromEnv); err == nil {
			res = merged
		}
	}
	return &tracing{provider: sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))}, nil
}

// hooks returns next with the tracing hooks added.
func (t *tracing) hooks(next kapsel.Hooks) kapsel.Hooks {
	return oteltracing.New(t.provider).Hooks(next)
}

// shutdown flushes the spans not exported yet, within ctx.
func (t *tracing) shutdown(ctx context.Context) error {
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("flushing traces: %w", err)
	}
	return nil
}

// redactEndpoint drops the user information and query of an endpoint URL
// before it is logged: either may hold a credential.
func redactEndpoint(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}
