// Command outbox shows Kapsel's transactional send: an application writes
// its own row and the outgoing webhook in ONE Postgres transaction, so the
// webhook exists if and only if the business write committed.
//
//	KAPSEL_DATABASE_URL=postgres://root@127.0.0.1:5432/test go run ./examples/outbox
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/jackc/pgx/v5"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

func main() {
	url := os.Getenv("KAPSEL_DATABASE_URL")
	if url == "" {
		log.Fatal("set KAPSEL_DATABASE_URL to a Postgres connection string")
	}
	if err := run(context.Background(), url, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, url string, w io.Writer) error {
	store, err := pgstore.Open(ctx, url, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	k, err := service.New(store, service.Config{})
	if err != nil {
		return err
	}
	// No Start: this program only writes webhooks; a kapseld (or a started
	// service) on the same database delivers them.
	tenant, _, err := k.CreateTenant(ctx, service.TenantCreate{Name: "shop"})
	if err != nil {
		return err
	}
	ep, _, err := k.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{Name: "billing", URL: "https://billing.example.com/hooks"})
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
	id, err := placeOrder(ctx, conn, k, tenant.ID, ep.ID, 4200, false)
	if err != nil {
		return err
	}
	if _, err := k.GetEvent(ctx, tenant.ID, id, false); err != nil {
		return fmt.Errorf("the committed webhook: %w", err)
	}
	fmt.Fprintln(w, "committed: the order and its webhook")

	// Rolled back: neither the order nor its webhook exists afterwards.
	_, err = placeOrder(ctx, conn, k, tenant.ID, ep.ID, 999, true)
	events, lerr := k.ListEvents(ctx, tenant.ID, service.EventFilter{})
	if lerr != nil {
		return lerr
	}
	fmt.Fprintf(w, "rolled back (%v): %d webhook stored in all\n", err, len(events.Data))
	return nil
}

var errPaymentDeclined = errors.New("payment declined")

// placeOrder inserts an order and its webhook in one transaction; with fail
// set it fails after both writes, and both roll back.
func placeOrder(ctx context.Context, conn *pgx.Conn, k *service.Service, tenant kapsel.TenantID, ep kapsel.EndpointID, cents int64, fail bool) (kapsel.EventID, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(ctx) // no-op after Commit

	var orderID int64
	if err := tx.QueryRow(ctx, `INSERT INTO outbox_example_orders (total_cents) VALUES ($1) RETURNING id`, cents).Scan(&orderID); err != nil {
		return "", err
	}
	res, err := k.SendTx(ctx, tx, tenant, service.Send{
		EndpointID:     ep,
		Body:           fmt.Appendf(nil, `{"type":"order.placed","order_id":%d,"total_cents":%d}`, orderID, cents),
		IdempotencyKey: fmt.Sprintf("order-%d", orderID),
	})
	if err != nil {
		return "", err
	}
	if fail {
		return "", errPaymentDeclined
	}
	return res.Event.ID, tx.Commit(ctx)
}
