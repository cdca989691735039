package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// attemptResult is what one HTTP attempt produced.
type attemptResult struct {
	statusCode int
	body       []byte
	retryAfter string
	// errorCode is empty on a 2xx answer.
	errorCode kapsel.Code
	errMsg    string
	// sent is true once the request headers were written: the destination
	// may have seen the request.
	sent bool
	// local is true for a failure on Kapsel's side before anything was sent
	// (the request could not be built): not the destination's doing.
	local    bool
	duration time.Duration
}

// newTransport returns the HTTP transport of a dispatcher: the SSRF guard on
// every dial, no proxy (a proxy would be dialled instead of the destination,
// hiding it from the guard), keep-alive connections to each destination
// (idleConnsPerHost of them), HTTP/2 when the destination offers it, and no
// transparent decompression (the recorded body is what was sent).
func newTransport(g *Guard, idleConnsPerHost int, tlsConfig *tls.Config, resolver *net.Resolver) *http.Transport {
	d := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   g.Control,
		Resolver:  resolver,
	}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSClientConfig:        tlsConfig,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           max(100, 4*idleConnsPerHost),
		MaxIdleConnsPerHost:    idleConnsPerHost,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  0,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	}
}

// newHTTPClient wraps a transport in a client that never follows redirects:
// a 3xx answer is returned as is and recorded as E2007.
func newHTTPClient(rt http.RoundTripper) *http.Client {
	return &http.Client{
		Transport: rt,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// send makes one attempt. The request's context carries the attempt timeout
// and shutdown cancellation; stopping tells a cancellation by Stop from a
// timeout. At most kapsel.MaxResponseBody bytes of the response are read;
// the rest is never read (the connection is closed instead of drained).
func send(c *http.Client, req *http.Request, stopping func() bool) *attemptResult {
	var sent atomic.Bool
	trace := &httptrace.ClientTrace{WroteHeaders: func() { sent.Store(true) }}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	start := time.Now()
	res := &attemptResult{}
	resp, err := c.Do(req)
	if err != nil {
		res.duration = time.Since(start)
		res.sent = sent.Load()
		res.errorCode, res.errMsg = classify(err, req.Context(), stopping())
		return res
	}
	res.sent = true
	res.statusCode = resp.StatusCode
	res.retryAfter = resp.Header.Get("Retry-After")
	// A failed or cut-short body read does not change the outcome: the
	// status line decided it. What was read is kept.
	res.body, _ = io.ReadAll(io.LimitReader(resp.Body, kapsel.MaxResponseBody))
	resp.Body.Close()
	res.duration = time.Since(start)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		res.errorCode = kapsel.CodeAttemptRedirect
		res.errMsg = "destination answered " + resp.Status + "; redirects are not followed"
	default:
		res.errorCode = kapsel.CodeAttemptStatus
		res.errMsg = "destination answered " + resp.Status
	}
	return res
}

// classify maps a failed request to its E2xxx code and a message that is
// safe to store and show: it never repeats the URL, whose query may carry a
// token.
func classify(err error, ctx context.Context, stopping bool) (kapsel.Code, string) {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err // drop the `Post "<url>": ` prefix
	}
	msg := err.Error()
	var blocked *BlockedError
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	var alert tls.AlertError
	var netErr net.Error
	switch {
	case errors.As(err, &blocked):
		return kapsel.CodeAttemptBlocked, blocked.Error()
	case stopping && errors.Is(err, context.Canceled):
		return kapsel.CodeShuttingDown, "attempt cancelled: the dispatcher is shutting down"
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return kapsel.CodeAttemptTimeout, "attempt timed out: " + msg
	case errors.As(err, &dnsErr):
		// net.DNSError's text names the resolver Kapsel asked (an address of
		// Kapsel's own network); tenants read this message, so leave it out.
		return kapsel.CodeAttemptDNS, "DNS lookup of " + dnsErr.Name + " failed: " + dnsErr.Err
	case errors.As(err, &certErr), errors.As(err, &recErr), errors.As(err, &alert), isTLSMessage(msg):
		return kapsel.CodeAttemptTLS, msg
	case errors.As(err, &netErr) && netErr.Timeout():
		return kapsel.CodeAttemptTimeout, "attempt timed out: " + msg
	}
	return kapsel.CodeAttemptConnection, msg
}

// isTLSMessage recognises TLS failures that have no exported error type
// (crypto/tls reports most handshake failures as plain "tls: …" errors).
func isTLSMessage(msg string) bool {
	return strings.Contains(msg, "tls: ") || strings.Contains(msg, "x509: ") ||
		strings.Contains(msg, "HTTP response to HTTPS client")
}
