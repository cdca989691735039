package receiver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/ingest/verify"
	"github.com/kapsel-dev/kapsel/internal/problem"
	"github.com/kapsel-dev/kapsel/internal/reqbody"
)

// Standard Webhooks headers Kapsel signs every delivery with (docs/delivery.md).
const (
	IDHeader        = verify.StandardWebhooksIDHeader
	TimestampHeader = verify.StandardWebhooksTimestampHeader
	SignatureHeader = verify.StandardWebhooksSignatureHeader
)

// Verifier checks Kapsel's deliveries before an application handles them.
// Build one with [New]; it is safe for concurrent use.
type Verifier struct {
	cfg    Config
	scheme verify.StandardWebhooks
	bodies *reqbody.Budget // body bytes allocated on the word of Content-Length
}

// New returns a Verifier for cfg. It returns an error naming the field when
// cfg has no secret, a secret that is empty or not "whsec_<base64>" with a
// key, or a negative or inconsistent duration or size; a nil cfg has no
// secret.
func New(cfg *Config) (*Verifier, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Verifier{cfg: c, scheme: verify.StandardWebhooks{Tolerance: c.Tolerance}, bodies: reqbody.ForLimit(c.MaxBodyBytes)}, nil
}

// Verify checks the Standard Webhooks signature of one delivery: its headers
// and its raw body. It returns nil when the signature is made with one of the
// configured secrets and the timestamp is within the tolerance, and
// otherwise a *kapsel.Error with code E1001 whose detail names the header at
// fault, never a secret or a signature. It does not deduplicate; [Verifier.Wrap]
// does.
func (v *Verifier) Verify(header http.Header, body []byte) error {
	err := v.scheme.Verify(&verify.Params{
		Header:  header,
		Body:    body,
		Secrets: v.cfg.Secrets,
		Now:     v.cfg.Clock.Now(),
	})
	if err != nil {
		return &kapsel.Error{Code: kapsel.CodeSignature, Detail: err.Error(), Err: err}
	}
	return nil
}

// Wrap returns a handler that passes a request on to next only when it is a
// verified delivery whose webhook-id has not been handled yet:
//
//   - a body over Config.MaxBodyBytes: 413 E1002;
//   - a missing or bad signature, or a stale or future timestamp: 401 E1001;
//   - a webhook-id already handled successfully: 200 OK, empty, next not
//     called (the sender must stop retrying);
//   - a webhook-id being handled by another request right now: 429 E1006
//     with Retry-After (the sender comes back once that handling is over);
//   - the SeenStore failing: 503 E3001 with Retry-After;
//   - otherwise next is called with the body restored, and the id is
//     remembered if and only if next answers 2xx.
func (v *Verifier) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.serve(w, r, next)
	})
}

func (v *Verifier) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	// What is too large is reqbody's rule alone, as for the ingest: the
	// limit applies to the bytes read, a Content-Length over it is only not
	// trusted. (Refusing on the claim here too made two rules; it saved no
	// worst case, which a chunked body over the limit costs as much.)
	body, err := reqbody.Read(w, r, v.cfg.MaxBodyBytes, v.bodies)
	if err != nil {
		problem.WriteError(w, err)
		return
	}
	if err := v.Verify(r.Header, body); err != nil {
		v.cfg.Logger.Debug("receiver rejected a delivery", slog.String("reason", err.Error()))
		problem.WriteError(w, err)
		return
	}
	id := r.Header.Get(IDHeader) // non-empty: the signature covers it
	ctx := r.Context()
	status, err := v.cfg.Seen.Claim(ctx, id, v.cfg.Clock.Now())
	if err != nil {
		v.cfg.Logger.Error("receiver seen-store claim failed", slog.String("webhook_id", id), slog.String("error", err.Error()))
		problem.WriteError(w, &kapsel.Error{
			Code: kapsel.CodeStorageUnavailable, Detail: "cannot check whether this webhook-id was handled",
			RetryAfterSeconds: v.retryAfterSeconds(), Err: err,
		})
		return
	}
	switch status {
	case ClaimSeen:
		w.WriteHeader(http.StatusOK)
		return
	case ClaimBusy:
		problem.WriteError(w, &kapsel.Error{
			Code: kapsel.CodeRateLimited, Detail: "this webhook-id is being handled by another request; retry later",
			RetryAfterSeconds: v.retryAfterSeconds(),
		})
		return
	case ClaimAcquired:
	default:
		v.cfg.Logger.Error("receiver seen-store answered an unknown claim status", slog.String("webhook_id", id), slog.Int("status", int(status)))
		problem.WriteError(w, fmt.Errorf("unknown claim status %d", status))
		return
	}

	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	rec := &recorder{ResponseWriter: w}
	// Whatever happens to next — an answer, a failure, a panic — the claim
	// ends: committed on 2xx, released otherwise. The context outlives a
	// client that hung up, so the claim is never left behind.
	settle := context.WithoutCancel(ctx)
	committed := false
	defer func() {
		if !committed {
			if err := v.cfg.Seen.Release(settle, id); err != nil {
				v.cfg.Logger.Error("receiver seen-store release failed", slog.String("webhook_id", id), slog.String("error", err.Error()))
			}
		}
	}()
	next.ServeHTTP(rec, r)
	if !rec.succeeded() {
		return
	}
	if err := v.cfg.Seen.Commit(settle, id, v.cfg.Clock.Now().Add(v.cfg.SeenTTL)); err != nil {
		// The answer is already sent; the id is released, so a repeat
		// would be handled again (at least once, never lost).
		v.cfg.Logger.Error("receiver seen-store commit failed", slog.String("webhook_id", id), slog.String("error", err.Error()))
		return
	}
	committed = true
}

// retryAfterSeconds is Config.RetryAfter in whole seconds, at least 1.
func (v *Verifier) retryAfterSeconds() int {
	return max(1, int(math.Ceil(v.cfg.RetryAfter.Seconds())))
}
