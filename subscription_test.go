package kapsel

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSubscriptionMatches(t *testing.T) {
	t.Parallel()
	src1, src2 := NewSourceID(), NewSourceID()
	types := func(p ...string) Subscription { return Subscription{EventTypes: p} }
	for _, tc := range []struct {
		name string
		sub  Subscription
		ev   EventRouting
		want bool
	}{
		{"empty filter, untyped event", Subscription{}, EventRouting{}, true},
		{"empty filter, any event", Subscription{}, EventRouting{SourceID: src1, Type: "a.b", Channels: []string{"c"}}, true},
		{"exact type", types("invoice.paid"), EventRouting{Type: "invoice.paid"}, true},
		{"exact type, other type", types("invoice.paid"), EventRouting{Type: "invoice.created"}, false},
		{"exact type is case-sensitive", types("invoice.paid"), EventRouting{Type: "Invoice.Paid"}, false},
		{"exact type, untyped event", types("invoice.paid"), EventRouting{}, false},
		{"exact type is not a prefix", types("invoice"), EventRouting{Type: "invoice.paid"}, false},
		{"one of several types", types("a", "invoice.paid", "b"), EventRouting{Type: "invoice.paid"}, true},
		{"wildcard, one level", types("invoice.*"), EventRouting{Type: "invoice.paid"}, true},
		{"wildcard, deeper", types("invoice.*"), EventRouting{Type: "invoice.payment.failed"}, true},
		{"wildcard, not the bare prefix", types("invoice.*"), EventRouting{Type: "invoice"}, false},
		{"wildcard, not a longer word", types("invoice.*"), EventRouting{Type: "invoices.paid"}, false},
		{"wildcard, not a suffix", types("invoice.*"), EventRouting{Type: "customer.invoice.paid"}, false},
		{"wildcard, untyped event", types("invoice.*"), EventRouting{}, false},
		{"wildcard, nested prefix", types("invoice.payment.*"), EventRouting{Type: "invoice.payment.failed"}, true},
		{"wildcard, nested prefix, sibling", types("invoice.payment.*"), EventRouting{Type: "invoice.paid"}, false},
		{"star, typed event", types("*"), EventRouting{Type: "push"}, true},
		{"star, untyped event", types("*"), EventRouting{}, true},
		{"source listed", Subscription{SourceIDs: []SourceID{src1, src2}}, EventRouting{SourceID: src2}, true},
		{"source not listed", Subscription{SourceIDs: []SourceID{src1}}, EventRouting{SourceID: src2}, false},
		{"source filter, a send (no source)", Subscription{SourceIDs: []SourceID{src1}}, EventRouting{}, false},
		{"channel in common", Subscription{Channels: []string{"eu", "us"}}, EventRouting{Channels: []string{"apac", "us"}}, true},
		{"no channel in common", Subscription{Channels: []string{"eu"}}, EventRouting{Channels: []string{"us"}}, false},
		{"channel filter, event on none", Subscription{Channels: []string{"eu"}}, EventRouting{}, false},
		{"channels are case-sensitive", Subscription{Channels: []string{"eu"}}, EventRouting{Channels: []string{"EU"}}, false},
		{"all three match", Subscription{EventTypes: []string{"invoice.*"}, SourceIDs: []SourceID{src1}, Channels: []string{"eu"}},
			EventRouting{SourceID: src1, Type: "invoice.paid", Channels: []string{"eu"}}, true},
		{"all three but the channel", Subscription{EventTypes: []string{"invoice.*"}, SourceIDs: []SourceID{src1}, Channels: []string{"eu"}},
			EventRouting{SourceID: src1, Type: "invoice.paid", Channels: []string{"us"}}, false},
		{"all three but the source", Subscription{EventTypes: []string{"invoice.*"}, SourceIDs: []SourceID{src1}, Channels: []string{"eu"}},
			EventRouting{SourceID: src2, Type: "invoice.paid", Channels: []string{"eu"}}, false},
		{"all three but the type", Subscription{EventTypes: []string{"invoice.*"}, SourceIDs: []SourceID{src1}, Channels: []string{"eu"}},
			EventRouting{SourceID: src1, Type: "customer.created", Channels: []string{"eu"}}, false},
	} {
		if got := tc.sub.Matches(tc.ev); got != tc.want {
			t.Errorf("%s: %+v.Matches(%+v) = %v, want %v", tc.name, tc.sub, tc.ev, got, tc.want)
		}
	}
}

func TestEndpointReceivesOnlyItsTenant(t *testing.T) {
	t.Parallel()
	ten, other := NewTenantID(), NewTenantID()
	for _, state := range []EndpointState{EndpointActive, EndpointPaused, EndpointDisabled} {
		e := &Endpoint{TenantID: ten, State: state, Subscription: Subscription{EventTypes: []string{"a.*"}}}
		if !e.Receives(EventRouting{TenantID: ten, Type: "a.b"}) {
			t.Errorf("%s endpoint does not receive its tenant's matching event", state)
		}
		if e.Receives(EventRouting{TenantID: other, Type: "a.b"}) {
			t.Errorf("%s endpoint receives another tenant's matching event", state)
		}
		if e.Receives(EventRouting{TenantID: ten, Type: "b.a"}) {
			t.Errorf("%s endpoint receives its tenant's event that does not match", state)
		}
	}
}

