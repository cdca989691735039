package kapsel

import (
	"errors"
	"sort"
	"testing"
)

func TestNewIDsAreWellFormedAndSorted(t *testing.T) {
	t.Parallel()
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = string(NewEventID())
		if _, err := ParseEventID(ids[i]); err != nil {
			t.Fatalf("NewEventID produced %q: %v", ids[i], err)
		}
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("ids generated in sequence do not sort in creation order")
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestParseIDRejects(t *testing.T) {
	t.Parallel()
	good := string(NewEndpointID())
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"wrong prefix", "evt_" + good[3:]},
		{"no prefix", good[3:]},
		{"short", good[:len(good)-1]},
		{"long", good + "0"},
		{"lower case", "ep_" + "01hzzzzzzzzzzzzzzzzzzzzzzz"},
		{"excluded letter", "ep_01HZZZZZZZZZZZZZZZZZZZZZZU"},
		{"overflow", "ep_8ZZZZZZZZZZZZZZZZZZZZZZZZZ"},
	} {
		if _, err := ParseEndpointID(tc.in); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: ParseEndpointID(%q) = %v, want ErrInvalid", tc.name, tc.in, err)
		}
	}
	if _, err := ParseEndpointID(good); err != nil {
		t.Fatalf("ParseEndpointID(%q) = %v", good, err)
	}
}

func FuzzParseEventID(f *testing.F) {
	f.Add(string(NewEventID()))
	f.Add("evt_")
	f.Add("evt_7ZZZZZZZZZZZZZZZZZZZZZZZZZ")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseEventID(s)
		if err == nil && string(id) != s {
			t.Fatalf("accepted %q but returned %q", s, id)
		}
		if err == nil && (len(s) != 30 || s[:4] != "evt_") {
			t.Fatalf("accepted malformed %q", s)
		}
	})
}

func TestStatusTransitions(t *testing.T) {
	t.Parallel()
	all := []DeliveryStatus{DeliveryPending, DeliveryDelivering, DeliveryDelivered, DeliveryFailed}
	allowed := map[[2]DeliveryStatus]bool{
		{DeliveryPending, DeliveryDelivering}:   true,
		{DeliveryPending, DeliveryFailed}:       true, // its endpoint was deleted
		{DeliveryDelivering, DeliveryDelivered}: true,
		{DeliveryDelivering, DeliveryFailed}:    true,
		{DeliveryDelivering, DeliveryPending}:   true,
		{DeliveryDelivered, DeliveryPending}:    true,
		{DeliveryFailed, DeliveryPending}:       true,
	}
	for _, from := range all {
		for _, to := range all {
			if got := from.CanTransitionTo(to); got != allowed[[2]DeliveryStatus{from, to}] {
				t.Errorf("%s → %s: CanTransitionTo = %v", from, to, got)
			}
		}
	}
}

func TestCodeTable(t *testing.T) {
	t.Parallel()
	for code, want := range map[Code]int{
		CodeSignature: 401, CodeBodyTooLarge: 413, CodeUnknownSource: 404,
		CodeBadIdempotencyKey: 400, CodeIdempotencyReused: 422, CodeRateLimited: 429,
		CodeInvalidURL: 422, CodeInvalidHeader: 422, CodeMalformedRequest: 400,
		CodeUnauthenticated: 401, CodeNotFound: 404, CodeStorageUnavailable: 503,
		CodeInternal: 500, CodeShuttingDown: 503,
	} {
		if got := code.Info().Status; got != want {
			t.Errorf("%s: status %d, want %d", code, got, want)
		}
	}
	if Code("E9999").Known() {
		t.Error("unknown code reported known")
	}
	if got := CodeOf(NewError(CodeSignature, "x")); got != CodeSignature {
		t.Errorf("CodeOf(*Error) = %s", got)
	}
	if got := CodeOf(errors.Join(errors.New("ctx"), ErrUnavailable)); got != CodeStorageUnavailable {
		t.Errorf("CodeOf(ErrUnavailable) = %s", got)
	}
}
