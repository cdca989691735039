package campaign

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// api calls the management API of whichever node is up, as a client would,
// and keeps every error body it receives for the secret scan.
type api struct {
	t      testing.TB
	base   func() string // a live node's base URL
	client *http.Client

	mu         sync.Mutex
	errorTexts []string
}

func newAPI(t testing.TB, base func() string) *api {
	return &api{t: t, base: base, client: &http.Client{Timeout: 30 * time.Second}}
}

// do sends one request (body encoded as JSON when not nil) and decodes a
// JSON answer into out when out is not nil. Non-2xx bodies are kept.
func (a *api) do(method, path, token string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	base := a.base()
	if base == "" {
		return 0, fmt.Errorf("no node is up")
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		a.keepError(string(b))
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decoding: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

func (a *api) keepError(s string) {
	a.mu.Lock()
	a.errorTexts = append(a.errorTexts, s)
	a.mu.Unlock()
}

// retry is do, retrying transport errors and 503s for up to a minute (a
// node may be restarting).
func (a *api) retry(method, path, token string, body, out any) error {
	deadline := time.Now().Add(time.Minute)
	for {
		status, err := a.do(method, path, token, body, out)
		if err == nil {
			return nil
		}
		if (status == 0 || status == http.StatusServiceUnavailable) && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		return err
	}
}

// must is retry, failing the test on an error.
func (a *api) must(method, path, token string, body, out any) {
	a.t.Helper()
	if err := a.retry(method, path, token, body, out); err != nil {
		a.t.Fatalf("campaign: %v", err)
	}
}

// page is one page of a list answer.
type page[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
	HasMore    bool    `json:"has_more"`
}

// listAll reads every page of a list route (path has its query, if any).
func listAll[T any](a *api, path, token string) ([]T, error) {
	var all []T
	cursor := ""
	for range 100_000 {
		u := path + sep(path) + "limit=500"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		var p page[T]
		if err := a.retry(http.MethodGet, u, token, nil, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Data...)
		if !p.HasMore || p.NextCursor == nil {
			return all, nil
		}
		cursor = *p.NextCursor
	}
	return nil, fmt.Errorf("%s: too many pages", path)
}

func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}

// Wire types, the fields the campaign reads (docs/api.md).

type tenantJSON struct {
	ID     string `json:"id"`
	APIKey string `json:"api_key"`
}

type sourceJSON struct {
	ID        string `json:"id"`
	IngestURL string `json:"ingest_url"`
}

type endpointJSON struct {
	ID            string `json:"id"`
	SigningSecret string `json:"signing_secret"`
}

type summaryJSON struct {
	Total      int `json:"total"`
	Pending    int `json:"pending"`
	Delivering int `json:"delivering"`
	Delivered  int `json:"delivered"`
	Failed     int `json:"failed"`
}

type eventJSON struct {
	ID             string      `json:"id"`
	IdempotencyKey string      `json:"idempotency_key"`
	Deliveries     summaryJSON `json:"deliveries"`
}

type deliveryJSON struct {
	ID         string `json:"id"`
	EventID    string `json:"event_id"`
	EndpointID string `json:"endpoint_id"`
	Status     string `json:"status"`
	Attempts   int    `json:"attempts"`
	LastError  string `json:"last_error"`
}

type attemptJSON struct {
	ID         string    `json:"id"`
	DeliveryID string    `json:"delivery_id"`
	EventID    string    `json:"event_id"`
	EndpointID string    `json:"endpoint_id"`
	Attempt    int       `json:"attempt"`
	StartedAt  time.Time `json:"started_at"`
	StatusCode int       `json:"status_code"`
	ErrorCode  string    `json:"error_code"`
	Error      string    `json:"error"`
}
