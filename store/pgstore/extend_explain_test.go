package pgstore_test

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel/store/pgstore"
)

// TestExtendUsesPrimaryKey checks, on explainFixture's queue, that the
// keep-alive of 100 leases finds each delivery by primary key under the
// completion's plan settings, and never scans deliveries.
func TestExtendUsesPrimaryKey(t *testing.T) {
	t.Parallel()
	s, _, _, now := explainFixture(t)
	ids, tokens := idTokenPairs(t, s, `SELECT id, lease_token::text FROM deliveries WHERE status = 'delivering' LIMIT 100`)
	if len(ids) == 0 {
		t.Fatal("the fixture has no leased deliveries")
	}
	root, indexes := explainPinned(t, s, "extend", pgstore.ExtendSQL, []any{ids, tokens, now.Add(30 * time.Second)}, "deliveries")
	if !indexes["deliveries_pkey"] {
		t.Errorf("the extend query does not use deliveries_pkey:\n%s", root)
	}
	t.Logf("extend plan (%d leases):\n%s", len(ids), root)
}
