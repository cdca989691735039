package ingest

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/kapsel-dev/kapsel"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestLogsHoldNoSecretsOrBodies logs at Debug through every path that logs
// (rejected signature, unknown scheme, storage failure, row retries) and
// checks that no secret, signature, credential or body reached the log.
func TestLogsHoldNoSecretsOrBodies(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e, f := setupFault(t, &Config{Logger: logger})
	const secret, body, bearer = "SECRET-hunter2", "BODY-card-4242", "BEARER-token-xyz"
	gh := e.source(nil, kapsel.VerifierConfig{Scheme: kapsel.SchemeGitHub, Secrets: []string{secret}})
	odd := e.source(nil, kapsel.VerifierConfig{Scheme: "unregistered", Secrets: []string{secret}})
	sig := "sha256=" + hmacHex(secret, body)

	refused(t, e.post(gh.ID, body, "X-Hub-Signature-256", "sha256="+hmacHex("wrong", body), "Authorization", bearer), 401, kapsel.CodeSignature)
	refused(t, e.post(odd.ID, body, "Authorization", bearer), 500, kapsel.CodeInternal)
	f.set(func(f *faultStore) {
		f.failBatch = func([]*kapsel.EventInsertParams) error { return errors.New("constraint failed") }
	})
	refused(t, e.post(gh.ID, body, "X-Hub-Signature-256", sig, "Authorization", bearer), 503, kapsel.CodeStorageUnavailable)

	out := buf.String()
	for _, want := range []string{"ingest signature rejected", "unknown verifier scheme", "ingest commit failed"} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %q:\n%s", want, out)
		}
	}
	for _, leak := range []string{secret, body, bearer, hmacHex(secret, body), hmacHex("wrong", body)} {
		if strings.Contains(out, leak) {
			t.Fatalf("log leaks %q:\n%s", leak, out)
		}
	}
}
