package sqlitestore_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/store/sqlitestore"
)

// crashChildEnv, when set, makes TestKill9KeepsAcknowledgedEvents the child
// process that inserts events into the directory it names.
const crashChildEnv = "KAPSEL_SQLITE_CRASH_CHILD"

// TestKill9KeepsAcknowledgedEvents is I1 of docs/guarantees.md for the embedded store: a
// child process inserts batches and prints the ids of each batch once
// EventInsertMany has returned (the moment the ingester would answer 2xx);
// the parent kills it with SIGKILL mid-stream, reopens the directory and
// requires every acknowledged event to be there with its delivery (I1: the
// event and all its deliveries are committed together). A killed process leaves
// the operating system's page cache behind, so this checks that nothing is
// acknowledged before its commit and that WAL recovery keeps it; surviving
// power loss rests on synchronous=FULL, which TestPragmas checks.
func TestKill9KeepsAcknowledgedEvents(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(t, dir)
		return
	}
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9KeepsAcknowledgedEvents$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the child: %v", err)
	}
	const wantAcks = 300
	acked := make(chan []kapsel.EventID, 1)
	go func() {
		var ids []kapsel.EventID
		sc := bufio.NewScanner(out)
		for sc.Scan() && len(ids) < wantAcks {
			if id, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
				ids = append(ids, kapsel.EventID(id))
			}
		}
		acked <- ids
	}()
	var ids []kapsel.EventID
	select {
	case ids = <-acked:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the child acknowledged too few events within 60 s")
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no clean-up runs
		t.Fatalf("killing the child: %v", err)
	}
	_ = cmd.Wait()
	if len(ids) < wantAcks {
		t.Fatalf("the child acknowledged %d events before exiting, want %d", len(ids), wantAcks)
	}

	s := open(t, dir)
	for _, id := range ids {
		e, err := s.EventGet(t.Context(), &kapsel.EventGetParams{ID: id, IncludeBody: true})
		if err != nil {
			t.Fatalf("acknowledged event %s lost after kill -9: %v", id, err)
		}
		if string(e.Body) != `{"crash":true}` || e.Deliveries.Total != 1 {
			t.Fatalf("acknowledged event %s has body %q and %d deliveries, want its body and 1 delivery", id, e.Body, e.Deliveries.Total)
		}
	}
}

// crashChild inserts batches of 10 until it is killed (bounded to 2 minutes
// and 100,000 batches should the parent vanish).
func crashChild(t *testing.T, dir string) {
	s, err := sqlitestore.Open(t.Context(), dir)
	if err != nil {
		t.Fatalf("child: Open: %v", err)
	}
	src := seed(t, s, 1, 0).source
	in := make([]*kapsel.EventInsertParams, 10)
	for i := range in {
		in[i] = &kapsel.EventInsertParams{TenantID: src.TenantID, SourceID: src.ID, Body: []byte(`{"crash":true}`), ContentType: "application/json"}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; i < 100_000 && time.Now().Before(deadline); i++ {
		res, err := s.EventInsertMany(t.Context(), &kapsel.EventInsertManyParams{Events: in, Now: base})
		if err != nil {
			t.Fatalf("child: EventInsertMany: %v", err)
		}
		var b strings.Builder
		for _, r := range res {
			fmt.Fprintf(&b, "ACK %s\n", r.Event.ID)
		}
		if _, err := os.Stdout.WriteString(b.String()); err != nil {
			return // the parent stopped reading
		}
	}
}
