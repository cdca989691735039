package kapsel_test

import (
	"context"
	"testing"

	"github.com/kapsel-dev/kapsel"
)

// notifyingStore is a store with the Notifier capability; wrapper wraps a
// store and hides it behind the embedded interface.
type notifyingStore struct{ kapsel.Store }

func (notifyingStore) DeliveryListen(context.Context) (<-chan struct{}, error) { return nil, nil }

type wrapper struct{ kapsel.Store }

func (w wrapper) Unwrap() kapsel.Store { return w.Store }

type opaque struct{ kapsel.Store }

// loop is a wrapper whose Unwrap returns itself.
type loop struct{ kapsel.Store }

func (l *loop) Unwrap() kapsel.Store { return l }

func TestStoreAsLooksThroughWrappers(t *testing.T) {
	t.Parallel()
	inner := notifyingStore{}
	for name, c := range map[string]struct {
		s    kapsel.Store
		want bool
	}{
		"the store itself":               {inner, true},
		"one wrapper":                    {wrapper{inner}, true},
		"two wrappers":                   {wrapper{wrapper{inner}}, true},
		"a wrapper without Unwrap":       {opaque{inner}, false},
		"a store without the method":     {wrapper{opaque{}}, false},
		"nil":                            {nil, false},
		"a wrapper unwrapping to itself": {&loop{}, false},
	} {
		_, ok := kapsel.StoreAs[kapsel.Notifier](c.s)
		if ok != c.want {
			t.Errorf("%s: StoreAs[Notifier] found it = %t, want %t", name, ok, c.want)
		}
	}
}
