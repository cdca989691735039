package ingest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

func TestAcceptedStoresEventByteForByte(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	src := e.source(nil, kapsel.VerifierConfig{Scheme: kapsel.SchemeHMACSHA256, Secrets: []string{"s3cret"}})
	// Invalid JSON and invalid UTF-8: the body is opaque.
	body := "{not json \xff\x00 " + `"amount":42}`
	sig := "sha256=" + hmacHex("s3cret", body)
	w := e.post(src.ID, body, "X-Kapsel-Signature", sig, "Content-Type", "text/weird; charset=x", "X-Custom", "a", "X-Custom", "b")
	r := accepted(t, w, http.StatusAccepted)
	if r.Deliveries != 0 || r.Duplicate {
		t.Fatalf("answer %+v; want no deliveries (the tenant has no endpoint)", r)
	}
	if w.Header().Get("Idempotent-Replayed") != "" {
		t.Fatal("Idempotent-Replayed on a first delivery")
	}
	if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("acknowledgement headers %v: want Cache-Control no-store and nosniff, as management answers", w.Header())
	}
	evs := e.events(src.ID)
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	ev := evs[0]
	if ev.ID != r.ID || !bytes.Equal(ev.Body, []byte(body)) || ev.ContentType != "text/weird; charset=x" ||
		ev.TenantID != src.TenantID || ev.SourceID != src.ID {
		t.Fatalf("stored %+v", ev)
	}
	if got := ev.Headers.Values("X-Custom"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("X-Custom %q", got)
	}
	if ev.Headers.Get("Content-Type") != "" {
		t.Fatal("content type duplicated into forwarded headers")
	}
	if e.wakes != 1 {
		t.Fatalf("%d wakes, want 1", e.wakes)
	}
}

func TestResponses(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	open := e.source(nil, kapsel.VerifierConfig{})
	gh := e.source(nil, kapsel.VerifierConfig{Scheme: kapsel.SchemeGitHub, Secrets: []string{"s3cret"}})
	deleted := e.source(nil, kapsel.VerifierConfig{})
	if err := e.store.SourceDelete(e.ctx, &kapsel.SourceDeleteParams{ID: deleted.ID, Now: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	misconfigured := e.source(nil, kapsel.VerifierConfig{Scheme: "no-such-scheme"})

	for _, tc := range []struct {
		name   string
		id     kapsel.SourceID
		body   string
		hdr    []string
		status int
		code   kapsel.Code
	}{
		{"malformed id", "nope", "x", nil, 404, kapsel.CodeUnknownSource},
		{"no id", "", "x", nil, 404, kapsel.CodeUnknownSource},
		{"extra segment", open.ID + "/more", "x", nil, 404, kapsel.CodeUnknownSource},
		{"wrong prefix", kapsel.SourceID("evt_" + string(open.ID[4:])), "x", nil, 404, kapsel.CodeUnknownSource},
		{"malformed legacy id", kapsel.SourceID("ep_" + string(open.ID[4:]) + "0"), "x", nil, 404, kapsel.CodeUnknownSource},
		{"unknown id", kapsel.NewSourceID(), "x", nil, 404, kapsel.CodeUnknownSource},
		{"unknown legacy id", kapsel.SourceID(kapsel.NewEndpointID()), "x", nil, 404, kapsel.CodeUnknownSource},
		{"legacy id of a deleted source", kapsel.SourceID("ep_" + string(deleted.ID[4:])), "x", nil, 404, kapsel.CodeUnknownSource},
		{"deleted", deleted.ID, "x", nil, 404, kapsel.CodeUnknownSource},
		{"no signature", gh.ID, "x", nil, 401, kapsel.CodeSignature},
		{"bad signature", gh.ID, "x", []string{"X-Hub-Signature-256", "sha256=" + hmacHex("other", "x")}, 401, kapsel.CodeSignature},
		{"signature of other body", gh.ID, "y", []string{"X-Hub-Signature-256", "sha256=" + hmacHex("s3cret", "x")}, 401, kapsel.CodeSignature},
		{"empty key", open.ID, "x", []string{"X-Idempotency-Key", ""}, 400, kapsel.CodeBadIdempotencyKey},
		{"long key", open.ID, "x", []string{"Idempotency-Key", string(bytes.Repeat([]byte("k"), 256))}, 400, kapsel.CodeBadIdempotencyKey},
		{"unknown scheme", misconfigured.ID, "x", nil, 500, kapsel.CodeInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := refused(t, e.post(tc.id, tc.body, tc.hdr...), tc.status, tc.code)
			if d.Detail == "" {
				t.Fatal("no detail")
			}
		})
	}
	for _, src := range []*kapsel.Source{open, gh, deleted, misconfigured} {
		if n := len(e.events(src.ID)); n != 0 {
			t.Fatalf("source %s got %d events from refused requests", src.ID, n)
		}
	}
	get := httptest.NewRecorder()
	e.h.ServeHTTP(get, httptest.NewRequest(http.MethodGet, "/ingest/"+string(open.ID), nil))
	if get.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET answered %d, want 405", get.Code)
	}
	// A valid GitHub request still passes.
	accepted(t, e.post(gh.ID, "x", "X-Hub-Signature-256", "sha256="+hmacHex("s3cret", "x")), 202)
}

