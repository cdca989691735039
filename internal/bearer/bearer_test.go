package bearer

import (
	"net/http/httptest"
	"testing"
)

func TestToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ header, want string }{
		{"Bearer abc", "abc"},
		{"bearer  abc ", "abc"},
		{"Basic abc", ""},
		{"Bearer", ""},
		{"", ""},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		if got := Token(r); got != tc.want {
			t.Errorf("Token(%q) = %q, want %q", tc.header, got, tc.want)
		}
	}
}

func TestSecretMatches(t *testing.T) {
	t.Parallel()
	s := NewSecret("s3cr3t")
	if !s.Matches("s3cr3t") || s.Matches("s3cr3") || s.Matches("") || s.Matches("s3cr3t ") {
		t.Fatal("Matches accepts only the secret itself")
	}
	if NewSecret("").Matches("") {
		t.Fatal("an empty secret matches nothing")
	}
}
