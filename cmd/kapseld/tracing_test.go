package main

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func TestTracingFromEnv(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  map[string]string
		want tracingConfig
		err  string
	}{
		{"off by default", nil, tracingConfig{}, ""},
		{"an endpoint turns it on", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"},
			tracingConfig{Enabled: true, EndpointURL: "http://collector:4318/v1/traces"}, ""},
		{"the traces endpoint is taken as it is", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/custom"}, tracingConfig{Enabled: true, EndpointURL: "http://b:4318/custom"}, ""},
		{"otlp exporter alone: the SDK's default endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "edge"},
			tracingConfig{Enabled: true, ServiceName: "edge"}, ""},
		{"exporter none wins", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, tracingConfig{}, ""},
		{"SDK disabled wins", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, tracingConfig{}, ""},
		{"another exporter is refused", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, tracingConfig{}, "OTEL_TRACES_EXPORTER"},
		{"grpc is refused", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, tracingConfig{}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"http/protobuf is taken", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://d:4318", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
			tracingConfig{Enabled: true, EndpointURL: "http://d:4318/v1/traces"}, ""},
	}
	for _, c := range cases {
		got, err := tracingFromEnv(env(c.env))
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one naming %s", c.name, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case got != c.want:
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

// otlpReceiver is a tiny OTLP/HTTP traces receiver: it decodes what an
// exporter posts to /v1/traces.
type otlpReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
	attrs []string // resource attributes, "key=value"
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want protobuf at /v1/traces", http.StatusNotFound)
			return
		}
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, err := io.ReadAll(body)
		var msg coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(raw, &msg)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range msg.ResourceSpans {
			for _, kv := range rs.GetResource().GetAttributes() {
				r.attrs = append(r.attrs, kv.Key+"="+kv.Value.GetStringValue())
			}
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// TestTracingExportsOTLP runs kapseld with tracing on against an OTLP
// receiver: one webhook, retried twice by a destination that fails twice,
// arrives as one trace — the provider's — with the ingest span and three
// attempt spans under it, each request carrying its attempt's traceparent.
// With -v it prints the trace (docs/operations.md shows one).
func TestTracingExportsOTLP(t *testing.T) {
	t.Parallel()
	recv := newOTLPReceiver(t)
	var (
		mu      sync.Mutex
		parents []string
	)
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		mu.Lock()
		parents = append(parents, req.Header.Get("traceparent"))
		n := len(parents)
		mu.Unlock()
		if n <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer dest.Close()
	r := startServer(t, map[string]string{
		"KAPSEL_DATA_DIR": t.TempDir(), "KAPSEL_ADMIN_TOKEN": "admin-token-for-tracing",
		"KAPSEL_ALLOW_PRIVATE_DESTINATIONS": "true",
		"OTEL_EXPORTER_OTLP_ENDPOINT":       recv.srv.URL,
	})
	if !strings.Contains(r.logs.String(), "tracing on") {
		t.Fatalf("no \"tracing on\" log line:\n%s", r.logs.String())
	}
	ten := r.must(201, "POST", "/v1/tenants", "admin-token-for-tracing", map[string]any{"name": "acme"})
	key := ten["api_key"].(string)
	src := r.must(201, "POST", "/v1/sources", key, map[string]any{"name": "provider", "verifier": map[string]any{"scheme": "none"},
		"event_type_from": "json:/type"})
	r.must(201, "POST", "/v1/endpoints", key, map[string]any{"name": "dest", "url": dest.URL,
		"retry_policy": map[string]any{"initial_interval_ms": 20, "max_interval_ms": 50}})
	const inboundTrace, inboundParent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	r.must(202, "POST", src["ingest_url"].(string), "", []byte(`{"type":"invoice.paid"}`),
		"Content-Type", "application/json", "traceparent", "00-"+inboundTrace+"-"+inboundParent+"-01")
	eventually(t, "three requests at the destination", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(parents) == 3
	})
	if err := r.stop(); err != nil { // flushes the spans
		t.Fatal(err)
	}

	recv.mu.Lock()
	spans, attrs := slices.Clone(recv.spans), slices.Clone(recv.attrs)
	recv.mu.Unlock()
	if !slices.Contains(attrs, "service.name=kapseld") {
		t.Fatalf("resource attributes %v, want service.name=kapseld", attrs)
	}
	var ingest *tracepb.Span
	var attempts []*tracepb.Span
	for _, s := range spans {
		switch s.Name {
		case "kapsel.ingest":
			ingest = s
		case "kapsel.attempt":
			attempts = append(attempts, s)
		}
	}
	if ingest == nil || fmt.Sprintf("%x", ingest.TraceId) != inboundTrace || fmt.Sprintf("%x", ingest.ParentSpanId) != inboundParent {
		t.Fatalf("no ingest span continuing the provider's trace among %d spans", len(spans))
	}
	if len(attempts) != 3 {
		t.Fatalf("%d attempt spans, want 3", len(attempts))
	}
	slices.SortFunc(attempts, func(a, b *tracepb.Span) int { return int(a.StartTimeUnixNano - b.StartTimeUnixNano) })
	for i, a := range attempts {
		if string(a.TraceId) != string(ingest.TraceId) || string(a.ParentSpanId) != string(ingest.SpanId) {
			t.Fatalf("attempt %d is not a child of the ingest span", i+1)
		}
		if want := fmt.Sprintf("00-%s-%x-01", inboundTrace, a.SpanId); parents[i] != want {
			t.Fatalf("request %d carried traceparent %q, want %q", i+1, parents[i], want)
		}
	}
	if testing.Verbose() {
		t.Log("\n" + formatOTLP(spans))
	}
}

// formatOTLP prints exported spans as a tree.
func formatOTLP(spans []*tracepb.Span) string {
	var b strings.Builder
	var walk func(parent []byte, depth int)
	walk = func(parent []byte, depth int) {
		var kids []*tracepb.Span
		for _, s := range spans {
			if string(s.ParentSpanId) == string(parent) {
				kids = append(kids, s)
			}
		}
		slices.SortFunc(kids, func(a, b *tracepb.Span) int { return int(a.StartTimeUnixNano - b.StartTimeUnixNano) })
		for _, s := range kids {
			ind := strings.Repeat("  ", depth)
			fmt.Fprintf(&b, "%s%s %s span=%x %.2fms\n", ind, s.Name, strings.TrimPrefix(s.Kind.String(), "SPAN_KIND_"), s.SpanId,
				float64(s.EndTimeUnixNano-s.StartTimeUnixNano)/1e6)
			var kv []string
			for _, a := range s.Attributes {
				v := a.Value.GetStringValue()
				if v == "" {
					v = fmt.Sprint(a.Value.GetIntValue())
					if _, ok := a.Value.Value.(*commonpb.AnyValue_BoolValue); ok {
						v = fmt.Sprint(a.Value.GetBoolValue())
					}
				}
				kv = append(kv, a.Key+"="+v)
			}
			if len(kv) > 0 {
				fmt.Fprintf(&b, "%s    %s\n", ind, strings.Join(kv, " "))
			}
			for _, l := range s.Links {
				fmt.Fprintf(&b, "%s    link → span %x\n", ind, l.SpanId)
			}
			for _, e := range s.Events {
				fmt.Fprintf(&b, "%s    event %s\n", ind, e.Name)
			}
			if s.Status.GetCode() != 0 {
				fmt.Fprintf(&b, "%s    status %s %s\n", ind, strings.TrimPrefix(s.Status.Code.String(), "STATUS_CODE_"), s.Status.Message)
			}
			walk(s.SpanId, depth+1)
		}
	}
	// Roots: spans whose parent is not among them (the provider's span).
	have := map[string]bool{}
	for _, s := range spans {
		have[string(s.SpanId)] = true
	}
	seen := map[string]bool{}
	for _, s := range spans {
		if !have[string(s.ParentSpanId)] && !seen[string(s.ParentSpanId)] {
			seen[string(s.ParentSpanId)] = true
			fmt.Fprintf(&b, "(parent %x, the provider's)\n", s.ParentSpanId)
			walk(s.ParentSpanId, 1)
		}
	}
	return b.String()
}
