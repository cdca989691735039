package ingest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kapsel-dev/kapsel"
)

// TestContentTypeKapselCannotStore: a Content-Type holding bytes that would
// have to change to be stored (invalid UTF-8, NUL) is refused with 400
// E1009 (docs/ingest.md), and nothing is stored; it used to get 503 forever. A
// valid non-ASCII one is stored as it is.
func TestContentTypeKapselCannotStore(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	src := e.source(nil, kapsel.VerifierConfig{})
	for _, ct := range []string{"application/json; charset=\xff", "text/plain\x00", "\xfe"} {
		d := refused(t, e.post(src.ID, "{}", "Content-Type", ct), 400, kapsel.CodeMalformedRequest)
		if d.Detail == "" {
			t.Fatalf("Content-Type %q: no detail", ct)
		}
	}
	if n := len(e.events(src.ID)); n != 0 {
		t.Fatalf("%d events stored", n)
	}
	accepted(t, e.post(src.ID, "{}", "Content-Type", "text/plain; name=\"café\""), 202)
	evs := e.events(src.ID)
	if len(evs) != 1 || evs[0].ContentType != "text/plain; name=\"café\"" {
		t.Fatalf("stored %d events, content type %q", len(evs), evs[0].ContentType)
	}
}

// TestStoreRefusalAnswers400: a row the store refuses as invalid
// (kapsel.ErrInvalid — Postgres' class-22 errors, for one) answers 400 E1009
// instead of 503: retrying it would never succeed. Its neighbours in the
// batch are stored.
func TestStoreRefusalAnswers400(t *testing.T) {
	t.Parallel()
	e, f := setupFault(t, &Config{MaxFlushes: 1})
	src := e.source(nil, kapsel.VerifierConfig{})
	f.set(func(f *faultStore) {
		f.failBatch = func(rows []*kapsel.EventInsertParams) error {
			for _, r := range rows {
				if string(r.Body) == "poison" {
					return fmt.Errorf("inserting events: %w: invalid byte sequence (SQLSTATE 22021)", kapsel.ErrInvalid)
				}
			}
			return nil
		}
	})
	first, release := e.holdFirstCommit(t, f, src.ID)
	const n = 6
	body := func(i int) string {
		if i == 2 {
			return "poison"
		}
		return fmt.Sprint(i)
	}
	rest := e.postAsync(n, func(int) kapsel.SourceID { return src.ID }, body)
	waitFor(t, "rows gathered", func() bool { return e.in.batcher.waiting.Load() == n })
	release()
	first()
	for i, w := range rest() {
		if i == 2 {
			d := refused(t, w, 400, kapsel.CodeMalformedRequest)
			if strings.Contains(d.Detail, "SQLSTATE") || d.Detail == "" {
				t.Fatalf("detail %q", d.Detail)
			}
			continue
		}
		accepted(t, w, 202)
	}
	if got := len(e.events(src.ID)); got != n { // the first one, and n-1 of the rest
		t.Fatalf("%d events stored, want %d", got, n)
	}
}
