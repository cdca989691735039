package sqlitestore

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// releasedVersion is the schema version of the last release (0.1).
const releasedVersion = 1

// TestUpgradeFromReleasedSchema builds a database at the released version
// (0.1), fills it with rows in every state using that schema's SQL, opens
// it as kapseld does (which migrates it to 0.2), and checks through the
// store what migration 0005 made of it: a source per endpoint, a delivery
// per event, attempts and idempotency keys moved over, the old columns
// gone; then that the queue works on what was migrated and that events of
// a legacy source fan out to the migrated endpoint.
//
// "from 4" first migrates to the schema before 0005 and adds what it could
// hold besides (held events, event types and channels, endpoint filters),
// so that the move of the holds and the filters is checked too.
func TestUpgradeFromReleasedSchema(t *testing.T) {
	t.Parallel()
	for _, from := range []int{releasedVersion, 4} {
		t.Run("from "+string(rune('0'+from)), func(t *testing.T) {
			t.Parallel()
			f := newLegacyFixture()
			dir := t.TempDir()
			db := openRaw(t, dir)
			if err := migrateTo(t.Context(), db, func() int64 { return 0 }, releasedVersion); err != nil {
				t.Fatalf("migrating to version %d: %v", releasedVersion, err)
			}
			if err := f.writeVersion1(db); err != nil {
				t.Fatalf("writing the fixture at version %d: %v", releasedVersion, err)
			}
			if from == 4 {
				if err := migrateTo(t.Context(), db, func() int64 { return 0 }, 4); err != nil {
					t.Fatalf("migrating to version 4: %v", err)
				}
				if err := f.writeVersion4(db); err != nil {
					t.Fatalf("writing the fixture at version 4: %v", err)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			s, err := Open(t.Context(), dir)
			if err != nil {
				t.Fatalf("upgrading: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			if v, err := schemaVersion(t.Context(), s.r); err != nil || v != LatestVersion() {
				t.Fatalf("schema version after Open = %d, %v; want %d", v, err, LatestVersion())
			}
			checkUpgradedSchema(t, s)
			if from == 4 {
				checkUpgradedHolds(t, s, f)
			}
			checkUpgradedRows(t, s, f)
			checkUpgradedKeys(t, s, f)
			checkUpgradedQueue(t, s, f)
			checkUpgradedFanout(t, s, f)
		})
	}
}

// TestUpgradeFailureKeepsOldSchema checks that migration 0005 is one
// transaction: when it fails half-way (here: a table it creates exists
// already), the database stays at version 4, its events and queue state
// untouched, and Open says why.
func TestUpgradeFailureKeepsOldSchema(t *testing.T) {
	t.Parallel()
	f := newLegacyFixture()
	dir := t.TempDir()
	db := openRaw(t, dir)
	if err := migrateTo(t.Context(), db, func() int64 { return 0 }, releasedVersion); err != nil {
		t.Fatal(err)
	}
	if err := f.writeVersion1(db); err != nil {
		t.Fatal(err)
	}
	if err := migrateTo(t.Context(), db, func() int64 { return 0 }, 4); err != nil {
		t.Fatal(err)
	}
	// 0005 creates deliveries after it has rewritten sources and endpoints.
	if _, err := db.Exec(`CREATE TABLE deliveries (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(t.Context(), dir); err == nil || !strings.Contains(err.Error(), "migration 5") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open with a failing migration 5 = %v, want its error", err)
	}

	db = openRaw(t, dir)
	if v, err := schemaVersion(t.Context(), db); err != nil || v != 4 {
		t.Fatalf("schema version after the failed upgrade = %d, %v; want 4", v, err)
	}
	var n, config int
	if err := db.QueryRow(`SELECT count(*) FROM events WHERE endpoint_id IS NOT NULL AND status <> ''`).Scan(&n); err != nil || n != len(f.events) {
		t.Fatalf("events with their queue state after the failed upgrade: %d, %v; want %d", n, err, len(f.events))
	}
	if err := db.QueryRow(`SELECT count(*) FROM endpoints WHERE json_extract(config, '$.ingest_verifier') IS NOT NULL
		AND source_ids = '[]'`).Scan(&config); err != nil || config != len(f.endpoints) {
		t.Fatalf("endpoints with their verifier and no source filter after the failed upgrade: %d, %v; want %d", config, err, len(f.endpoints))
	}
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'sources'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("sources table after the failed upgrade: %d, %v; want none", n, err)
	}
}

// openRaw opens the database file in dir without migrating, as the writer
// does.
func openRaw(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName)+"?_foreign_keys=1&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// checkUpgradedSchema checks that the old columns are gone, the endpoint
// config documents hold no verifier, and the foreign keys and the file are
// sound.
func checkUpgradedSchema(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	columns := func(table string) []string {
		rows, err := s.r.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
		return out
	}
	for table, gone := range map[string][]string{
		"events": {"endpoint_id", "status", "attempts", "next_attempt_at", "next_trigger", "lease_token",
			"lease_expires_at", "last_error", "delivered_at", "held_until"},
		"idempotency_keys": {"endpoint_id"},
	} {
		have := columns(table)
		for _, c := range gone {
			if slices.Contains(have, c) {
				t.Errorf("%s still has column %s after the upgrade: %v", table, c, have)
			}
		}
	}
	var verifiers int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM endpoints WHERE json_extract(config, '$.ingest_verifier') IS NOT NULL`).
		Scan(&verifiers); err != nil || verifiers != 0 {
		t.Errorf("endpoints still holding a verifier: %d, %v", verifiers, err)
	}
	var problems int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&problems); err != nil || problems != 0 {
		t.Errorf("foreign key check after the upgrade: %d problems, %v", problems, err)
	}
	var integrity string
	if err := s.r.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Errorf("integrity check after the upgrade: %q, %v", integrity, err)
	}
}

// checkUpgradedHolds checks that the holds of schema 4's events are on
// their deliveries: the claim behaves the same whether they moved or not
// (it would hold them again), so this reads the column.
func checkUpgradedHolds(t *testing.T, s *Store, f *legacyFixture) {
	t.Helper()
	for id, want := range f.held {
		var got sql.NullInt64
		err := s.r.QueryRowContext(t.Context(), `SELECT held_until FROM deliveries WHERE event_id = ?`, id).Scan(&got)
		if err != nil || !got.Valid || (want.IsZero() && got.Int64 != 9223372036854775807) || (!want.IsZero() && got.Int64 != want.UnixMicro()) {
			t.Fatalf("held_until of the delivery of %s = %v, %v; want %v (zero: forever)", f.label(id), got, err, want)
		}
	}
}

// checkUpgradedRows reads every row back through the store: each 0.1
// endpoint as a source with its verifier and an endpoint subscribed to it,
// each event with its source and a delivery holding its queue state, the
// attempts of each delivery, the breakers.
func checkUpgradedRows(t *testing.T, s *Store, f *legacyFixture) {
	t.Helper()
	ctx := t.Context()
	liveSources := map[kapsel.TenantID][]kapsel.SourceID{}
	for _, e := range f.endpoints {
		srcID := kapsel.LegacySourceID(e.ID)
		want := &kapsel.Source{ID: srcID, TenantID: e.TenantID, Name: e.Name, State: kapsel.SourceActive,
			Verifier: e.verifier, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
		wantEp := *e.Endpoint
		wantEp.Subscription.SourceIDs = []kapsel.SourceID{srcID}
		src, err := s.SourceGet(ctx, &kapsel.SourceGetParams{ID: srcID}) // as the ingester resolves /ingest/ep_…
		ep, epErr := s.EndpointGet(ctx, &kapsel.EndpointGetParams{ID: e.ID, TenantID: e.TenantID})
		if !e.deletedAt.IsZero() {
			if !errors.Is(err, kapsel.ErrNotFound) || !errors.Is(epErr, kapsel.ErrNotFound) {
				t.Fatalf("the source and endpoint of a deleted 0.1 endpoint = %v, %v; %v, %v; want ErrNotFound", src, err, ep, epErr)
			}
			var deletedAt sql.NullInt64
			if err := s.r.QueryRowContext(ctx, `SELECT deleted_at FROM sources WHERE id = ?`, srcID).Scan(&deletedAt); err != nil ||
				!fromMicros(deletedAt).Equal(e.deletedAt) {
				t.Fatalf("the source of a deleted 0.1 endpoint is deleted at %v (%v), want %v", fromMicros(deletedAt), err, e.deletedAt)
			}
			continue
		}
		requireEqual(t, "source of "+e.Name, src, err, want)
		requireEqual(t, "endpoint "+e.Name, ep, epErr, &wantEp)
		liveSources[e.TenantID] = append(liveSources[e.TenantID], srcID)
	}
	for tenant, want := range liveSources {
		got, err := s.SourceList(ctx, &kapsel.SourceListParams{TenantID: tenant, Limit: kapsel.MaxPageLimit})
		slices.Sort(want)
		requireEqual(t, "source list", ids(got, func(s *kapsel.Source) kapsel.SourceID { return s.ID }), err, want)
	}

	attempts := map[kapsel.DeliveryID][]*kapsel.Attempt{}
	for _, a := range f.attempts {
		attempts[a.DeliveryID] = append(attempts[a.DeliveryID], a)
	}
	bySource := map[kapsel.SourceID][]kapsel.EventID{}
	for _, e := range f.events {
		want := *e.Event
		want.Deliveries.Add(e.delivery.Status, 1)
		got, err := s.EventGet(ctx, &kapsel.EventGetParams{ID: e.ID, TenantID: e.TenantID, IncludeBody: true})
		requireEqual(t, "event "+f.label(e.ID), got, err, &want)
		bySource[e.SourceID] = append(bySource[e.SourceID], e.ID)

		d, err := s.DeliveryGet(ctx, &kapsel.DeliveryGetParams{ID: e.delivery.ID, TenantID: e.TenantID})
		requireEqual(t, "delivery of "+f.label(e.ID), d, err, e.delivery)
		list, err := s.DeliveryList(ctx, &kapsel.DeliveryListParams{TenantID: e.TenantID, EventID: e.ID})
		requireEqual(t, "deliveries of "+f.label(e.ID), list, err, []*kapsel.Delivery{e.delivery})

		got2, err := s.AttemptList(ctx, &kapsel.AttemptListParams{DeliveryID: e.delivery.ID, TenantID: e.TenantID})
		requireEqual(t, "attempts of the delivery of "+f.label(e.ID), got2, err, attempts[e.delivery.ID])
		got2, err = s.AttemptList(ctx, &kapsel.AttemptListParams{EventID: e.ID, TenantID: e.TenantID})
		requireEqual(t, "attempts of "+f.label(e.ID), got2, err, attempts[e.delivery.ID])
	}
	for src, want := range bySource {
		got, err := s.EventList(ctx, &kapsel.EventListParams{SourceID: src, Limit: kapsel.MaxPageLimit})
		slices.Sort(want)
		requireEqual(t, "events of "+string(src), ids(got, func(e *kapsel.Event) kapsel.EventID { return e.ID }), err, want)
	}
	for _, want := range f.breakers {
		got, err := s.BreakerGet(ctx, &kapsel.BreakerGetParams{EndpointID: want.EndpointID})
		requireEqual(t, "breaker", got, err, want)
	}
}

// checkUpgradedKeys checks that a 0.1 key of an endpoint is a key of its
// legacy source: a live one deduplicates in that scope only, and refuses
// another body; an expired one is free.
func checkUpgradedKeys(t *testing.T, s *Store, f *legacyFixture) {
	t.Helper()
	due, delivered, failed, other := f.ev["due"], f.ev["delivered"], f.ev["failed"], f.ev["other"]
	row := func(e *legacyEvent, key string, hash []byte) *kapsel.EventInsertParams {
		return &kapsel.EventInsertParams{TenantID: e.TenantID, SourceID: e.SourceID, IdempotencyKey: key, Body: e.Body, BodyHash: hash}
	}
	res, err := s.EventInsertMany(t.Context(), &kapsel.EventInsertManyParams{Now: f.now, Events: []*kapsel.EventInsertParams{
		row(due, due.IdempotencyKey, due.BodyHash),
		row(delivered, delivered.IdempotencyKey, []byte("another body's hash")),
		row(failed, failed.IdempotencyKey, failed.BodyHash),
		row(other, other.IdempotencyKey, other.BodyHash),                                                     // the same key, another tenant's source
		{TenantID: due.TenantID, IdempotencyKey: due.IdempotencyKey, Body: due.Body, BodyHash: due.BodyHash}, // a send: another scope
	}})
	if err != nil {
		t.Fatalf("EventInsertMany with the 0.1 keys: %v", err)
	}
	if !res[0].Duplicate || res[0].Err != nil || res[0].Event.ID != due.ID {
		t.Fatalf("retrying the key of a 0.1 event by its legacy source = %+v, want a duplicate of %s", res[0], due.ID)
	}
	if !errors.Is(res[1].Err, kapsel.ErrIdempotencyConflict) {
		t.Fatalf("reusing the key of a 0.1 event with another body = %+v, want ErrIdempotencyConflict", res[1])
	}
	if res[2].Duplicate || res[2].Err != nil || res[2].Event.ID == failed.ID {
		t.Fatalf("reusing an expired 0.1 key = %+v, want a new event", res[2])
	}
	if !res[3].Duplicate || res[3].Event.ID != other.ID {
		t.Fatalf("retrying the other tenant's 0.1 key = %+v, want a duplicate of %s", res[3], other.ID)
	}
	if res[4].Duplicate || res[4].Err != nil || res[4].Event.ID == due.ID {
		t.Fatalf("a send with the key of a 0.1 event = %+v, want a new event (the tenant scope is not the source's)", res[4])
	}
	// The new event of the failing endpoint's source went to that
	// (disabled) endpoint, and the send to no migrated endpoint: each is
	// subscribed to its own legacy source.
	for i, want := range map[int]int{2: 1, 4: 0} {
		if got := res[i].Event.Deliveries.Total; got != want {
			t.Fatalf("row %d fanned out to %d endpoints, want %d", i, got, want)
		}
	}
}

// checkUpgradedQueue works the queue: a claim takes exactly the migrated
// due deliveries of claimable endpoints, with their events; a migrated
// pending delivery completes, and so does a migrated lease by its old
// token; expired leases of blocked endpoints are given back or, for a
// deleted endpoint, failed; held deliveries are released when their
// endpoint is unblocked.
func checkUpgradedQueue(t *testing.T, s *Store, f *legacyFixture) {
	t.Helper()
	ctx := t.Context()
	claim := func() map[string]*kapsel.Delivery {
		t.Helper()
		got, err := s.DeliveryClaim(ctx, &kapsel.DeliveryClaimParams{Limit: 100, LeaseDuration: time.Minute, Now: f.now})
		if err != nil {
			t.Fatalf("DeliveryClaim: %v", err)
		}
		out := map[string]*kapsel.Delivery{}
		for _, d := range got {
			label := f.label(d.EventID)
			want := f.ev[label]
			if d.ID != want.delivery.ID || d.Status != kapsel.DeliveryDelivering || d.LeaseToken == "" ||
				d.LeaseToken == want.delivery.LeaseToken || d.Attempts != want.delivery.Attempts ||
				d.Event == nil || string(d.Event.Body) != string(want.Body) || d.Event.Headers.Get("X-Request-Id") != "req-"+label {
				t.Fatalf("claimed %+v, want the delivery of %s leased anew, with its attempts and its event", d, label)
			}
			out[label] = d
		}
		return out
	}
	labels := func(m map[string]*kapsel.Delivery) []string {
		l := slices.Collect(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		})
		slices.Sort(l)
		return l
	}
	first := claim()
	if got, want := labels(first), []string{"due", "expired", "other", "retried"}; !slices.Equal(got, want) {
		t.Fatalf("the first claim after the upgrade took %v, want %v", got, want)
	}

	complete := func(d *kapsel.Delivery, token string, number int, status kapsel.DeliveryStatus) {
		t.Helper()
		errs, err := s.DeliveryComplete(ctx, &kapsel.DeliveryCompleteParams{Now: f.now, Completions: []kapsel.DeliveryCompletion{{
			DeliveryID: d.ID, LeaseToken: token, Status: status, NextAttemptAt: f.now.Add(time.Hour),
			Attempt: kapsel.Attempt{Number: number, StartedAt: f.now, Duration: time.Second, StatusCode: 200},
		}}})
		if err != nil || errs[0] != nil {
			t.Fatalf("completing the migrated delivery %s: %v, %v", d.ID, err, errs)
		}
		got, err := s.DeliveryGet(ctx, &kapsel.DeliveryGetParams{ID: d.ID})
		if err != nil || got.Status != status || got.Attempts != number || got.LeaseToken != "" {
			t.Fatalf("the migrated delivery after its completion = %+v, %v; want %s after attempt %d", got, err, status, number)
		}
		as, err := s.AttemptList(ctx, &kapsel.AttemptListParams{DeliveryID: d.ID})
		if err != nil || len(as) != number || as[number-1].DeliveryID != d.ID || as[number-1].Number != number ||
			as[number-1].EventID != d.EventID || as[number-1].EndpointID != d.EndpointID {
			t.Fatalf("attempts of the migrated delivery after its completion = %+v, %v", as, err)
		}
	}
	complete(first["due"], first["due"].LeaseToken, 1, kapsel.DeliveryDelivered)
	complete(first["expired"], first["expired"].LeaseToken, 2, kapsel.DeliveryPending)
	live := f.ev["live"].delivery
	complete(live, live.LeaseToken, 1, kapsel.DeliveryDelivered) // a 0.1 lease token still fences

	for label, want := range map[string]struct {
		status    kapsel.DeliveryStatus
		lastError string
	}{
		"expired-paused":  {kapsel.DeliveryPending, ""},
		"expired-deleted": {kapsel.DeliveryFailed, kapsel.LastErrorEndpointDeleted},
	} {
		got, err := s.DeliveryGet(ctx, &kapsel.DeliveryGetParams{ID: f.ev[label].delivery.ID})
		if err != nil || got.Status != want.status || got.LastError != want.lastError || got.LeaseToken != "" || got.Attempts != 0 {
			t.Fatalf("the expired lease %s after a claim = %+v, %v; want %s, unleased, unattempted, last error %q",
				label, got, err, want.status, want.lastError)
		}
	}

	if _, err := s.EndpointSetState(ctx, &kapsel.EndpointSetStateParams{ID: f.ep["paused"].ID, State: kapsel.EndpointActive, Now: f.now}); err != nil {
		t.Fatal(err)
	}
	if err := s.BreakerDelete(ctx, &kapsel.BreakerDeleteParams{EndpointID: f.ep["open"].ID}); err != nil {
		t.Fatal(err)
	}
	if got, want := labels(claim()), []string{"expired-paused", "open", "paused"}; !slices.Equal(got, want) {
		t.Fatalf("the claim after unblocking took %v, want %v", got, want)
	}
	if got := claim(); len(got) != 0 {
		t.Fatalf("a third claim took %v, want nothing (disabled and deleted endpoints stay blocked)", labels(got))
	}
}

// checkUpgradedFanout inserts events by the legacy source of a 0.1
// endpoint, as /ingest/ep_… does after the upgrade: each fans out to that
// endpoint, and only to it; its filters from schema 4 still apply.
func checkUpgradedFanout(t *testing.T, s *Store, f *legacyFixture) {
	t.Helper()
	ctx := t.Context()
	active := f.ep["orders"]
	typed := &kapsel.EventInsertParams{TenantID: active.TenantID, SourceID: kapsel.LegacySourceID(active.ID),
		Type: "invoice.paid", Channels: []string{"billing"}, Body: []byte(`{"new":true}`), ContentType: "application/json"}
	untyped := *typed
	untyped.Type, untyped.Channels = "push", nil
	res, err := s.EventInsertMany(ctx, &kapsel.EventInsertManyParams{Now: f.now, Events: []*kapsel.EventInsertParams{typed, &untyped}})
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("inserting by a legacy source: %v, %+v", err, res)
	}
	ev := res[0].Event
	if ev.SourceID != typed.SourceID || ev.Deliveries != (kapsel.DeliverySummary{Total: 1, Pending: 1}) {
		t.Fatalf("the event of a legacy source = %+v, want one delivery", ev)
	}
	ds, err := s.DeliveryList(ctx, &kapsel.DeliveryListParams{EventID: ev.ID})
	if err != nil || len(ds) != 1 || ds[0].EndpointID != active.ID || ds[0].Status != kapsel.DeliveryPending {
		t.Fatalf("the deliveries of the event of a legacy source = %+v, %v; want one, pending, to %s", ds, err, active.ID)
	}
	// Schema 4's filter (invoice.*, on billing) is kept: a push does not
	// match it. Without a filter, it does.
	wantUntyped := 1
	if len(active.Subscription.EventTypes) > 0 {
		wantUntyped = 0
	}
	if got := res[1].Event.Deliveries.Total; got != wantUntyped {
		t.Fatalf("a push by the legacy source fanned out to %d endpoints, want %d", got, wantUntyped)
	}
	claimed, err := s.DeliveryClaim(ctx, &kapsel.DeliveryClaimParams{Limit: 100, LeaseDuration: time.Minute, Now: f.now})
	if err != nil || len(claimed) == 0 || claimed[0].ID != ds[0].ID || string(claimed[0].Event.Body) != `{"new":true}` {
		t.Fatalf("claiming after the insert = %+v, %v; want %s first", claimed, err, ds[0].ID)
	}
}

// label returns the fixture's name of an event.
func (f *legacyFixture) label(id kapsel.EventID) string {
	for label, e := range f.ev {
		if e.ID == id {
			return label
		}
	}
	return "unknown " + string(id)
}

// requireEqual fails t unless err is nil and got deeply equals want.
func requireEqual[T any](t *testing.T, what string, got T, err error, want T) {
	t.Helper()
	if err != nil {
		t.Fatalf("reading %s: %v", what, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s after the upgrade:\n got %s\nwant %s", what, dump(got), dump(want))
	}
}

// dump formats v for a failure message, following pointers in slices.
func dump(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		var parts []string
		for i := range rv.Len() {
			parts = append(parts, dump(rv.Index(i).Interface()))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		return "&" + strings.TrimPrefix(dumpValue(rv.Elem().Interface()), "&")
	}
	return dumpValue(v)
}

func dumpValue(v any) string { return fmt.Sprintf("%+v", v) }

func ids[T any, ID ~string](items []T, id func(T) ID) []ID {
	out := make([]ID, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}
