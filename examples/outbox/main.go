// Command outbox shows Kapsel's transactional outbox: an application writes
// its own row and the outgoing webhook — the event and its deliveries to
// every subscribed endpoint — in ONE Postgres transaction with
// Service.SendTx, so the webhook exists if and only if the business write
// committed.
//
//	KAPSEL_DATABASE_URL=postgres://root@127.0.0.1:5432/test go run ./examples/outbox
//
// It places one order that commits and one that rolls back, prints what a
// destination on 127.0.0.1 receives (the committed order's webhook only),
// and exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

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
	if err := run(context.Background(), os.Stdout, url); err != nil {
		log.Fatal(err)
	}
}

// run places a committed and a rolled-back order on the database at url,
// writes what the destination receives to out, and stops.
func run(ctx context.Context, out io.Writer, url string) error {
	store, err := pgstore.Open(ctx, url, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	svc, err := service.New(store, &service.Config{
		Logger: slog.New(slog.DiscardHandler),
		// The destination is on loopback, which the SSRF guard refuses by
		// default.
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	if err != nil {
		return err
	}
	if err := svc.Start(ctx); err != nil {
		return err
	}
	defer stop(svc)

	got := make(chan string, 4)
	dest, closeDest, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- string(body)
	}))
	if err != nil {
		return err
	}
	defer closeDest()

	tenant, _, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "shop"})
	if err != nil {
		return err
	}
	// The billing service subscribes to the shop's order events.
	if _, _, err := svc.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{
		Name: "billing", URL: "http://" + dest + "/hooks", EventTypes: []string{"order.*"},
	}); err != nil {
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
	shop := &shop{conn: conn, webhooks: svc, tenant: tenant.ID}

	// Committed: the order and its webhook.
	if err := shop.placeOrder(ctx, 4200, false); err != nil {
		return err
	}
	fmt.Fprintln(out, "order of 4200 cents: committed")
	// Rolled back: neither the order nor its webhook exists afterwards.
	err = shop.placeOrder(ctx, 999, true)
	fmt.Fprintln(out, "order of 999 cents:", err)

	select {
	case body := <-got:
		fmt.Fprintln(out, "destination received", body)
	case <-time.After(10 * time.Second):
		return errors.New("not delivered within 10 s")
	}
	page, err := svc.ListEvents(ctx, tenant.ID, service.EventFilter{Type: "order.placed"})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "events stored:", len(page.Data))
	return nil
}

// shop writes orders and their webhooks together.
type shop struct {
	conn     *pgx.Conn
	webhooks *service.Service
	tenant   kapsel.TenantID
}

var errPaymentDeclined = errors.New("payment declined: rolled back")

// placeOrder inserts an order and its webhook in one transaction; with fail
// set it fails after both writes, and both roll back.
func (s *shop) placeOrder(ctx context.Context, cents int64, fail bool) error {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) // no-op after Commit

	var orderID int64
	if err := tx.QueryRow(ctx, `INSERT INTO outbox_example_orders (total_cents) VALUES ($1) RETURNING id`, cents).Scan(&orderID); err != nil {
		return err
	}
	_, err = s.webhooks.SendTx(ctx, tx, s.tenant, service.Send{
		Type:           "order.placed",
		Body:           fmt.Appendf(nil, `{"type":"order.placed","total_cents":%d}`, cents),
		IdempotencyKey: fmt.Sprintf("order-%d", orderID),
	})
	if err != nil {
		return err
	}
	if fail {
		return errPaymentDeclined
	}
	return tx.Commit(ctx)
}

// serve serves h on a free port of 127.0.0.1 and returns its address and a
// function that shuts it down.
func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// stop stops the service within a bounded time.
func stop(svc *service.Service) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = svc.Stop(ctx)
}
