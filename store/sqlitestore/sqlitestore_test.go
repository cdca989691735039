package sqlitestore_test

import (
	"testing"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/sqlitestore"
	"github.com/kapsel-dev/kapsel/store/storetest"
)

// open opens a store in a fresh directory and closes it at the end of t.
func open(t *testing.T, dir string) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(t.Context(), dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) kapsel.Store { return open(t, t.TempDir()) })
}
