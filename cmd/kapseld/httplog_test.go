package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines decodes every JSON log line, failing on one that is not JSON.
func (s *syncBuffer) lines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

func TestLogRequests(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	h := logRequests(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		if requestID(r.Context()) == "" {
			t.Error("no request id in the handler's context")
		}
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("short and stout"))
	}))

	for _, tc := range []struct {
		name, sent string
		honoured   bool
	}{
		{"honoured", "req-123_abc", true},
		{"generated", "", false},
		{"newline refused", "a\nb", false},
		{"too long refused", strings.Repeat("x", 129), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/v1/endpoints?cursor=secret-cursor&token=qs-secret", strings.NewReader("body-secret"))
			req.Header.Set("Authorization", "Bearer kap_header_secret")
			if tc.sent != "" {
				req.Header.Set(requestIDHeader, tc.sent)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := rec.Header().Get(requestIDHeader)
			if tc.honoured && got != tc.sent {
				t.Fatalf("request id %q, want %q", got, tc.sent)
			}
			if !tc.honoured && (got == tc.sent || len(got) != 24) {
				t.Fatalf("request id %q should have been generated", got)
			}
			if !strings.Contains(logs.String(), `"request_id":"`+got+`"`) {
				t.Fatalf("log lacks request id %s: %s", got, logs.String())
			}
		})
	}
	for _, l := range logs.lines(t) {
		if l["msg"] != "request" || l["status"] != 418.0 || l["path"] != "/v1/endpoints" || l["method"] != "POST" ||
			l["response_bytes"] != 15.0 || l["request_bytes"] != 11.0 {
			t.Fatalf("log line %v", l)
		}
	}
	for _, secret := range []string{"secret-cursor", "qs-secret", "body-secret", "kap_header_secret", "Authorization"} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("logs contain %q: %s", secret, logs.String())
		}
	}

	// A panic answers 500 E3002 and is logged.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/panic", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "E3002") {
		t.Fatalf("panic answer %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "handler panicked") {
		t.Fatal("panic not logged")
	}
}
