package pgstore_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/internal/testdb"
	"github.com/kapsel-dev/kapsel/store/pgstore"
	"github.com/kapsel-dev/kapsel/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) kapsel.Store { return newStore(t) })
}

// newStore returns a migrated store in a fresh schema, closed when t ends.
func newStore(t testing.TB) *pgstore.Store {
	t.Helper()
	s, _ := newStoreURL(t)
	return s
}

// newStoreURL is newStore that also returns the schema's connection string.
func newStoreURL(t testing.TB) (*pgstore.Store, string) {
	t.Helper()
	url := testdb.New(t)
	s := openStore(t, url)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s, url
}

// openStore opens an unmigrated store on url, closed when t ends. Pools
// stay small: many tests share one server.
func openStore(t testing.TB, url string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), url+"&pool_max_conns=4", nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestOpenPoolSize: Open sizes the pool for Kapsel's concurrent parts
// (DefaultMaxConns) unless the connection string says otherwise.
func TestOpenPoolSize(t *testing.T) {
	t.Parallel()
	url := testdb.New(t)
	for _, tc := range []struct {
		conn string
		want int32
	}{
		{url, max(int32(runtime.NumCPU()), pgstore.DefaultMaxConns)},
		{url + "&pool_max_conns=3", 3},
		{url + "&pool_max_conns=40", 40},
	} {
		s, err := pgstore.Open(context.Background(), tc.conn, nil)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if got := s.Pool().Config().MaxConns; got != tc.want {
			t.Errorf("Open(%q): pool of %d connections, want %d", tc.conn[len(url):], got, tc.want)
		}
		s.Close()
	}
}
