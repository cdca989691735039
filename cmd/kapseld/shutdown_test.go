package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/internal/testdb"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

// TestShutdownUnderLoad stops kapseld while clients keep ingesting and the
// dispatcher keeps delivering: Run returns nil, every event answered 202 is
// in the database (I1 of docs/guarantees.md), and no event is left leased (delivering).
func TestShutdownUnderLoad(t *testing.T) {
	t.Parallel()
	dsn := testdb.New(t)
	dest := newDestination(t)
	go func() { // drain: this test counts nothing at the destination
		for range dest.got {
		}
	}()
	r := startServer(t, map[string]string{
		"KAPSEL_DATABASE_URL":               dsn,
		"KAPSEL_ADMIN_TOKEN":                "adm",
		"KAPSEL_ALLOW_PRIVATE_DESTINATIONS": "true",
		"KAPSEL_SHUTDOWN_TIMEOUT":           "20s",
	})
	ten := r.must(201, "POST", "/v1/tenants", "adm", map[string]any{"name": "load"})
	r.must(201, "POST", "/v1/endpoints", ten["api_key"].(string), map[string]any{"url": dest.srv.URL})
	src := r.must(201, "POST", "/v1/sources", ten["api_key"].(string), map[string]any{"name": "load"})
	ingestURL := r.base + src["ingest_url"].(string)

	const clients, perClient = 16, 200
	var (
		mu       sync.Mutex
		accepted []kapsel.EventID
		wg       sync.WaitGroup
	)
	enough := make(chan struct{})
	var once sync.Once
	client := &http.Client{Timeout: 30 * time.Second}
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perClient {
				body := fmt.Appendf(nil, `{"client":%d,"n":%d}`, c, i)
				resp, err := client.Post(ingestURL, "application/json", bytes.NewReader(body))
				if err != nil {
					return // the listener is closed: shutdown under way
				}
				var out struct{ ID kapsel.EventID }
				_ = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusAccepted:
					mu.Lock()
					accepted = append(accepted, out.ID)
					if len(accepted) == 100 {
						once.Do(func() { close(enough) })
					}
					mu.Unlock()
				case http.StatusServiceUnavailable:
					return // shutting down
				default:
					t.Errorf("ingest answered %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(30 * time.Second):
		t.Fatal("100 ingests were not accepted within 30 s")
	}
	if err := r.stop(); err != nil {
		t.Fatalf("shutdown under load: %v", err)
	}
	wg.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := pgstore.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tenant := kapsel.TenantID(ten["id"].(string))
	for _, id := range accepted {
		ev, err := st.EventGet(ctx, &kapsel.EventGetParams{ID: id, TenantID: tenant})
		if err != nil {
			t.Fatalf("event %s was answered 202 but is not stored: %v", id, err)
		}
		if ev.Deliveries.Total != 1 {
			t.Fatalf("event %s was answered 202 with %d deliveries stored, want 1", id, ev.Deliveries.Total)
		}
	}
	leased, err := st.DeliveryList(ctx, &kapsel.DeliveryListParams{TenantID: tenant, Status: kapsel.DeliveryDelivering, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(leased) != 0 {
		t.Fatalf("%d deliveries still leased after a graceful shutdown", len(leased))
	}
	t.Logf("%d events accepted before and during the shutdown, all stored", len(accepted))
}
