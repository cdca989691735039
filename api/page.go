package api

import (
	"net/http"
	"strconv"

	"github.com/kapsel-dev/kapsel"
)

// page is the body of every list answer.
type page[T any] struct {
	Data []T `json:"data"`
	// NextCursor is the cursor of the next page; null on the last page.
	NextCursor *string `json:"next_cursor"`
	HasMore    bool    `json:"has_more"`
}

// pageParams reads ?limit= (1–500, default 50) and ?cursor= (checked with
// parse, which returns an error for a malformed id).
func pageParams(r *http.Request, parse func(string) error) (limit int, cursor string, err error) {
	q := r.URL.Query()
	limit = kapsel.DefaultPageLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > kapsel.MaxPageLimit {
			return 0, "", badRequest("limit must be an integer from 1 to %d", kapsel.MaxPageLimit)
		}
		limit = n
	}
	cursor = q.Get("cursor")
	if cursor != "" && parse(cursor) != nil {
		return 0, "", badRequest("cursor is malformed; pass the next_cursor of the previous page")
	}
	return limit, cursor, nil
}

// list fetches one page with fetch(limit, cursor), which returns at most
// limit items after cursor in id order. It asks for limit+1 items to learn
// whether more follow; when the store's cap (MaxPageLimit) makes that
// impossible, it probes for one item after the page instead.
func list[S any, T any](limit int, cursor string, fetch func(limit int, cursor string) ([]S, error),
	id func(S) string, conv func(S) T,
) (*page[T], error) {
	items, err := fetch(min(limit+1, kapsel.MaxPageLimit), cursor)
	if err != nil {
		return nil, err
	}
	more := len(items) > limit
	if more {
		items = items[:limit]
	} else if len(items) == limit && limit == kapsel.MaxPageLimit {
		next, err := fetch(1, id(items[len(items)-1]))
		if err != nil {
			return nil, err
		}
		more = len(next) > 0
	}
	p := &page[T]{Data: make([]T, 0, len(items)), HasMore: more}
	for _, it := range items {
		p.Data = append(p.Data, conv(it))
	}
	if more {
		next := id(items[len(items)-1])
		p.NextCursor = &next
	}
	return p, nil
}
