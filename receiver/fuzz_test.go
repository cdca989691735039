package receiver_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kapsel-dev/kapsel/receiver"
)

// Whatever the headers and body, the middleware answers one of its
// documented statuses, never panics, and calls the handler only for a
// delivery that verifies.
func FuzzWrap(f *testing.F) {
	e := setup(f, receiver.Config{MaxBodyBytes: 64})
	good := e.signed("evt_1", `{"a":1}`)
	f.Add(good.Header.Get(receiver.IDHeader), good.Header.Get(receiver.TimestampHeader), good.Header.Get(receiver.SignatureHeader), `{"a":1}`)
	f.Add("evt_1", "1767225600", "v1,"+strings.Repeat("A", 44), "")
	f.Add("", "", "", "")
	f.Add("evt_2", "-1", "v1, v1,,, v2,abc", strings.Repeat("x", 65))
	f.Add("evt_3", "99999999999999999999", "v1,====", "{}")
	f.Fuzz(func(t *testing.T, id, ts, sig, body string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set(receiver.IDHeader, id)
		r.Header.Set(receiver.TimestampHeader, ts)
		r.Header.Set(receiver.SignatureHeader, sig)
		verified := e.v.Verify(r.Header.Clone(), []byte(body)) == nil
		before := e.Calls()
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		called := e.Calls() > before
		switch w.Code {
		case http.StatusNoContent, http.StatusOK, http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d", w.Code)
		}
		if called && (!verified || len(body) > 64) {
			t.Fatalf("handler called for a delivery that does not verify (status %d)", w.Code)
		}
	})
}
