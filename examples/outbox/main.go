// Command outbox shows Kapsel's transactional ingest: an application writes
// its own row and the outgoing webhook in ONE Postgres transaction, so the
// webhook exists if and only if the business write committed.
//
//	KAPSEL_DATABASE_URL=postgres://root@127.0.0.1:5432/test go run ./examples/outbox
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/api"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

func main() {
	url := os.Getenv("KAPSEL_DATABASE_URL")
	if url == "" {
		log.Fatal("set KAPSEL_DATABASE_URL to a Postgres connection string")
	}
	if err := run(context.Background(), url); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, url string) error {
	store, err := pgstore.Open(ctx, url, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}

	now := time.Now()
	// Tenants authenticate to the management API with a key stored hashed;
	// this example never uses it, so the key is thrown away.
	_, keyHash := api.NewAPIKey()
	tenant, err := store.TenantInsert(ctx, &kapsel.TenantInsertParams{Name: "shop", APIKeyHash: keyHash, Now: now})
	if err != nil {
		return err
	}
	ep, err := store.EndpointInsert(ctx, &kapsel.EndpointInsertParams{Now: now, Endpoint: &kapsel.Endpoint{
		TenantID:       tenant.ID,
		Name:           "billing",
		URL:            "https://billing.example.com/hooks",
		SigningSecrets: []kapsel.SigningSecret{{Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
		RetryPolicy:    kapsel.DefaultRetryPolicy(),
	}})
	if err != nil {
		return err
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS outbox_example_orders (id bigserial PRIMARY KEY, total_cents bigint NOT NULL)`); err != nil {
		return err
	}

	// Committed: the order and its webhook.
	id, err := placeOrder(ctx, conn, store, ep.ID, 4200, false)
	if err != nil {
		return err
	}
	fmt.Println("committed event", id)

	// Rolled back: neither the order nor its webhook exists afterwards.
	_, err = placeOrder(ctx, conn, store, ep.ID, 999, true)
	fmt.Println("rolled back:", err)
	return nil
}

var errPaymentDeclined = errors.New("payment declined")

// placeOrder inserts an order and its webhook in one transaction; with fail
// set it fails after both writes, and both roll back.
func placeOrder(ctx context.Context, conn *pgx.Conn, store *pgstore.Store, ep kapsel.EndpointID, cents int64, fail bool) (kapsel.EventID, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(ctx) // no-op after Commit

	var orderID int64
	if err := tx.QueryRow(ctx, `INSERT INTO outbox_example_orders (total_cents) VALUES ($1) RETURNING id`, cents).Scan(&orderID); err != nil {
		return "", err
	}
	body := []byte(fmt.Sprintf(`{"type":"order.placed","order_id":%d,"total_cents":%d}`, orderID, cents))
	sum := sha256.Sum256(body)
	res, err := store.EventInsertTx(ctx, tx, &pgstore.EventInsertTxParams{Event: &kapsel.EventInsertParams{
		EndpointID:     ep,
		Body:           body,
		BodyHash:       sum[:],
		ContentType:    "application/json",
		IdempotencyKey: fmt.Sprintf("order-%d", orderID),
	}})
	if err != nil {
		return "", err
	}
	if res.Err != nil {
		return "", res.Err
	}
	if fail {
		return "", errPaymentDeclined
	}
	return res.Event.ID, tx.Commit(ctx)
}