func TestSubscriptionValidate(t *testing.T) {
	t.Parallel()
	src := NewSourceID()
	many := func(n int, f func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	manySources := make([]SourceID, MaxSubscriptionItems+1)
	for i := range manySources {
		manySources[i] = NewSourceID()
	}
	long := strings.Repeat("a", MaxEventTypeLen)
	good := []Subscription{
		{},
		{EventTypes: []string{}, SourceIDs: []SourceID{}, Channels: []string{}},
		{EventTypes: []string{"*"}},
		{EventTypes: []string{"invoice.paid", "invoice.*", "customer.subscription.*", "push", "a b", "ünïcode.*"}},
		{EventTypes: []string{long, long[:MaxEventTypeLen-2] + ".*"}},
		{EventTypes: many(MaxSubscriptionItems, func(i int) string { return fmt.Sprint("t", i) })},
		{SourceIDs: []SourceID{src, NewSourceID()}},
		{SourceIDs: manySources[:MaxSubscriptionItems]},
		{Channels: []string{"eu", "org_123", "project:a/b", "~!#$%&'()+,-./:;<=>?@[]^_`{|}", strings.Repeat("c", MaxChannelLen)}},
		{Channels: many(MaxSubscriptionItems, func(i int) string { return fmt.Sprint("c", i) })},
	}
	for i, s := range good {
		if err := s.Validate(); err != nil {
			t.Errorf("good[%d] %+v: %v", i, s, err)
		}
	}
	for _, tc := range []struct {
		name, field string
		sub         Subscription
	}{
		{"empty type", "event_types[0]", Subscription{EventTypes: []string{""}}},
		{"type too long", "event_types[1]", Subscription{EventTypes: []string{"a", long + "b"}}},
		{"pattern too long", "event_types[0]", Subscription{EventTypes: []string{long + ".*"}}},
		{"control character", "event_types[0]", Subscription{EventTypes: []string{"a\nb"}}},
		{"invalid UTF-8", "event_types[0]", Subscription{EventTypes: []string{"a\xffb"}}},
		{"star without dot", "event_types[0]", Subscription{EventTypes: []string{"invoice*"}}},
		{"leading star", "event_types[0]", Subscription{EventTypes: []string{"*.paid"}}},
		{"star in the middle", "event_types[0]", Subscription{EventTypes: []string{"invoice.*.paid"}}},
		{"two wildcards", "event_types[0]", Subscription{EventTypes: []string{"invoice.*.*"}}},
		{"dot star alone", "event_types[0]", Subscription{EventTypes: []string{".*"}}},
		{"double star", "event_types[0]", Subscription{EventTypes: []string{"**"}}},
		{"duplicate type", "event_types[2]", Subscription{EventTypes: []string{"a", "b", "a"}}},
		{"duplicate star", "event_types[1]", Subscription{EventTypes: []string{"*", "*"}}},
		{"too many types", "event_types", Subscription{EventTypes: many(MaxSubscriptionItems+1, func(i int) string { return fmt.Sprint("t", i) })}},
		{"endpoint id as source", "source_ids[0]", Subscription{SourceIDs: []SourceID{SourceID(NewEndpointID())}}},
		{"malformed source", "source_ids[1]", Subscription{SourceIDs: []SourceID{src, "src_nope"}}},
		{"empty source", "source_ids[0]", Subscription{SourceIDs: []SourceID{""}}},
		{"duplicate source", "source_ids[1]", Subscription{SourceIDs: []SourceID{src, src}}},
		{"too many sources", "source_ids", Subscription{SourceIDs: manySources}},
		{"empty channel", "channels[0]", Subscription{Channels: []string{""}}},
		{"channel with space", "channels[0]", Subscription{Channels: []string{"a b"}}},
		{"channel star", "channels[0]", Subscription{Channels: []string{"*"}}},
		{"channel with star", "channels[0]", Subscription{Channels: []string{"eu.*"}}},
		{"channel not ASCII", "channels[0]", Subscription{Channels: []string{"été"}}},
		{"channel with DEL", "channels[0]", Subscription{Channels: []string{"a\x7f"}}},
		{"channel too long", "channels[0]", Subscription{Channels: []string{strings.Repeat("c", MaxChannelLen+1)}}},
		{"duplicate channel", "channels[1]", Subscription{Channels: []string{"eu", "eu"}}},
		{"too many channels", "channels", Subscription{Channels: many(MaxSubscriptionItems+1, func(i int) string { return fmt.Sprint("c", i) })}},
	} {
		err := tc.sub.Validate()
		var ke *Error
		if !errors.Is(err, ErrInvalid) || !errors.As(err, &ke) || ke.Code != CodeMalformedRequest {
			t.Errorf("%s: Validate = %v, want a *Error E1009 wrapping ErrInvalid", tc.name, err)
			continue
		}
		if !strings.HasPrefix(ke.Detail, tc.field) {
			t.Errorf("%s: detail %q does not start with the field %q", tc.name, ke.Detail, tc.field)
		}
	}
}

func TestCheckEventChannels(t *testing.T) {
	t.Parallel()
	for _, ok := range [][]string{nil, {}, {"eu"}, {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}} {
		if err := CheckEventChannels(ok); err != nil {
			t.Errorf("CheckEventChannels(%q) = %v", ok, err)
		}
	}
	for _, bad := range [][]string{
		{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}, // over MaxEventChannels
		{""}, {"a b"}, {"*"}, {"eu", "eu"}, {"\x00"},
	} {
		if err := CheckEventChannels(bad); CodeOf(err) != CodeMalformedRequest || !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckEventChannels(%q) = %v, want E1009", bad, err)
		}
	}
}

