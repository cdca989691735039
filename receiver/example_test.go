package receiver_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/receiver"
)

// The verifier mounted on an application's mux: a delivery signed by Kapsel
// reaches the handler once; its retry is answered 200 without reaching it
// again, and a forged one is refused.
func ExampleVerifier_Wrap() {
	// The endpoint's signing secret, as Kapsel shows it.
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("a 24-byte signing secret"))

	v, err := receiver.New(&receiver.Config{Secrets: []string{secret}})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks", v.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // restored by the verifier, byte for byte
		fmt.Printf("handling %s: %s\n", r.Header.Get(receiver.IDHeader), body)
		w.WriteHeader(http.StatusNoContent)
	})))

	// What Kapsel sends: the Standard Webhooks headers over the raw body.
	post := func(secret string) int {
		body := `{"type":"order.paid","order":42}`
		now := time.Now()
		sig, _ := delivery.SignatureHeader([]string{secret}, "evt_1", now, []byte(body))
		r := httptest.NewRequest(http.MethodPost, "/webhooks", strings.NewReader(body))
		r.Header.Set(receiver.IDHeader, "evt_1")
		r.Header.Set(receiver.TimestampHeader, strconv.FormatInt(now.Unix(), 10))
		r.Header.Set(receiver.SignatureHeader, sig)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w.Code
	}

	fmt.Println("first delivery:", post(secret))
	fmt.Println("retry:", post(secret))
	fmt.Println("forged:", post("whsec_"+base64.StdEncoding.EncodeToString([]byte("someone else's secret"))))
	// Output:
	// handling evt_1: {"type":"order.paid","order":42}
	// first delivery: 204
	// retry: 200
	// forged: 401
}
