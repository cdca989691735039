package pgstore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

// fixture is a migrated store with one tenant and endpoint, subscribed to
// all of the tenant's events.
type fixture struct {
	t   *testing.T
	s   *pgstore.Store
	url string
	ep  *kapsel.Endpoint
	now time.Time
}

// setup marks t parallel and returns a fresh fixture.
func setup(t *testing.T) *fixture {
	t.Helper()
	t.Parallel()
	return newFixture(t)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s, url := newStoreURL(t)
	f := &fixture{t: t, s: s, url: url, now: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)}
	ten, err := s.TenantInsert(t.Context(), &kapsel.TenantInsertParams{Name: "t", APIKeyHash: []byte(t.Name()), Now: f.now})
	if err != nil {
		t.Fatal(err)
	}
	f.ep, err = s.EndpointInsert(t.Context(), &kapsel.EndpointInsertParams{Endpoint: &kapsel.Endpoint{
		TenantID: ten.ID, Name: "e", URL: "https://example.com/", RetryPolicy: kapsel.DefaultRetryPolicy(),
	}, Now: f.now})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// inputs returns n insert params for the fixture's endpoint, keyed
// key-0…key-n-1 when key is set.
func (f *fixture) inputs(n int, key string) []*kapsel.EventInsertParams {
	in := make([]*kapsel.EventInsertParams, n)
	for i := range in {
		body := []byte(fmt.Sprintf(`{"n":%d}`, i))
		sum := sha256.Sum256(body)
		in[i] = &kapsel.EventInsertParams{TenantID: f.ep.TenantID, Body: body, BodyHash: sum[:], ContentType: "application/json"}
		if key != "" {
			in[i].IdempotencyKey = fmt.Sprint(key, "-", i)
		}
	}
	return in
}

func (f *fixture) insert(in []*kapsel.EventInsertParams) []kapsel.EventInsertResult {
	f.t.Helper()
	res, err := f.s.EventInsertMany(f.t.Context(), &kapsel.EventInsertManyParams{Events: in, Now: f.now})
	if err != nil {
		f.t.Fatalf("EventInsertMany: %v", err)
	}
	return res
}

// schema returns the store's schema, the payload of its notifications.
func (f *fixture) schema() string {
	f.t.Helper()
	var schema string
	if err := f.s.Pool().QueryRow(f.t.Context(), `SELECT current_schema()`).Scan(&schema); err != nil {
		f.t.Fatal(err)
	}
	return schema
}

// rawListener is a plain LISTEN connection that counts this schema's
// notifications exactly (the store's own listener coalesces them).
type rawListener struct {
	t      *testing.T
	conn   *pgx.Conn
	schema string
}

func (f *fixture) rawListener() *rawListener {
	f.t.Helper()
	conn, err := pgx.Connect(f.t.Context(), f.url)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(f.t.Context(), "LISTEN "+pgstore.NotifyChannel); err != nil {
		f.t.Fatal(err)
	}
	return &rawListener{t: f.t, conn: conn, schema: f.schema()}
}

// count returns how many notifications for the schema arrive until none has
// for quiet. Other tests' notifications (other schemas) are ignored.
func (l *rawListener) count(quiet time.Duration) int {
	l.t.Helper()
	n := 0
	for {
		ctx, cancel := context.WithTimeout(l.t.Context(), quiet)
		note, err := l.conn.WaitForNotification(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return n
		}
		if err != nil {
			l.t.Fatalf("waiting for a notification: %v", err)
		}
		if note.Payload == l.schema {
			n++
		}
	}
}

// waitWake requires a value on ch within a generous deadline.
func waitWake(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the listener channel closed", what)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no wake-up within 10 s", what)
	}
}

func TestNotifyOncePerBatch(t *testing.T) {
	f := setup(t)
	l := f.rawListener()

	f.insert(f.inputs(50, "a"))
	if n := l.count(300 * time.Millisecond); n != 1 {
		t.Fatalf("a batch of 50 events sent %d notifications, want 1", n)
	}
	// A second endpoint: each event now fans out to two deliveries, still
	// one notification per batch.
	f.endpoint(kapsel.EndpointActive)
	f.insert(f.inputs(20, "b"))
	if n := l.count(300 * time.Millisecond); n != 1 {
		t.Fatalf("a batch of 20 events to 2 endpoints sent %d notifications, want 1", n)
	}
	f.insert(f.inputs(1, ""))
	f.insert(f.inputs(3, ""))
	if n := l.count(300 * time.Millisecond); n != 2 {
		t.Fatalf("two batches sent %d notifications, want 2", n)
	}
	// Only duplicates: nothing new, nobody to wake.
	if res := f.insert(f.inputs(50, "a")); !res[0].Duplicate {
		t.Fatalf("replayed batch: %+v, want duplicates", res[0])
	}
	if n := l.count(300 * time.Millisecond); n != 0 {
		t.Fatalf("a batch of duplicates sent %d notifications, want 0", n)
	}
}

