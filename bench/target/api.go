package target

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// API is a client of kapseld's management API, for setting up a run.
type API struct {
	Base       string // http://127.0.0.1:port
	AdminToken string
	client     http.Client
}

// Source is a source the run created: where the load is sent.
type Source struct {
	ID         string `json:"id"`
	IngestPath string `json:"ingest_url"`
}

// Endpoint is an endpoint the run created.
type Endpoint struct {
	ID string `json:"id"`
}

// CreateTenant creates a tenant and returns its API key.
func (a *API) CreateTenant(ctx context.Context, name string) (string, error) {
	var out struct {
		APIKey string `json:"api_key"`
	}
	err := a.do(ctx, "POST", "/v1/tenants", a.AdminToken, map[string]any{"name": name}, http.StatusCreated, &out)
	return out.APIKey, err
}

// CreateSource creates a source whose ingest checks GitHub signatures made
// with secret.
func (a *API) CreateSource(ctx context.Context, apiKey, secret string) (Source, error) {
	var src Source
	err := a.do(ctx, "POST", "/v1/sources", apiKey, map[string]any{
		"verifier": map[string]any{"scheme": "github", "secrets": []string{secret}},
	}, http.StatusCreated, &src)
	return src, err
}

// CreateEndpoint creates an endpoint delivering to url the events of the
// source (and no other).
func (a *API) CreateEndpoint(ctx context.Context, apiKey, url, source string) (Endpoint, error) {
	var ep Endpoint
	err := a.do(ctx, "POST", "/v1/endpoints", apiKey, map[string]any{
		"url": url, "source_ids": []string{source},
	}, http.StatusCreated, &ep)
	return ep, err
}

// Pause holds back the endpoint's deliveries; Resume lets them go.
func (a *API) Pause(ctx context.Context, apiKey, id string) error {
	return a.do(ctx, "POST", "/v1/endpoints/"+id+"/pause", apiKey, nil, http.StatusOK, nil)
}

// Resume lets a paused endpoint's deliveries go.
func (a *API) Resume(ctx context.Context, apiKey, id string) error {
	return a.do(ctx, "POST", "/v1/endpoints/"+id+"/resume", apiKey, nil, http.StatusOK, nil)
}

func (a *API) do(ctx context.Context, method, path, token string, in any, want int, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.Base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s answered %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return nil
}
