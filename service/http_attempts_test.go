package service_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/service"
)

// readCounter is a store that counts the bytes of bodies and errors its
// AttemptList hands to the API: what a request holds in memory.
type readCounter struct {
	kapsel.Store
	bytes atomic.Int64
}

func (c *readCounter) AttemptList(ctx context.Context, p *kapsel.AttemptListParams) ([]*kapsel.Attempt, error) {
	as, err := c.Store.AttemptList(ctx, p)
	for _, a := range as {
		c.bytes.Add(int64(len(a.ResponseBody) + len(a.Error)))
	}
	return as, err
}

// bigAttempts gives the event's one delivery n attempts, each with a whole 64 KiB response
// body — random bytes for odd numbers, text whose 4 KiB cut splits a
// character for even ones — and a 5,000-character error.
func bigAttempts(t *testing.T, f *fixture, id kapsel.EventID, n int) {
	t.Helper()
	ctx := context.Background()
	text := bytes.Repeat([]byte("aé"), kapsel.MaxResponseBody/3+1)[:kapsel.MaxResponseBody]
	for i := 1; i <= n; i++ {
		now := f.clock.Now()
		ds, err := f.store.DeliveryClaim(ctx, &kapsel.DeliveryClaimParams{Limit: 1, LeaseDuration: time.Minute, Now: now})
		if err != nil || len(ds) != 1 || ds[0].EventID != id {
			t.Fatalf("claim %d: %v %v", i, ds, err)
		}
		body := text
		if i%2 == 1 {
			body = make([]byte, kapsel.MaxResponseBody)
			_, _ = rand.Read(body)
		}
		errs, err := f.store.DeliveryComplete(ctx, &kapsel.DeliveryCompleteParams{Completions: []kapsel.DeliveryCompletion{{
			DeliveryID: ds[0].ID, LeaseToken: ds[0].LeaseToken, Status: kapsel.DeliveryPending, NextAttemptAt: now.Add(time.Second),
			Attempt: kapsel.Attempt{
				Number: i, Trigger: kapsel.TriggerScheduled, StartedAt: now, StatusCode: 500, ResponseBody: body,
				ErrorCode: kapsel.CodeAttemptStatus, Error: strings.Repeat("x", 5000),
			},
		}}, Now: now})
		if err != nil || errs[0] != nil {
			t.Fatalf("completion %d: %v %v", i, err, errs)
		}
		f.clock.Advance(time.Second)
	}
}

