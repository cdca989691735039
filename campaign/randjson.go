package campaign

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// route is one operation of service/openapi.yaml under /v1.
type route struct {
	Method, Path string
	Admin        bool         // wants the admin token
	NoAuth       bool         // wants no token
	Statuses     map[int]bool // documented answers
	Fields       []string     // the request body's top-level properties
}

// openAPIRoutes reads every /v1 operation of service/openapi.yaml, the
// contract the routes are tested against (TestOpenAPIContract).
func openAPIRoutes() ([]route, error) {
	_, file, _, _ := runtime.Caller(0)
	doc, err := openapi3.NewLoader().LoadFromFile(filepath.Join(filepath.Dir(file), "..", "service", "openapi.yaml"))
	if err != nil {
		return nil, err
	}
	var out []route
	for path, item := range doc.Paths.Map() {
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		for method, op := range item.Operations() {
			r := route{Method: method, Path: path, Statuses: map[int]bool{}}
			if op.Security != nil {
				if len(*op.Security) == 0 {
					r.NoAuth = true
				}
				for _, req := range *op.Security {
					if _, ok := req["adminToken"]; ok {
						r.Admin = true
					}
				}
			}
			for code := range op.Responses.Map() {
				if n, err := strconv.Atoi(code); err == nil {
					r.Statuses[n] = true
				}
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				if mt := op.RequestBody.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil {
					r.Fields = schemaFields(mt.Schema.Value)
				}
			}
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return routeOrder(out[i]) < routeOrder(out[j]) })
	return out, nil
}

// routeOrder puts the routes that destroy what later routes use last:
// deletes, then key rotations.
func routeOrder(r route) string {
	rank := "0"
	switch {
	case strings.HasSuffix(r.Path, "rotate-api-key"):
		rank = "2"
	case r.Method == http.MethodDelete:
		rank = "1"
	}
	return rank + r.Path + " " + r.Method
}

func schemaFields(s *openapi3.Schema) []string {
	if s == nil {
		return nil
	}
	var out []string
	for name := range s.Properties {
		out = append(out, name)
	}
	for _, sub := range append(append([]*openapi3.SchemaRef(nil), s.AllOf...), s.OneOf...) {
		if sub != nil {
			out = append(out, schemaFields(sub.Value)...)
		}
	}
	sort.Strings(out)
	return out
}

// hostileStrings are the string values random JSON draws from: empty,
// control characters, NUL, CR/LF, a lone surrogate, very long, ids of the
// wrong kind, URLs Kapsel must refuse, SQL and path tricks. URLs name only
// 127.0.0.1 (the rig's guard is off): the campaign sends nothing elsewhere.
var hostileStrings = []string{
	"", " ", "a", "\x00", "a\x00b", "\r\n", "a\r\nX-Injected: 1", "\xed\xa0\x80", "\u202e", "💥",
	strings.Repeat("x", 300), strings.Repeat("y", 70_000), "evt_00000000000000000000000000", "ten_x",
	"src_../../v1/tenants", "../../etc/passwd", "%2e%2e%2f", "' OR 1=1 --", "http://127.0.0.1:1/",
	"file:///etc/passwd", "http://user:pass@127.0.0.1:1/",
	"javascript:alert(1)", "2026-13-45T25:61:61Z", "9999-12-31T23:59:59Z", "failed", "delivered",
	"standard-webhooks", "whsec_", "whsec_!!!", "hmac-sha256",
}

// randJSON returns a random JSON value, at most depth levels deep.
func randJSON(rng *rand.Rand, depth int) any {
	k := rng.Intn(10)
	if depth <= 0 && k >= 7 {
		k = rng.Intn(7)
	}
	switch k {
	case 0:
		return nil
	case 1:
		return rng.Intn(2) == 0
	case 2:
		return []any{0, -1, 1, 1.5, 1e308, -1e308, 9007199254740993, 4294967296, 120001}[rng.Intn(9)]
	case 3, 4, 5, 6:
		return hostileStrings[rng.Intn(len(hostileStrings))]
	case 7, 8:
		n := rng.Intn(4)
		a := make([]any, n)
		for i := range a {
			a[i] = randJSON(rng, depth-1)
		}
		return a
	default:
		m := map[string]any{}
		for range rng.Intn(4) {
			m[hostileStrings[rng.Intn(len(hostileStrings))]] = randJSON(rng, depth-1)
		}
		return m
	}
}

// randBody returns a random request body for r: mostly an object of its
// real fields with random values, sometimes any JSON value, sometimes bytes
// that are not JSON at all.
func randBody(rng *rand.Rand, r route) []byte {
	switch k := rng.Intn(10); {
	case k < 6 && len(r.Fields) > 0:
		m := map[string]any{}
		for _, f := range r.Fields {
			if rng.Intn(3) > 0 {
				m[f] = randJSON(rng, 3)
			}
		}
		b, _ := json.Marshal(m)
		return b
	case k < 8:
		b, _ := json.Marshal(randJSON(rng, 4))
		return b
	default:
		raws := [][]byte{
			nil, []byte("{"), []byte(`{"a":`), []byte("\xff\xfe\x00"), []byte(`{"name":"\xff\xfe"}`),
			[]byte(`{"name":"a` + "\x00" + `b"}`), []byte("1e999999"), []byte(`{"name":"x","name":"y"}`),
			bytes.Repeat([]byte("["), 100_000), []byte(strings.Repeat(`{"a":`, 20_000) + "1" + strings.Repeat("}", 20_000)),
			[]byte(`"` + strings.Repeat("z", 2<<20) + `"`), // over the 1 MiB request limit
		}
		return raws[rng.Intn(len(raws))]
	}
}

// pathTricks are ids that are not ids: traversal, encoded separators, NUL,
// another kind's prefix, very long, SQL.
var pathTricks = []string{
	"..", "..%2F..%2Fv1%2Ftenants", "%2e%2e", "src_%00", "x%0d%0aX-Injected:%201", "%ff%fe",
	"ten_01M8KRGK1E3HVSJ44HAE1XDXFM", "evt_01M8P8B82RD145KD1Z6BBAT7RM", strings.Repeat("a", 10_000),
	"'%20OR%201=1--", "%252e%252e", "%u002e",
}

// fillPath replaces the route's {id} with id.
func fillPath(path, id string) string {
	return strings.Replace(path, "{id}", id, 1)
}

func (r route) String() string { return fmt.Sprintf("%s %s", r.Method, r.Path) }
