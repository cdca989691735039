package service_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/kapsel-dev/kapsel/service"
)

// The contract: every request the scenario sends and every answer the real
// handlers give is validated against service/openapi.yaml with kin-openapi
// (openapi3filter). An answer with a status, header or field the document
// does not describe fails the test; so does a request the document refuses
// when the scenario expects it to be valid, or accepts when the handler
// refuses it as malformed.

// openAPIDoc loads and validates the embedded document once.
var openAPIDoc = sync.OnceValues(func() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(service.OpenAPI())
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	return doc, nil
})

// reqWant says what the document must say of a request.
type reqWant int

const (
	// reqValid: the document accepts the request (the handler may still
	// refuse it for what a schema cannot say: an unknown id, a blocked URL).
	reqValid reqWant = iota
	// reqInvalid: the document refuses the request too (malformed JSON, an
	// unknown field, a limit out of range, no token).
	reqInvalid
)

// contract validates exchanges with the handlers against the document and
// records which operations answered which statuses.
type contract struct {
	t      testing.TB
	doc    *openapi3.T
	router routers.Router

	mu   sync.Mutex
	seen map[string]map[int]bool // "GET /v1/endpoints/{id}" → statuses answered
}

func newContract(t testing.TB) *contract {
	t.Helper()
	doc, err := openAPIDoc()
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	return &contract{t: t, doc: doc, router: router, seen: map[string]map[int]bool{}}
}

// options are the validation options: every status must be documented,
// defaults are never written into the request, and a secured operation
// needs a bearer token (which token is the handler's business).
func (c *contract) options() *openapi3filter.Options {
	return &openapi3filter.Options{
		IncludeResponseStatus: true,
		SkipSettingDefaults:   true,
		MultiError:            true,
		AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
			h := in.RequestValidationInput.Request.Header.Get("Authorization")
			if in.SecurityScheme.Type == "http" && in.SecurityScheme.Scheme == "bearer" &&
				strings.HasPrefix(h, "Bearer ") && len(h) > len("Bearer ") {
				return nil
			}
			return errors.New("no bearer token")
		},
	}
}

// exchange sends req to h, checks the request against the document as want
// says, and validates the answer; it returns the answer.
func (c *contract) exchange(h http.Handler, req *http.Request, want reqWant) *httptest.ResponseRecorder {
	c.t.Helper()
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			c.t.Fatal(err)
		}
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		c.t.Fatalf("%s %s: no operation in openapi.yaml: %v", req.Method, req.URL, err)
	}
	opts := c.options()
	in := &openapi3filter.RequestValidationInput{Request: withBody(req, body), PathParams: params, Route: route, Options: opts}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	switch {
	case want == reqValid && reqErr != nil:
		c.t.Fatalf("%s %s: the document refuses a request the scenario means to be valid: %v", req.Method, req.URL, reqErr)
	case want == reqInvalid && reqErr == nil:
		c.t.Fatalf("%s %s: the document accepts a request the handler refuses as malformed", req.Method, req.URL)
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, withBody(req, body))
	in.Request = withBody(req, body) // the validated one was consumed
	err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Body:                   io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
		Options:                opts,
	})
	if err != nil {
		c.t.Fatalf("%s %s answered %d, which openapi.yaml does not describe: %v\nbody: %s", req.Method, req.URL, rec.Code, err, rec.Body)
	}
	c.mu.Lock()
	op := route.Method + " " + route.Path
	if c.seen[op] == nil {
		c.seen[op] = map[int]bool{}
	}
	c.seen[op][rec.Code] = true
	c.mu.Unlock()
	return rec
}

func withBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return r
}

// requireCovered fails unless every operation of the document whose path
// starts with one of prefixes answered a 2xx at least once.
func (c *contract) requireCovered(prefixes ...string) {
	c.t.Helper()
	var missing []string
	for path, item := range c.doc.Paths.Map() {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(path, p) }) {
			continue
		}
		for method := range item.Operations() {
			op := method + " " + path
			ok := false
			for status := range c.seen[op] {
				ok = ok || status/100 == 2
			}
			if !ok {
				missing = append(missing, op)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		c.t.Fatalf("operations the scenario never got a 2xx from: %v", missing)
	}
}

// requireStatuses fails unless op answered each of statuses.
func (c *contract) requireStatuses(op string, statuses ...int) {
	c.t.Helper()
	for _, s := range statuses {
		if !c.seen[op][s] {
			c.t.Errorf("%s never answered %d in the scenario", op, s)
		}
	}
}
