package ingest

import (
	"net/http"
	"testing"

	"github.com/kapsel-dev/kapsel"
)

// The url_verification request of Slack's documentation.
const (
	slackChallengeValue = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
	slackChallengeBody  = `{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"` + slackChallengeValue + `","type":"url_verification"}`
)

// TestSlackURLVerification (issue 9 item 17): a verified url_verification
// request is answered 200 with its challenge as text/plain, as Slack's
// documentation shows, and stores nothing; an unverified one is 401.
func TestSlackURLVerification(t *testing.T) {
	t.Parallel()
	const secret = "8f742231b10e8888abcd99yyyzzz85a5"
	e := setup(t, nil)
	src := e.source(nil, kapsel.VerifierConfig{Scheme: kapsel.SchemeSlack, Secrets: []string{secret}})
	now := e.clock.Now().Unix()

	w := e.post(src.ID, slackChallengeBody, append(signSlack(secret, slackChallengeBody, now), "Content-Type", "application/json")...)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	if got := w.Body.String(); got != slackChallengeValue {
		t.Fatalf("body %q, want the challenge %q", got, slackChallengeValue)
	}
	if n := len(e.events(src.ID)); n != 0 {
		t.Fatalf("%d events stored for a url_verification", n)
	}
	if e.wakes != 0 {
		t.Fatalf("dispatcher woken %d times for nothing stored", e.wakes)
	}
	e.mu.Lock()
	info := e.infos[len(e.infos)-1]
	e.mu.Unlock()
	if info.Status != http.StatusOK || info.Code != "" || info.Duplicate || info.SourceID != src.ID {
		t.Fatalf("OnIngest got %+v", info)
	}

	// Unverified: no signature, a wrong secret, a tampered challenge.
	refused(t, e.post(src.ID, slackChallengeBody, "Content-Type", "application/json"), 401, kapsel.CodeSignature)
	refused(t, e.post(src.ID, slackChallengeBody, signSlack("other", slackChallengeBody, now)...), 401, kapsel.CodeSignature)
	tampered := `{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"evil","type":"url_verification"}`
	refused(t, e.post(src.ID, tampered, signSlack(secret, slackChallengeBody, now)...), 401, kapsel.CodeSignature)
	if n := len(e.events(src.ID)); n != 0 {
		t.Fatalf("%d events stored", n)
	}

	// The library entry point says the same: a challenge, no event.
	h := http.Header{}
	for kv, i := signSlack(secret, slackChallengeBody, now), 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	res, err := e.in.Ingest(e.ctx, &kapsel.IngestRequest{SourceID: string(src.ID), Header: h, Body: []byte(slackChallengeBody)})
	if err != nil || res.Challenge != slackChallengeValue || res.Event != nil {
		t.Fatalf("Ingest: %+v, %v", res, err)
	}
}

// TestURLVerificationOnlyForSlack: the same body at a source of another
// scheme, or a Slack event that is not a url_verification, is an ordinary
// event.
func TestURLVerificationOnlyForSlack(t *testing.T) {
	t.Parallel()
	const secret = "8f742231b10e8888abcd99yyyzzz85a5"
	e := setup(t, nil)
	open := e.source(nil, kapsel.VerifierConfig{Scheme: kapsel.SchemeNone})
	accepted(t, e.post(open.ID, slackChallengeBody), 202)
	if n := len(e.events(open.ID)); n != 1 {
		t.Fatalf("%d events at a none source, want 1", n)
	}
	slack := e.source(nil, kapsel.VerifierConfig{Scheme: kapsel.SchemeSlack, Secrets: []string{secret}})
	for _, body := range []string{
		slackEventBody,
		`{"type":"url_verification"}`,                // no challenge to answer
		`{"type":"url_verification","challenge":42}`, // not a string
		`{"type":"url_verification","challenge":""}`, // nothing to answer
		`{"type":"event_callback","challenge":"x"}`,  // not a url_verification
	} {
		accepted(t, e.post(slack.ID, body, signSlack(secret, body, e.clock.Now().Unix())...), 202)
	}
	if n := len(e.events(slack.ID)); n != 5 {
		t.Fatalf("%d events, want 5", n)
	}
}
