// Command receiver shows the receiving side of Kapsel: an application that
// accepts Kapsel's deliveries through receiver.Verifier, which checks their
// Standard Webhooks signature, refuses stale ones and handles every event
// once however often it is delivered.
//
//	go run ./examples/receiver
//
// It serves on 127.0.0.1 (a port the system picks), plays the sender with
// Kapsel's own signer — a delivery during a secret rotation, the retry that
// follows a failed handling, the retry that follows a lost answer, a
// tampered copy — prints each answer, and exits.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/receiver"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run serves, plays the sender, writes what happens to out and stops.
func run(ctx context.Context, out io.Writer) error {
	// The endpoint is in a rotation grace period: Kapsel signs with both
	// secrets, and the receiver accepts either.
	oldSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("the old 24-byte secret!!"))
	newSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("the new 32-byte signing secret!!"))

	v, err := receiver.New(&receiver.Config{Secrets: []string{newSecret, oldSecret}})
	if err != nil {
		return err
	}

	// The application's handler. Its first call fails, as if its database
	// had hiccupped: the verifier then forgets the id, so Kapsel's retry is
	// handled rather than dropped as a duplicate.
	var calls atomic.Int32
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks", v.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if calls.Add(1) == 1 {
			fmt.Fprintf(out, "  handler: %s failed\n", r.Header.Get(receiver.IDHeader))
			http.Error(w, "database unavailable", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(out, "  handler: %s handled: %s\n", r.Header.Get(receiver.IDHeader), body)
		w.WriteHeader(http.StatusNoContent)
	})))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String() + "/webhooks"

	body := `{"type":"order.paid","order":42}`
	secrets := []string{oldSecret, newSecret} // the endpoint's signing secrets at Kapsel
	for _, step := range []struct {
		label string
		body  string
	}{
		{"delivery", body},
		{"retry after the failure", body},
		{"retry after a lost answer", body},
		{"tampered copy", strings.Replace(body, "42", "43", 1)},
	} {
		fmt.Fprintln(out, step.label)
		status, err := post(ctx, url, secrets, "evt_2Zk9", body, step.body)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  answer: %d %s\n", status, http.StatusText(status))
	}
	fmt.Fprintf(out, "handler called %d times\n", calls.Load())

	shutdownCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// post sends one delivery the way Kapsel does: signed over signedBody with
// every secret at this attempt's timestamp, carrying sentBody.
func post(ctx context.Context, url string, secrets []string, id, signedBody, sentBody string) (int, error) {
	now := time.Now()
	sig, err := delivery.SignatureHeader(secrets, id, now, []byte(signedBody))
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(sentBody))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(receiver.IDHeader, id)
	req.Header.Set(receiver.TimestampHeader, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(receiver.SignatureHeader, sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}
