package ingest_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/ingest"
)

// TestPostgresOutsideBytes: on Postgres, which refuses invalid UTF-8 and NUL
// in text (SQLSTATE 22021), a Content-Type with such bytes answers 400 E1009
// (it used to answer 503 forever), and a forwarded header with them is
// stored made safe (kapsel.SafeText) instead of failing the commit.
func TestPostgresOutsideBytes(t *testing.T) {
	t.Parallel()
	f := newPGFixture(t, 2, nil)

	r := f.request([]byte(`{"n":1}`), "d-ct")
	r.Header.Set("Content-Type", "application/json; charset=\xff")
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	var p struct{ Code kapsel.Code }
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	if w.Code != 400 || p.Code != kapsel.CodeMalformedRequest {
		t.Fatalf("Content-Type with 0xff: %d %s, want 400 E1009", w.Code, w.Body)
	}

	r = f.request([]byte(`{"n":2}`), "d-hdr")
	r.Header.Set("X-Note", "caf\xe9\x00")
	w = httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	var res ingest.Response
	if err := json.Unmarshal(w.Body.Bytes(), &res); w.Code != 202 || err != nil {
		t.Fatalf("forwarded header with 0xe9 and NUL: %d %s", w.Code, w.Body)
	}
	got, err := f.store.EventGet(context.Background(), &kapsel.EventGetParams{ID: res.ID})
	if err != nil {
		t.Fatal(err)
	}
	if v := got.Headers.Get("X-Note"); v != "caf\uFFFD\uFFFD" {
		t.Fatalf("stored X-Note %q", v)
	}
	if n := f.count(t); n != 1 {
		t.Fatalf("%d events stored, want 1", n)
	}
}