// TestPausedAndDisabledEndpointsGetTheirDeliveries: ingest does not look at
// the endpoints' states: a paused or disabled endpoint gets its delivery,
// which waits.
func TestPausedAndDisabledEndpointsGetTheirDeliveries(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	for _, st := range []kapsel.EndpointState{kapsel.EndpointPaused, kapsel.EndpointDisabled} {
		src := e.source(nil, kapsel.VerifierConfig{})
		ep := e.endpoint(src.TenantID, kapsel.Subscription{})
		if _, err := e.store.EndpointSetState(e.ctx, &kapsel.EndpointSetStateParams{ID: ep, State: st,
			DisabledReason: kapsel.DisabledManual, Now: e.clock.Now()}); err != nil {
			t.Fatal(err)
		}
		if r := accepted(t, e.post(src.ID, "x"), 202); r.Deliveries != 1 {
			t.Fatalf("%s: %d deliveries, want 1", st, r.Deliveries)
		}
		if n := len(e.events(src.ID)); n != 1 {
			t.Fatalf("%s: %d events", st, n)
		}
	}
}

func TestDuplicateAndConflict(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	src := e.source(nil, kapsel.VerifierConfig{})
	first := accepted(t, e.post(src.ID, "body", "X-Idempotency-Key", "k1"), 202)
	w := e.post(src.ID, "body", "X-Idempotency-Key", "k1")
	dup := accepted(t, w, 200)
	if dup.ID != first.ID || !dup.Duplicate || w.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("duplicate answer %+v, headers %v", dup, w.Header())
	}
	refused(t, e.post(src.ID, "other body", "X-Idempotency-Key", "k1"), 422, kapsel.CodeIdempotencyReused)
	// Same key on another source is another event, of the same tenant too.
	other := e.source(nil, kapsel.VerifierConfig{})
	if r := accepted(t, e.post(other.ID, "body", "X-Idempotency-Key", "k1"), 202); r.ID == first.ID {
		t.Fatal("idempotency key not scoped per source")
	}
	tn, err := e.store.TenantGet(e.ctx, &kapsel.TenantGetParams{ID: src.TenantID})
	if err != nil {
		t.Fatal(err)
	}
	sibling := e.source(tn, kapsel.VerifierConfig{})
	if r := accepted(t, e.post(sibling.ID, "body", "X-Idempotency-Key", "k1"), 202); r.ID == first.ID {
		t.Fatal("idempotency key shared by two sources of one tenant")
	}
	// After the window the key is free again.
	e.clock.Advance(kapsel.DefaultIdempotencyWindow)
	if r := accepted(t, e.post(src.ID, "other body", "X-Idempotency-Key", "k1"), 202); r.ID == first.ID {
		t.Fatal("key still taken after the window")
	}
	if n := len(e.events(src.ID)); n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
	if e.wakes != 4 {
		t.Fatalf("%d wakes, want 4 (duplicates and conflicts wake nobody)", e.wakes)
	}
}

func TestHooksSeeEveryRequest(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	src := e.source(nil, kapsel.VerifierConfig{})
	e.endpoint(src.TenantID, kapsel.Subscription{})
	e.endpoint(src.TenantID, kapsel.Subscription{SourceIDs: []kapsel.SourceID{src.ID}})
	e.endpoint(src.TenantID, kapsel.Subscription{EventTypes: []string{"never.sent"}})
	legacy := kapsel.NewEndpointID()
	e.post(src.ID, "a", "Idempotency-Key", "k")
	e.post(src.ID, "a", "Idempotency-Key", "k")
	e.post("bad", "a")
	e.post(kapsel.SourceID(legacy), "a")
	want := []kapsel.IngestInfo{
		{SourceID: src.ID, TenantID: src.TenantID, Status: 202, Deliveries: 2},
		{SourceID: src.ID, TenantID: src.TenantID, Status: 200, Duplicate: true},
		{Status: 404, Code: kapsel.CodeUnknownSource},
		{SourceID: kapsel.LegacySourceID(legacy), Status: 404, Code: kapsel.CodeUnknownSource},
	}
	if len(e.infos) != len(want) {
		t.Fatalf("%d hook calls, want %d", len(e.infos), len(want))
	}
	for i, w := range want {
		got := e.infos[i]
		if got.Duration <= 0 || got.Duration > time.Minute {
			t.Fatalf("call %d duration %v", i, got.Duration)
		}
		got.Duration = 0
		// The stored event's id; the duplicate's is the first one's.
		if stored := w.Status == 202 || w.Duplicate; stored != (got.EventID != "") || (stored && got.EventID != e.infos[0].EventID) {
			t.Fatalf("call %d: EventID %q (first %q)", i, got.EventID, e.infos[0].EventID)
		}
		got.EventID = ""
		if got != w {
			t.Fatalf("call %d: %+v, want %+v", i, got, w)
		}
	}
}

func TestIngestAPI(t *testing.T) {
	t.Parallel()
	e := setup(t, &Config{MaxBodyBytes: 4})
	src := e.source(nil, kapsel.VerifierConfig{})
	res, err := e.in.Ingest(e.ctx, &kapsel.IngestRequest{SourceID: string(src.ID), Header: http.Header{}, Body: []byte("1234")})
	if err != nil || res.Duplicate || res.Event.SourceID != src.ID || string(res.Event.Body) != "1234" {
		t.Fatalf("Ingest: %+v, %v", res, err)
	}
	_, err = e.in.Ingest(e.ctx, &kapsel.IngestRequest{SourceID: string(src.ID), Header: http.Header{}, Body: []byte("12345")})
	if kapsel.CodeOf(err) != kapsel.CodeBodyTooLarge {
		t.Fatalf("5 bytes over a 4-byte limit: %v", err)
	}
	_, err = e.in.Ingest(e.ctx, &kapsel.IngestRequest{SourceID: "ep_x", Header: http.Header{}})
	if kapsel.CodeOf(err) != kapsel.CodeUnknownSource {
		t.Fatalf("bad id: %v", err)
	}
}