func TestStorableRefusesBadChannels(t *testing.T) {
	t.Parallel()
	p := &EventInsertParams{Channels: []string{"eu", "eu"}}
	if _, err := p.Storable(); CodeOf(err) != CodeMalformedRequest {
		t.Fatalf("Storable with a channel listed twice = %v, want E1009", err)
	}
	p.Channels = []string{"eu", "us"}
	out, err := p.Storable()
	if err != nil {
		t.Fatalf("Storable: %v", err)
	}
	out.Channels[0] = "changed"
	if p.Channels[0] != "eu" {
		t.Fatal("Storable's copy shares its Channels with the input")
	}
}

// FuzzSubscription checks the validator and the matcher against each other
// and against an independent oracle: an accepted pattern has "*" only
// alone or as a final ".*", and matches exactly what the regular expression
// it stands for matches; an accepted channel is printable ASCII without
// space or "*".
func FuzzSubscription(f *testing.F) {
	for _, s := range [][2]string{
		{"invoice.*", "invoice.paid"}, {"invoice.*", "invoice"}, {"*", ""}, {"invoice.paid", "invoice.paid"},
		{"a*", "ab"}, {".*", "x"}, {"a.*.b", "a.x.b"}, {"ü.*", "ü.x"}, {"a\xff.*", "a\xff.b"}, {"eu", "eu"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, typ string) {
		sub := Subscription{EventTypes: []string{pattern}}
		got := sub.Matches(EventRouting{Type: typ})
		if err := sub.Validate(); err == nil {
			if i := strings.IndexByte(pattern, '*'); i >= 0 && pattern != "*" && (i != len(pattern)-1 || !strings.HasSuffix(pattern, ".*") || len(pattern) < 3) {
				t.Fatalf("accepted pattern %q with a misplaced *", pattern)
			}
			var re string
			switch {
			case pattern == "*":
				re = `(?s)^.*$`
			case strings.HasSuffix(pattern, ".*"):
				re = `(?s)^` + regexp.QuoteMeta(pattern[:len(pattern)-1]) + `.*$`
			default:
				re = `(?s)^` + regexp.QuoteMeta(pattern) + `$`
			}
			// The oracle on bytes: regexp reads invalid UTF-8 as U+FFFD,
			// so compare only where both are valid.
			if want := regexp.MustCompile(re).MatchString(typ); want != got && utf8.ValidString(typ) {
				t.Fatalf("pattern %q, type %q: Matches = %v, oracle %v", pattern, typ, got, want)
			}
			if pattern != "*" && !strings.HasSuffix(pattern, ".*") && !sub.Matches(EventRouting{Type: pattern}) {
				t.Fatalf("exact pattern %q does not match itself", pattern)
			}
		}
		// Channels: what is accepted is printable ASCII without space or *.
		if err := CheckEventChannels([]string{pattern}); err == nil {
			if len(pattern) == 0 || len(pattern) > MaxChannelLen {
				t.Fatalf("accepted channel of %d bytes", len(pattern))
			}
			for i := range len(pattern) {
				if b := pattern[i]; b <= ' ' || b > '~' || b == '*' {
					t.Fatalf("accepted channel %q with byte %q", pattern, b)
				}
			}
			onIt := Subscription{Channels: []string{pattern}}
			if !onIt.Matches(EventRouting{Channels: []string{typ, pattern}}) {
				t.Fatalf("channel %q does not match an event on it", pattern)
			}
		} else if CodeOf(err) != CodeMalformedRequest {
			t.Fatalf("channel %q refused with %v, want E1009", pattern, err)
		}
	})
}

func ExampleSubscription_Matches() {
	sub := Subscription{EventTypes: []string{"invoice.*", "customer.created"}}
	for _, typ := range []string{"invoice.paid", "invoice.payment.failed", "invoice", "invoices.paid", "customer.created", ""} {
		fmt.Printf("%-24q %v\n", typ, sub.Matches(EventRouting{Type: typ}))
	}
	// Output:
	// "invoice.paid"           true
	// "invoice.payment.failed" true
	// "invoice"                false
	// "invoices.paid"          false
	// "customer.created"       true
	// ""                       false
}
