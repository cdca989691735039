package service

import "github.com/kapsel-dev/kapsel"

// ListOptions select one page of a list: at most Limit items (default
// kapsel.DefaultPageLimit, at most kapsel.MaxPageLimit) after Cursor, the
// NextCursor of the previous page ("" for the first).
type ListOptions struct {
	Limit  int
	Cursor string
}

// Page is one page of a list, in id order.
type Page[T any] struct {
	Data []T
	// NextCursor is the cursor of the next page; "" on the last one.
	NextCursor string
	// HasMore says whether items follow this page.
	HasMore bool
}

// errLimit refuses a page limit, in Go or on the wire.
var errLimit = invalid("limit must be an integer from 1 to %d", kapsel.MaxPageLimit)

// check refuses a limit outside 0–MaxPageLimit (0 means the default) and a
// cursor parse refuses, and returns the limit to use.
func (o ListOptions) check(parse func(string) error) (int, error) {
	if o.Limit < 0 || o.Limit > kapsel.MaxPageLimit {
		return 0, errLimit
	}
	if o.Cursor != "" && parse(o.Cursor) != nil {
		return 0, invalid("cursor is malformed; pass the next_cursor of the previous page")
	}
	return kapsel.PageLimit(o.Limit), nil
}

// list fetches one page with fetch(limit, cursor), which returns at most
// limit items after cursor in id order. It asks for limit+1 items to learn
// whether more follow; when the store's cap (MaxPageLimit) makes that
// impossible, it probes for one item after the page instead.
func list[T any](limit int, cursor string, fetch func(limit int, cursor string) ([]T, error), id func(T) string) (*Page[T], error) {
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
	p := &Page[T]{Data: items, HasMore: more}
	if more {
		p.NextCursor = id(items[len(items)-1])
	}
	if p.Data == nil {
		p.Data = []T{}
	}
	return p, nil
}
