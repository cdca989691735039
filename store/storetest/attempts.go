package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

func testAttempts(t *testing.T, newStore func(*testing.T) kapsel.Store) {
	// A list can ask for cut bodies and errors, so that a page of large
	// attempts stays small in memory (docs/api.md); the cut happens in the
	// store's read, and a zero limit reads them whole.
	t.Run("AttemptListCutsBodiesAndErrors", func(t *testing.T) {
		h := setup(t, newStore)
		ten := h.tenant()
		ev := h.event(h.endpoint(ten), Base)
		body := bytes.Repeat([]byte("0123456789"), kapsel.MaxResponseBody/10)
		const errText = "héllo wörld"
		for i := range 3 {
			now := at(time.Duration(i) * time.Minute)
			c := completion(h.claimOne(ev.ID, time.Minute, now), 500, kapsel.EventPending, now)
			c.NextAttemptAt = at(time.Duration(i+1) * time.Minute)
			c.Attempt.ResponseBody = body[:len(body)-i]
			c.Attempt.Error = errText
			must(t, h.complete(now, c)[0], "completion")
		}
		list := func(p kapsel.AttemptListParams) []*kapsel.Attempt {
			p.EventID, p.TenantID = ev.ID, ten.ID
			as, err := h.s.AttemptList(h.ctx, &p)
			must(t, err, "AttemptList")
			return as
		}
		whole := list(kapsel.AttemptListParams{Limit: 10})
		equal(t, "attempts", len(whole), 3)
		for i, a := range whole {
			if !bytes.Equal(a.ResponseBody, body[:len(body)-i]) || a.Error != errText {
				t.Fatalf("attempt %d read whole: body of %d bytes, error %q", i+1, len(a.ResponseBody), a.Error)
			}
		}
		cut := list(kapsel.AttemptListParams{Limit: 2, ResponseBodyLimit: 4097, ErrorLimit: 3})
		equal(t, "attempts on a cut page", len(cut), 2)
		for i, a := range cut {
			if !bytes.Equal(a.ResponseBody, body[:4097]) {
				t.Fatalf("attempt %d: cut body %q…, %d bytes; want the first 4097 bytes", i+1, a.ResponseBody[:min(10, len(a.ResponseBody))], len(a.ResponseBody))
			}
			equal(t, "cut error (3 characters)", a.Error, "hél")
			equal(t, "Number", a.Number, i+1)
		}
		// The cursor still pages on: the third attempt, cut as well.
		rest := list(kapsel.AttemptListParams{Limit: 2, Cursor: cut[1].ID, ResponseBodyLimit: 1 << 20, ErrorLimit: 100})
		if len(rest) != 1 || rest[0].Number != 3 || !bytes.Equal(rest[0].ResponseBody, body[:len(body)-2]) || rest[0].Error != errText {
			t.Fatalf("next page with limits above the sizes = %v", rest)
		}
	})
}
