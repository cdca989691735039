package target

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/kapsel-dev/kapsel/ingest/verify"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// RiverConfig is the River baseline service: POST /ingest/{any} checks the
// GitHub signature, enqueues one River job holding the body (one insert,
// one transaction, as River's Insert does) and answers 202 after the
// commit; a River worker POSTs the body to Destination with webhook-id
// "river_<job id>", retried by River on any non-2xx answer.
type RiverConfig struct {
	Addr        string
	DatabaseURL string
	Destination string // full URL
	Secret      string
	// Work false starts an insert-only client: jobs pile up undelivered
	// (the baseline of the ingest mode).
	Work bool
	// MaxWorkers is the default queue's worker count. Defaults to 100.
	MaxWorkers int
}

// webhookArgs is one webhook as a River job. The body is kept as bytes
// (base64 in River's JSONB args), not as raw JSON, which JSONB would
// re-encode: a relay must deliver the bytes it was given.
type webhookArgs struct {
	Body []byte `json:"body"`
}

func (webhookArgs) Kind() string { return "webhook" }

type webhookWorker struct {
	river.WorkerDefaults[webhookArgs]
	url    string
	client *http.Client
}

func (w *webhookWorker) Work(ctx context.Context, job *river.Job[webhookArgs]) error {
	req, err := http.NewRequestWithContext(ctx, "POST", w.url, bytes.NewReader(job.Args.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", "river_"+strconv.FormatInt(job.ID, 10))
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("destination answered %d", resp.StatusCode)
	}
	return nil
}

// ServeRiver runs the River baseline until ctx ends.
func ServeRiver(ctx context.Context, c RiverConfig) error {
	if c.MaxWorkers == 0 {
		c.MaxWorkers = 100
	}
	pool, err := pgxpool.New(ctx, c.DatabaseURL) // pgxpool's defaults, like kapseld's
	if err != nil {
		return err
	}
	defer pool.Close()
	driver := riverpgxv5.New(pool)
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		return err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrating River's schema: %w", err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &webhookWorker{url: c.Destination, client: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: c.MaxWorkers},
	}})
	cfg := &river.Config{Workers: workers}
	if c.Work {
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: c.MaxWorkers}}
	}
	client, err := river.NewClient(driver, cfg)
	if err != nil {
		return err
	}
	if c.Work {
		if err := client.Start(ctx); err != nil {
			return err
		}
	}
	secrets := []string{c.Secret}
	var insertErrOnce sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("POST /ingest/{id}", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// Kapsel's own GitHub check, so both targets verify alike.
		if err := (verify.GitHub{}).Verify(&verify.Params{Header: r.Header, Body: body, Secrets: secrets}); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		res, err := client.Insert(r.Context(), webhookArgs{Body: body}, nil)
		if err != nil {
			insertErrOnce.Do(func() { fmt.Fprintln(os.Stderr, "river: inserting:", err) })
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"id":"river_%d"}`, res.Job.ID)
	})
	err = serve(ctx, c.Addr, mux)
	stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if c.Work {
		if serr := client.Stop(stopCtx); serr != nil && err == nil {
			err = serr
		}
	}
	return err
}
