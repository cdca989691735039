package upgradetest

import (
	"cmp"
	"reflect"
	"slices"
	"testing"
	"time"
)

// requireEqual fails t unless err is nil and got equals want, times
// compared in UTC (stores read them back in their own zone) and empty
// maps, slices and headers as nil.
func requireEqual[T any](t *testing.T, what string, got T, err error, want T) {
	t.Helper()
	if err != nil {
		t.Fatalf("reading %s: %v", what, err)
	}
	if g, w := normalize(got), normalize(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%s after the upgrade:\n got %+v\nwant %+v", what, dump(g), dump(w))
	}
}

// dump shows v's pointers' values, for a failure message.
func dump(v any) any {
	rv := reflect.ValueOf(v)
	switch {
	case rv.Kind() == reflect.Pointer && !rv.IsNil():
		return rv.Elem().Interface()
	case rv.Kind() == reflect.Slice:
		out := make([]any, rv.Len())
		for i := range rv.Len() {
			out[i] = dump(rv.Index(i).Interface())
		}
		return out
	}
	return v
}

// normalize returns a copy of v with every time.Time in UTC and empty maps
// and slices nil, walking pointers, structs, slices and maps.
func normalize[T any](v T) T {
	return normalizeValue(reflect.ValueOf(&v).Elem()).Interface().(T)
}

func normalizeValue(v reflect.Value) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		out.Set(reflect.ValueOf(v.Interface().(time.Time).UTC()))
	case v.Kind() == reflect.Pointer && !v.IsNil():
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(normalizeValue(v.Elem()))
		out.Set(p)
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			if out.Field(i).CanSet() {
				out.Field(i).Set(normalizeValue(v.Field(i)))
			}
		}
	case v.Kind() == reflect.Slice && v.Len() > 0:
		s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			s.Index(i).Set(normalizeValue(v.Index(i)))
		}
		out.Set(s)
	case v.Kind() == reflect.Map && v.Len() > 0:
		m := reflect.MakeMapWithSize(v.Type(), v.Len())
		for _, k := range v.MapKeys() {
			m.SetMapIndex(k, normalizeValue(v.MapIndex(k)))
		}
		out.Set(m)
	case v.Kind() == reflect.Slice || v.Kind() == reflect.Map || v.Kind() == reflect.Pointer:
		// empty or nil: stays nil
	default:
		out.Set(v)
	}
	return out
}

// ids returns the ids of items, in order.
func ids[T any, ID ~string](items []T, id func(T) ID) []ID {
	out := make([]ID, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

// sortedBy returns a copy of items sorted by id.
func sortedBy[T any, ID ~string](items []T, id func(T) ID) []T {
	out := slices.Clone(items)
	slices.SortFunc(out, func(a, b T) int { return cmp.Compare(id(a), id(b)) })
	return out
}
