package service

import (
	_ "embed"
	"net/http"
)

// The management API is described by an OpenAPI 3.1 document, openapi.yaml
// in this package, embedded in the binary and served unauthenticated at
// OpenAPIPath. docs/api.md says how to generate a client from it; the tests
// drive the real handlers and validate every request and answer against it,
// so it cannot drift from them.

// OpenAPIPath is where the management handler serves the OpenAPI document.
// It needs no token: API descriptions are public, as Svix's and Stripe's
// are, and the document holds no secret.
const OpenAPIPath = "/v1/openapi.yaml"

// OpenAPIContentType is the media type of the document (RFC 9512).
const OpenAPIContentType = "application/yaml"

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the management API, ingest and
// kapseld's operational routes, in YAML. The slice is a copy.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

// serveOpenAPI answers GET OpenAPIPath with the document.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", OpenAPIContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPI)
}