// A page of 500 attempts with 64 KiB bodies stays small (docs/api.md): bodies
// are 4 KiB previews marked truncated, errors 1,024 characters, and neither
// the store's answer nor the response carries more — whole, that page was
// ~43 MiB of JSON. ?include=response_body gives whole bodies in pages of 16.
func TestAttemptPagesStayBounded(t *testing.T) {
	t.Parallel()
	f := setup(t)
	counter := &readCounter{Store: f.store}
	f.handler = managementHandler(t, counter, service.Config{AdminToken: adminToken, Clock: f.clock})
	tid, key := f.tenant("acme")
	ep := f.endpoint(key, nil)["id"].(string)
	id := f.event(tid, ep, "x")
	const n = kapsel.MaxPageLimit + 1
	bigAttempts(t, f, id, n)

	rec := f.do("GET", "/v1/events/"+string(id)+"/attempts?limit=500", key, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %.300s", rec.Code, rec.Body)
	}
	// 500 × (4 KiB as base64 + 1 KiB of error + ~300 bytes of fields).
	const bound = 500 * (service.AttemptBodyPreview*4/3 + 4 + service.AttemptErrorPreview + 400)
	t.Logf("a page of 500 attempts: %d bytes (bound %d); store handed over %d bytes", rec.Body.Len(), bound, counter.bytes.Load())
	if rec.Body.Len() > bound {
		t.Fatalf("a page of 500 attempts is %d bytes, want at most %d", rec.Body.Len(), bound)
	}
	// The store read 501 rows (one to learn has_more), each cut.
	if got, want := counter.bytes.Load(), int64(501*(service.AttemptBodyPreview+1+service.AttemptErrorPreview)); got > want {
		t.Fatalf("the store handed over %d bytes of bodies and errors, want at most %d", got, want)
	}
	var page struct {
		Data []struct {
			ID                    string `json:"id"`
			Attempt               int    `json:"attempt"`
			Error                 string `json:"error"`
			ResponseBody          string `json:"response_body"`
			ResponseBodyEncoding  string `json:"response_body_encoding"`
			ResponseBodyTruncated bool   `json:"response_body_truncated"`
		} `json:"data"`
		NextCursor *string `json:"next_cursor"`
		HasMore    bool    `json:"has_more"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 500 || !page.HasMore || page.NextCursor == nil || *page.NextCursor != page.Data[499].ID {
		t.Fatalf("page of %d attempts, has_more %v, next_cursor %v", len(page.Data), page.HasMore, page.NextCursor)
	}
	for i, a := range page.Data {
		body := []byte(a.ResponseBody)
		if a.ResponseBodyEncoding == service.EncodingBase64 {
			var err error
			if body, err = base64.StdEncoding.DecodeString(a.ResponseBody); err != nil {
				t.Fatal(err)
			}
		}
		wantText := a.Attempt%2 == 0
		if a.Attempt != i+1 || !a.ResponseBodyTruncated || len(body) > service.AttemptBodyPreview ||
			len(body) < service.AttemptBodyPreview-3 || (a.ResponseBodyEncoding == service.EncodingText) != wantText ||
			(wantText && !utf8.Valid(body)) || utf8.RuneCountInString(a.Error) != service.AttemptErrorPreview {
			t.Fatalf("attempt %d: %d-byte %s body, truncated %v, %d-character error", a.Attempt,
				len(body), a.ResponseBodyEncoding, a.ResponseBodyTruncated, utf8.RuneCountInString(a.Error))
		}
	}
	rest := data(t, f.ok(200, "GET", "/v1/events/"+string(id)+"/attempts?limit=500&cursor="+*page.NextCursor, key, nil))
	if len(rest) != 1 || rest[0]["attempt"] != float64(n) {
		t.Fatalf("last page %v", rest)
	}

	// Whole bodies: pages of 16, the cursor leading on.
	full := f.ok(200, "GET", "/v1/events/"+string(id)+"/attempts?include=response_body&limit=500", key, nil)
	atts := data(t, full)
	if len(atts) != service.MaxFullBodyAttempts || full["has_more"] != true || full["next_cursor"] != atts[len(atts)-1]["id"] {
		t.Fatalf("page with whole bodies: %d attempts, has_more %v", len(atts), full["has_more"])
	}
	for _, a := range atts {
		if a["response_body_truncated"] != false || len(a["response_body"].(string)) < kapsel.MaxResponseBody {
			t.Fatalf("attempt %v with include=response_body: truncated %v, %d characters", a["attempt"],
				a["response_body_truncated"], len(a["response_body"].(string)))
		}
	}
	next := data(t, f.ok(200, "GET", "/v1/events/"+string(id)+"/attempts?include=response_body&limit=2&cursor="+full["next_cursor"].(string), key, nil))
	if len(next) != 2 || next[0]["attempt"] != float64(service.MaxFullBodyAttempts+1) {
		t.Fatalf("next page with whole bodies %v", next)
	}
	f.problem(400, kapsel.CodeMalformedRequest, "GET", "/v1/events/"+string(id)+"/attempts?include=body", key, nil)

	// The delivery's own list: the same bounds, the same pages.
	dlv := data(t, f.ok(200, "GET", "/v1/deliveries?event_id="+string(id), key, nil))[0]["id"].(string)
	before := counter.bytes.Load()
	rec = f.do("GET", "/v1/deliveries/"+dlv+"/attempts?limit=500", key, nil)
	if rec.Code != http.StatusOK || rec.Body.Len() > bound || counter.bytes.Load()-before > int64(501*(service.AttemptBodyPreview+1+service.AttemptErrorPreview)) {
		t.Fatalf("a delivery's page of 500 attempts: status %d, %d bytes (bound %d)", rec.Code, rec.Body.Len(), bound)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || len(page.Data) != 500 || !page.HasMore || page.Data[0].Attempt != 1 {
		t.Fatalf("a delivery's page of attempts: %d, %v", len(page.Data), err)
	}
	full = f.ok(200, "GET", "/v1/deliveries/"+dlv+"/attempts?include=response_body&limit=500", key, nil)
	if atts := data(t, full); len(atts) != service.MaxFullBodyAttempts || full["has_more"] != true {
		t.Fatalf("a delivery's page with whole bodies: %d attempts", len(atts))
	}
	f.problem(400, kapsel.CodeMalformedRequest, "GET", "/v1/deliveries/"+dlv+"/attempts?include=body", key, nil)
}

// A short body is shown whole and not marked truncated.
func TestAttemptShortBodyIsWhole(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tid, key := f.tenant("acme")
	ep := f.endpoint(key, nil)["id"].(string)
	id := f.event(tid, ep, "x")
	f.attempt(200)
	atts := data(t, f.ok(200, "GET", "/v1/events/"+string(id)+"/attempts", key, nil))
	if len(atts) != 1 || atts[0]["response_body"] != "ok" || atts[0]["response_body_truncated"] != false {
		t.Fatalf("attempts %v", atts)
	}
}
