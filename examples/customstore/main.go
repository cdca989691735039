// Command customstore shows a custom kapsel.Store: a wrapper around another
// store (here the in-memory one) that counts every write made through it.
// The service runs on it like on any store, and store_test.go proves it
// keeps the contract with the conformance suite, storetest.Run.
//
//	go run ./examples/customstore
//
// It builds the service on the wrapper, creates a tenant and two endpoints
// that both take order events, sends one event — fanned out to both, at a
// destination on 127.0.0.1 — prints what the wrapper saw written, and
// exits.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/memstore"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run builds the service on a counting store, sends one event, waits for
// its deliveries and writes the counts to out.
func run(ctx context.Context, out io.Writer) error {
	store := Wrap(memstore.New())
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

	dest, received, closeDest, err := destination()
	if err != nil {
		return err
	}
	defer closeDest()

	tenant, _, err := svc.CreateTenant(ctx, service.TenantCreate{Name: "shop"})
	if err != nil {
		return err
	}
	for _, name := range []string{"billing", "warehouse"} {
		if _, _, err := svc.CreateEndpoint(ctx, tenant.ID, service.EndpointCreate{
			Name: name, URL: dest + "/" + name, EventTypes: []string{"order.*"},
		}); err != nil {
			return err
		}
	}
	res, err := svc.Send(ctx, tenant.ID, service.Send{Type: "order.placed", Body: []byte(`{"order":42}`)})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "event fanned out to %d endpoints\n", res.Deliveries)
	for range res.Deliveries {
		select {
		case got := <-received:
			fmt.Fprintf(out, "destination received %s\n", got)
		case <-time.After(10 * time.Second):
			return fmt.Errorf("not delivered within 10 s")
		}
	}
	if err := waitDelivered(ctx, svc, tenant.ID, res.Event.ID); err != nil {
		return err
	}
	if err := stop(svc); err != nil {
		return err
	}

	fmt.Fprintln(out, "rows written through the wrapper:")
	writes := store.Writes()
	for _, method := range slices.Sorted(maps.Keys(writes)) {
		fmt.Fprintf(out, "  %-27s %d\n", method, writes[method])
	}
	fmt.Fprintf(out, "failed writes: %d\n", len(store.Failures()))
	return nil
}

// stop stops the service within a bounded time; stopping twice is safe.
func stop(svc *service.Service) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return svc.Stop(ctx)
}

// waitDelivered polls the event until the dispatcher has recorded every one
// of its deliveries (the destination answers before the outcome is
// written).
func waitDelivered(ctx context.Context, svc *service.Service, tenant kapsel.TenantID, id kapsel.EventID) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ev, err := svc.GetEvent(ctx, tenant, id, false)
		if err != nil {
			return err
		}
		if d := ev.Deliveries; d.Total > 0 && d.Delivered == d.Total {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("deliveries after 10 s: %+v", ev.Deliveries)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// destination serves a webhook receiver on 127.0.0.1 and returns its URL,
// the bodies it receives, and a function that shuts it down.
func destination() (url string, received <-chan string, closeFn func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	got := make(chan string, 4)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- r.URL.Path + " " + string(body)
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/hooks", got, func() { _ = srv.Close() }, nil
}
