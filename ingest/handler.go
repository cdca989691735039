package ingest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/internal/problem"
	"github.com/kapsel-dev/kapsel/internal/reqbody"
)

// Pattern is the ServeMux pattern the ingest handler serves.
const Pattern = "POST /ingest/{source_id}"

// PathValue is the name of the path value that holds the source id.
const PathValue = "source_id"

// Response is the JSON body of a successful ingest (202, or 200 for a
// duplicate).
type Response struct {
	ID kapsel.EventID `json:"id"`
	// Deliveries is the number of deliveries the event was fanned out to,
	// committed with it; 0 for a duplicate.
	Deliveries int  `json:"deliveries"`
	Duplicate  bool `json:"duplicate"`
}

// Handler returns an http.Handler serving [Pattern]. Mount it on the
// application's mux (mux.Handle("/ingest/", in.Handler())) or serve it alone.
// A POST to any other path under /ingest/ (no id, extra segments) answers
// 404 E1003 like an unknown id; other methods answer 405.
func (in *Ingester) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(Pattern, in)
	mux.Handle("POST /ingest/", in) // no source_id path value: refused as malformed
	return mux
}

// ServeHTTP ingests one webhook. The source id is the request's
// "source_id" path value ([PathValue]), so the ingester can also be
// registered directly with a pattern of the application's that names it; a
// 0.1 endpoint id there names the source the upgrade made of it.
//
// Order of checks: shutting down (503 E3003), source (404 E1003; 503 E3001
// when the store fails, and with Retry-After when the source is paused),
// body (413 E1002, the limit enforced while streaming; 400 E1009 when it
// cannot be read), verifier scheme (500 E3002 when not registered),
// signature (401 E1001), a slack source's url_verification (200 text/plain
// with its challenge, nothing stored), idempotency key (400 E1004), a
// Content-Type Kapsel cannot store as it is (400 E1009), tenant rate (429
// E1006), then the commit (202 with the number of deliveries; 200
// duplicate; 422 E1005; 404 E1003; 400 E1009 when the store refuses the row
// as invalid; 503 E3001). docs/ingest.md has the full table.
func (in *Ingester) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info := kapsel.IngestInfo{}
	ctx, sp := in.startSpan(r.Context(), kapsel.IngestStart{SourceID: kapsel.SourceID(r.PathValue(PathValue)), Trace: kapsel.TraceContextFromHeader(r.Header)})
	res, err := in.serve(ctx, w, r, &info)
	switch {
	case err != nil:
		problem.WriteError(w, err)
	case res.Challenge != "":
		// Slack's url_verification: its documentation answers the challenge
		// as text/plain (it also takes JSON or a form; plain is its first
		// example and needs no encoding).
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, res.Challenge)
	default:
		out := Response{ID: res.Event.ID, Deliveries: res.Event.Deliveries.Total, Duplicate: res.Duplicate}
		status := http.StatusAccepted
		if res.Duplicate {
			out.Deliveries = 0
			status = http.StatusOK
			w.Header().Set("Idempotent-Replayed", "true")
		}
		// The same headers as every management answer: an acknowledgement is
		// never cached, and never sniffed as anything but JSON.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(out)
	}
	in.report(ctx, sp, &info, res, err, start)
}

func (in *Ingester) serve(ctx context.Context, w http.ResponseWriter, r *http.Request, info *kapsel.IngestInfo) (*kapsel.IngestResult, error) {
	release, err := in.admit()
	if err != nil {
		return nil, err
	}
	defer release()
	tgt, err := in.resolve(ctx, r.PathValue(PathValue), info)
	if err != nil {
		return nil, err
	}
	body, err := reqbody.Read(w, r, in.cfg.MaxBodyBytes, in.bodies)
	if err != nil {
		return nil, err
	}
	return in.accept(ctx, tgt, r.Header, body)
}
