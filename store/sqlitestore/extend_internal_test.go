package sqlitestore

import (
	"strings"
	"testing"
)

// TestExtendQueryPlan checks that a lease is extended by primary key, not by
// a scan of deliveries.
func TestExtendQueryPlan(t *testing.T) {
	t.Parallel()
	s := openInternal(t)
	plan := strings.Join(queryPlan(t, s.w, extendLease, int64(0), "dlv_1", "token"), "\n")
	t.Logf("extend plan:\n%s", plan)
	if !strings.Contains(plan, "USING PRIMARY KEY (id=?)") {
		t.Errorf("extending a lease does not find its delivery by primary key:\n%s", plan)
	}
}
