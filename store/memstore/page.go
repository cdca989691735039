package memstore

import (
	"cmp"
	"iter"
	"slices"

	"github.com/kapsel-dev/kapsel"
)

// page is one page of a list, in the shape every list method shares: the
// items with an id after cursor (all of them when cursor is empty), in id
// order, at most kapsel.PageLimit(limit) of them, each copied with clone.
// The caller's filter decides which stored items are candidates.
func page[T any, ID ~string](items iter.Seq[T], id func(T) ID, cursor ID, limit int, clone func(T) T) []T {
	var out []T
	for x := range items {
		if cursor == "" || id(x) > cursor {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b T) int { return cmp.Compare(id(a), id(b)) })
	if n := kapsel.PageLimit(limit); len(out) > n {
		out = out[:n]
	}
	for i, x := range out {
		out[i] = clone(x)
	}
	return out
}
