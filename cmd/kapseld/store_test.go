package main

import (
	"log/slog"
	"testing"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/internal/testdb"
	"github.com/kapsel-dev/kapsel/service"
)

// TestStoreKeepsCapabilities: kapseld's store wrapper lets the front door
// find the optional capabilities of the store it wraps (kapsel.StoreAs
// looks through Unwrap). Without them kapseld on Postgres ran without
// LISTEN/NOTIFY wake-ups across nodes, without clock sync (leases judged
// by each node's clock) and without transactional send.
func TestStoreKeepsCapabilities(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		s, err := openStore(t.Context(), &config{DatabaseURL: testdb.New(t)}, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.close)
		if _, ok := kapsel.StoreAs[kapsel.Notifier](s); !ok {
			t.Error("kapsel.Notifier not found through kapseld's store")
		}
		if _, ok := kapsel.StoreAs[kapsel.Timekeeper](s); !ok {
			t.Error("kapsel.Timekeeper not found through kapseld's store")
		}
		if _, ok := kapsel.StoreAs[service.TxStore](s); !ok {
			t.Error("service.TxStore not found through kapseld's store")
		}
		if _, ok := kapsel.StoreAs[kapsel.RetentionStore](s); !ok {
			t.Error("kapsel.RetentionStore not found through kapseld's store")
		}
	})
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		s, err := openStore(t.Context(), &config{DataDir: t.TempDir()}, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.close)
		if _, ok := kapsel.StoreAs[kapsel.RetentionStore](s); !ok {
			t.Error("kapsel.RetentionStore not found through kapseld's store")
		}
	})
}