// TestNotifyNotForEventsWithoutDeliveries: an event that matches no
// endpoint is stored, and wakes nobody.
func TestNotifyNotForEventsWithoutDeliveries(t *testing.T) {
	f := setup(t)
	l := f.rawListener()
	in := f.inputs(3, "")
	for _, e := range in {
		e.Type = "nobody.listens"
	}
	if _, err := f.s.EndpointUpdate(t.Context(), &kapsel.EndpointUpdateParams{ID: f.ep.ID, Now: f.now,
		Update: func(e *kapsel.Endpoint) error { e.Subscription.EventTypes = []string{"invoice.*"}; return nil }}); err != nil {
		t.Fatal(err)
	}
	res := f.insert(in)
	if res[0].Err != nil || res[0].Event.Deliveries.Total != 0 {
		t.Fatalf("insert of an event nobody subscribes to: %+v", res[0])
	}
	if n := l.count(300 * time.Millisecond); n != 0 {
		t.Fatalf("a batch without deliveries sent %d notifications, want 0", n)
	}
}

func TestDeliveryListenWakes(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := f.s.DeliveryListen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.insert(f.inputs(10, ""))
	waitWake(t, ch, "after a committed batch")

	// Batches committed while nobody reads leave a wake-up waiting.
	for range 5 {
		f.insert(f.inputs(1, ""))
	}
	waitWake(t, ch, "after five batches")
	f.insert(f.inputs(1, "")) // and the channel keeps working

	waitWake(t, ch, "after another batch")
	cancel()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the channel was not closed after ctx ended")
		}
	}
}

func TestDeliveryListenIgnoresOtherSchemas(t *testing.T) {
	f := setup(t)
	other := newFixture(t)
	ch, err := f.s.DeliveryListen(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// A raw listener on the other schema proves its notification went out.
	l := other.rawListener()
	other.insert(other.inputs(5, ""))
	if n := l.count(300 * time.Millisecond); n != 1 {
		t.Fatalf("other schema: %d notifications, want 1", n)
	}
	select {
	case <-ch:
		t.Fatal("woken by another schema's events")
	case <-time.After(300 * time.Millisecond):
	}
	f.insert(f.inputs(1, ""))
	waitWake(t, ch, "after a batch in our schema")
}

func TestDeliveryListenReconnects(t *testing.T) {
	f := setup(t)
	f.s.Close()
	// A store whose connections carry a name we can find in pg_stat_activity.
	app := fmt.Sprintf("kapsel_listen_test_%d", time.Now().UnixNano())
	s, err := pgstore.Open(t.Context(), f.url+"&pool_max_conns=2&application_name="+app,
		&pgstore.Config{
			Logger:             slog.New(slog.DiscardHandler),
			ListenReconnectMin: 10 * time.Millisecond, ListenReconnectMax: 50 * time.Millisecond,
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	f.s = s
	ch, err := s.DeliveryListen(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	var killed int
	if err := s.Pool().QueryRow(t.Context(), `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND query LIKE 'LISTEN%'`, app).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d listener connections, want 1", killed)
	}
	// The listener wakes its reader once it is back (events may have been
	// committed while it was away) …
	waitWake(t, ch, "after reconnecting")
	// … and then hears new batches again.
	f.insert(f.inputs(1, ""))
	waitWake(t, ch, "after a batch on the new connection")
}

func TestDeliveryListenUnreachable(t *testing.T) {
	t.Parallel()
	s, err := pgstore.Open(t.Context(), "postgres://root@127.0.0.1:1/kapsel?sslmode=disable&connect_timeout=2", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.DeliveryListen(t.Context()); !errors.Is(err, kapsel.ErrUnavailable) {
		t.Fatalf("DeliveryListen on an unreachable server = %v, want ErrUnavailable", err)
	}
}
