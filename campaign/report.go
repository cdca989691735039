package campaign

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// results collects the rows of the run's table.
var (
	resultsMu sync.Mutex
	results   []*result
)

func addResult(r *result) {
	resultsMu.Lock()
	results = append(results, r)
	resultsMu.Unlock()
}

// table formats rows as the Markdown table of docs/guarantees.md.
func table(rows []*result) string {
	var b strings.Builder
	b.WriteString("| scenario | load held | faults injected | acknowledged | lost | duplicates | requests / attempt records | recovery after kill -9 |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		reqs := fmt.Sprintf("%d / %d", r.Requests, r.Records)
		if r.Cut > 0 {
			reqs += fmt.Sprintf(" (%d cut by kill -9)", r.Cut)
		}
		rec := "—"
		if r.RecoveryN > 0 {
			rec = fmt.Sprintf("%s (max over %d deliveries)", r.Recovery.Round(100*time.Millisecond), r.RecoveryN)
		}
		fmt.Fprintf(&b, "| %s | %.0f events/s | %s | %d | %d | %d | %s | %s |\n",
			r.Scenario, r.Rate, r.Faults, r.Acked, r.Lost, r.Duplicates, reqs, rec)
	}
	return b.String()
}
