package main

import (
	"net/http"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/internal/bearer"
	"github.com/kapsel-dev/kapsel/internal/problem"
)

// requireMetricsToken wraps the /metrics handler: with a token configured
// (KAPSEL_METRICS_TOKEN, docs/operations.md), a scrape must send it as
// "Authorization: Bearer <token>" and anything else answers 401 E1010 with
// WWW-Authenticate; without one, h is returned as it is. The comparison is
// bearer.Secret's, in constant time, so neither the token's content nor its
// length leaks through timing.
func requireMetricsToken(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := bearer.NewSecret(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !want.Matches(bearer.Token(r)) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kapseld metrics"`)
			problem.Write(w, kapsel.CodeUnauthenticated, "send Authorization: Bearer <KAPSEL_METRICS_TOKEN>", 0)
			return
		}
		h.ServeHTTP(w, r)
	})
}
