// Command apptest is a tiny shop that announces every order it places with a
// webhook sent through Kapsel to every endpoint subscribed to order events —
// and, in main_test.go, the way such an
// application unit-tests its webhook code: the in-memory store, a fake
// destination from kapseltest that verifies signatures and fails on demand,
// and no database, network or sleeping.
//
//	go run ./examples/apptest
//	go test ./examples/apptest
//
// run places one order, prints what the subscriber (a receiver on
// 127.0.0.1 that checks Kapsel's signature) received, and exits.
package main

import (
	"context"
	"encoding/json"
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

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/receiver"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

// Order is what the shop sells.
type Order struct {
	ID       string `json:"id"`
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// OrderPlaced is the webhook the shop sends for each order.
type OrderPlaced struct {
	Type  string `json:"type"`
	Order Order  `json:"order"`
}

// EventOrderPlaced is the type of the event the shop sends for each order.
// Subscribers choose it with an endpoint filter such as "order.*".
const EventOrderPlaced = "order.placed"

// Shop places orders and announces each one to the endpoints subscribed to
// its order events.
type Shop struct {
	webhooks *service.Service
	tenant   kapsel.TenantID
}

// NewShop returns a shop that announces orders through webhooks sent as the
// tenant.
func NewShop(webhooks *service.Service, tenant kapsel.TenantID) *Shop {
	return &Shop{webhooks: webhooks, tenant: tenant}
}

// PlaceOrder places an order and queues its order.placed webhook, returning
// the webhook's event id. The order id is the idempotency key, so placing
// the same order again (a client retrying its request) sends no second
// webhook.
func (s *Shop) PlaceOrder(ctx context.Context, o Order) (kapsel.EventID, error) {
	if o.ID == "" || o.Quantity < 1 {
		return "", errors.New("an order needs an id and a quantity")
	}
	// … the shop's own business write would be here …
	res, err := s.webhooks.Send(ctx, s.tenant, service.Send{
		Type:           EventOrderPlaced,
		Payload:        OrderPlaced{Type: EventOrderPlaced, Order: o},
		IdempotencyKey: "order-" + o.ID,
	})
	if err != nil {
		return "", fmt.Errorf("sending order.placed for %s: %w", o.ID, err)
	}
	return res.Event.ID, nil
}

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run wires the shop to Kapsel and to a subscriber on 127.0.0.1, places one
// order, and writes what the subscriber received to out.
func run(ctx context.Context, out io.Writer) error {
	svc, err := service.New(memstore.New(), &service.Config{
		Logger:       slog.New(slog.DiscardHandler),
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	if err != nil {
		return err
	}
	if err := svc.Start(ctx); err != nil {
		return err
	}
	defer stop(svc)

	tenant, _, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "shop"})
	if err != nil {
		return err
	}
	// The subscriber's address is known only once it listens, and its
	// secret only once the endpoint exists: listen first, create the
	// endpoint, then serve with the secret.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	_, secret, err := svc.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{
		Name: "warehouse", URL: "http://" + ln.Addr().String() + "/webhooks", EventTypes: []string{"order.*"},
	})
	if err != nil {
		_ = ln.Close()
		return err
	}
	got, closeSubscriber, err := subscriber(ln, secret)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer closeSubscriber()

	shop := NewShop(svc, tenant.ID)
	if _, err := shop.PlaceOrder(ctx, Order{ID: "1001", SKU: "kettle", Quantity: 2}); err != nil {
		return err
	}
	select {
	case p := <-got:
		fmt.Fprintf(out, "subscriber verified and received %s: order %s, %d × %s\n", p.Type, p.Order.ID, p.Order.Quantity, p.Order.SKU)
	case <-time.After(10 * time.Second):
		return errors.New("the subscriber received nothing within 10 s")
	}
	return nil
}

// subscriber serves, on ln, a receiver that accepts only deliveries signed
// with secret, and hands each order.placed it receives to the returned
// channel.
func subscriber(ln net.Listener, secret string) (<-chan OrderPlaced, func(), error) {
	v, err := receiver.New(&receiver.Config{Secrets: []string{secret}})
	if err != nil {
		return nil, nil, err
	}
	got := make(chan OrderPlaced, 4)
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks", v.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p OrderPlaced
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		got <- p
		w.WriteHeader(http.StatusNoContent)
	})))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return got, func() { _ = srv.Close() }, nil
}

// stop stops the service within a bounded time.
func stop(svc *service.Service) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = svc.Stop(ctx)
}
