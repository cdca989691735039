package kapsel_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kapsel-dev/kapsel"
)

func TestStorableEventType(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", kapsel.MaxEventTypeLen)
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", ""},
		{"plain", "invoice.paid", "invoice.paid"},
		{"exactly the limit", long, long},
		{"one byte over", long + "b", long},
		{"cut before a split character", long[:254] + "é", long[:254]},
		{"a character that ends at the limit", long[:253] + "é", long[:253] + "é"},
		{"invalid bytes and NUL made safe", "a\xff\x00b", "a\uFFFD\uFFFDb"},
		{"made safe, then cut", strings.Repeat("a\xff", 100), strings.Repeat("a\uFFFD", 63) + "a"},
	} {
		got := kapsel.StorableEventType(tc.in)
		if got != tc.want {
			t.Errorf("%s: StorableEventType = %q, want %q", tc.name, got, tc.want)
		}
		if len(got) > kapsel.MaxEventTypeLen || !utf8.ValidString(got) {
			t.Errorf("%s: %d bytes, valid UTF-8 %v", tc.name, len(got), utf8.ValidString(got))
		}
	}
}

func TestValidEventType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"", true},
		{"invoice.paid", true},
		{"pull_request review", true},
		{"commande.payée", true},
		{"\uFFFD", true}, // the character itself is printable text
		{strings.Repeat("a", kapsel.MaxEventTypeLen), true},
		{strings.Repeat("a", kapsel.MaxEventTypeLen+1), false},
		{strings.Repeat("é", 128), false}, // 256 bytes
		{"a\x00b", false},
		{"a\nb", false},
		{"a\tb", false},
		{"\x7f", false},
		{"a\xffb", false},
		{"\u200b", false}, // zero-width space: a format character
	} {
		err := kapsel.ValidEventType(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ValidEventType(%q) = %v, want ok %v", tc.in, err, tc.ok)
		}
		if err != nil && !errors.Is(err, kapsel.ErrInvalid) {
			t.Errorf("ValidEventType(%q) = %v, want ErrInvalid", tc.in, err)
		}
	}
}
