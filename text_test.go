package kapsel_test

import (
	"net/http"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/kapsel-dev/kapsel"
)

func TestSafeText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"Internal Server Error", "Internal Server Error"},
		{"ünïcødé ✓ \uFFFD", "ünïcødé ✓ \uFFFD"},
		{"\xff\xfe\x00bad", "\uFFFD\uFFFDbad"},
		{"a\x00b", "a\uFFFDb"},
		{"\x00\x00", "\uFFFD\uFFFD"},
		{"caf\xe9", "caf\uFFFD"},
		{"\xed\xa0\x80", "\uFFFD"}, // a UTF-16 surrogate encoded as UTF-8
	} {
		got := kapsel.SafeText(tc.in)
		if got != tc.want {
			t.Errorf("SafeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if kapsel.SafeText(got) != got {
			t.Errorf("SafeText(%q) is not stable", got)
		}
	}
}

func TestSafeHeader(t *testing.T) {
	t.Parallel()
	clean := http.Header{"X-A": {"1", "2"}}
	if got := kapsel.SafeHeader(clean); reflect.ValueOf(got).Pointer() != reflect.ValueOf(clean).Pointer() {
		t.Fatal("SafeHeader copied a clean header")
	}
	if got := kapsel.SafeHeader(nil); got != nil {
		t.Fatalf("SafeHeader(nil) = %v", got)
	}
	got := kapsel.SafeHeader(http.Header{"X-\xff": {"a\x00"}, "X-\xfe": {"b"}, "X-Ok": {"\xffc"}})
	want := http.Header{"X-\uFFFD": {"b", "a\uFFFD"}, "X-Ok": {"\uFFFDc"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("SafeHeader = %q, want %q", got, want)
	}
}

func FuzzSafeText(f *testing.F) {
	f.Add("\xff\xfe\x00bad")
	f.Add("plain")
	f.Fuzz(func(t *testing.T, s string) {
		got := kapsel.SafeText(s)
		if !utf8.ValidString(got) {
			t.Fatalf("SafeText(%q) = %q is not valid UTF-8", s, got)
		}
		for i := 0; i < len(got); i++ {
			if got[i] == 0 {
				t.Fatalf("SafeText(%q) = %q holds NUL", s, got)
			}
		}
		if utf8.ValidString(s) && !containsNUL(s) && got != s {
			t.Fatalf("SafeText changed clean text %q to %q", s, got)
		}
	})
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}
