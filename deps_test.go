package kapsel_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The core, ingest, delivery, the breakers, the management API and the
// stores carry no telemetry library (SPEC §2): metrics and traces come
// through kapsel.Hooks, and the Prometheus and OpenTelemetry adapters
// (metrics/prommetrics, tracing/oteltracing) are the only packages that
// import them. An application that embeds Kapsel without them builds
// neither in.
func TestCoreHasNoTelemetryDependency(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH")
	}
	pkgs := []string{
		"github.com/kapsel-dev/kapsel",
		"github.com/kapsel-dev/kapsel/ingest",
		"github.com/kapsel-dev/kapsel/delivery",
		"github.com/kapsel-dev/kapsel/breaker",
		"github.com/kapsel-dev/kapsel/service",
		"github.com/kapsel-dev/kapsel/store/memstore",
		"github.com/kapsel-dev/kapsel/store/pgstore",
		"github.com/kapsel-dev/kapsel/store/sqlitestore",
	}
	out, err := exec.Command("go", append([]string{"list", "-deps"}, pkgs...)...).Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < len(pkgs) {
		t.Fatalf("go list -deps listed %d packages for %d", len(deps), len(pkgs))
	}
	for _, dep := range deps {
		for _, banned := range []string{"go.opentelemetry.io/", "github.com/prometheus/"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("%s is a dependency of the core (go list -deps %s)", dep, strings.Join(pkgs, " "))
			}
		}
	}
	// The test can fail: the adapter does pull OpenTelemetry in.
	out, err = exec.Command("go", "list", "-deps", "github.com/kapsel-dev/kapsel/tracing/oteltracing").Output()
	if err != nil {
		t.Fatalf("go list -deps oteltracing: %v", err)
	}
	if !strings.Contains(string(out), "go.opentelemetry.io/otel/trace") {
		t.Fatalf("go list -deps of the OpenTelemetry adapter does not list go.opentelemetry.io/otel/trace:\n%s", out)
	}
}
