package delivery

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
)

func TestRetryIntervalDefaults(t *testing.T) {
	t.Parallel()
	p := kapsel.DefaultRetryPolicy()
	// r = 0.5 is the middle of the jitter range: no jitter.
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second}
	for i, w := range want {
		if got := RetryInterval(p, i+1, 0.5); got != w {
			t.Errorf("interval after attempt %d = %s, want %s", i+1, got, w)
		}
	}
	// 2 s · 2^11 = 4096 s > 1 h: capped from the 12th failure on.
	if got := RetryInterval(p, 11, 0.5); got != 2048*time.Second {
		t.Errorf("interval 11 = %s, want 2048s", got)
	}
	for _, n := range []int{12, 24, 100, 1000} {
		if got := RetryInterval(p, n, 0.5); got != time.Hour {
			t.Errorf("interval %d = %s, want 1h", n, got)
		}
	}
}

func TestRetryIntervalJitterBounds(t *testing.T) {
	t.Parallel()
	p := kapsel.DefaultRetryPolicy()
	for n := 1; n <= 30; n++ {
		base := RetryInterval(p, n, 0.5)
		lo, hi := RetryInterval(p, n, 0), RetryInterval(p, n, 0.999999)
		if wantLo := time.Duration(float64(base) * 0.8); lo != wantLo {
			t.Errorf("n=%d: low end %s, want %s", n, lo, wantLo)
		}
		if hi > p.MaxInterval || hi < base {
			t.Errorf("n=%d: high end %s outside [%s, %s]", n, hi, base, p.MaxInterval)
		}
		if n <= 5 && hi < time.Duration(float64(base)*1.19) {
			t.Errorf("n=%d: high end %s is not +20%% of %s", n, hi, base)
		}
	}
	custom := kapsel.RetryPolicy{InitialInterval: 100 * time.Millisecond, Multiplier: 3, MaxInterval: time.Second, Jitter: 0.5}
	if got := RetryInterval(custom, 2, 0.5); got != 300*time.Millisecond {
		t.Errorf("custom interval 2 = %s, want 300ms", got)
	}
	if got := RetryInterval(custom, 2, 0); got != 150*time.Millisecond {
		t.Errorf("custom interval 2 low = %s, want 150ms", got)
	}
	if got := RetryInterval(custom, 10, 1); got != time.Second {
		t.Errorf("custom interval 10 high = %s, want the 1s cap", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"120", 2 * time.Minute, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"Thursday, 01-Jan-26 12:00:30 GMT", 30 * time.Second, true}, // RFC 850
		{"Thu Jan  1 12:00:10 2026", 10 * time.Second, true},         // asctime
		{"99999999999999999999999", time.Duration(math.MaxInt64), true},
		{"", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.v, now)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tt.v, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"7", "Wed, 21 Oct 2015 07:28:00 GMT", "", "-1", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := ParseRetryAfter(v, now)
		if d < 0 || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %s, %v", v, d, ok)
		}
	})
}

func TestDecide(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	created := now.Add(-time.Minute)
	def := kapsel.DefaultRetryPolicy()
	no4xx := def
	no4xx.Retry4xx = false
	short := def
	short.MaxAge = 90 * time.Second // created a minute ago: 30 s left
	status := func(code int) *attemptResult {
		r := &attemptResult{statusCode: code}
		if code < 200 || code >= 300 {
			r.errorCode = kapsel.CodeAttemptStatus
		}
		return r
	}
	withRA := func(code int, ra string) *attemptResult { r := status(code); r.retryAfter = ra; return r }
	tests := []struct {
		name    string
		policy  kapsel.RetryPolicy
		number  int
		res     *attemptResult
		status  kapsel.DeliveryStatus
		next    time.Duration // from now, when pending
		disable kapsel.DisabledReason
		outcome kapsel.AttemptOutcome
	}{
		{"200", def, 1, status(200), kapsel.DeliveryDelivered, 0, "", kapsel.OutcomeDelivered},
		{"204", def, 5, status(204), kapsel.DeliveryDelivered, 0, "", kapsel.OutcomeDelivered},
		{"500 first", def, 1, status(500), kapsel.DeliveryPending, 2 * time.Second, "", kapsel.OutcomeRetry},
		{"500 third", def, 3, status(500), kapsel.DeliveryPending, 8 * time.Second, "", kapsel.OutcomeRetry},
		{"500 last", def, 25, status(500), kapsel.DeliveryFailed, 0, "", kapsel.OutcomeFailed},
		{"timeout", def, 2, &attemptResult{errorCode: kapsel.CodeAttemptTimeout}, kapsel.DeliveryPending, 4 * time.Second, "", kapsel.OutcomeRetry},
		{"302", def, 1, &attemptResult{statusCode: 302, errorCode: kapsel.CodeAttemptRedirect}, kapsel.DeliveryPending, 2 * time.Second, "", kapsel.OutcomeRetry},
		{"410", def, 1, status(410), kapsel.DeliveryPending, 0, kapsel.DisabledGone, kapsel.OutcomeDisabled},
		{"410 even last", def, 25, status(410), kapsel.DeliveryPending, 0, kapsel.DisabledGone, kapsel.OutcomeDisabled},
		{"429 retry-after", def, 1, withRA(429, "7"), kapsel.DeliveryPending, 7 * time.Second, "", kapsel.OutcomeRetry},
		{"503 retry-after date", def, 1, withRA(503, now.Add(42*time.Second).Format(http.TimeFormat)), kapsel.DeliveryPending, 42 * time.Second, "", kapsel.OutcomeRetry},
		{"429 retry-after capped", def, 1, withRA(429, "86400"), kapsel.DeliveryPending, time.Hour, "", kapsel.OutcomeRetry},
		{"429 bad retry-after", def, 1, withRA(429, "later"), kapsel.DeliveryPending, 2 * time.Second, "", kapsel.OutcomeRetry},
		{"500 retry-after ignored", def, 1, withRA(500, "7"), kapsel.DeliveryPending, 2 * time.Second, "", kapsel.OutcomeRetry},
		{"400 retried", def, 1, status(400), kapsel.DeliveryPending, 2 * time.Second, "", kapsel.OutcomeRetry},
		{"400 final", no4xx, 1, status(400), kapsel.DeliveryFailed, 0, "", kapsel.OutcomeFailed},
		{"404 final", no4xx, 1, status(404), kapsel.DeliveryFailed, 0, "", kapsel.OutcomeFailed},
		{"408 still retried", no4xx, 1, status(408), kapsel.DeliveryPending, 2 * time.Second, "", kapsel.OutcomeRetry},
		{"429 still retried", no4xx, 1, status(429), kapsel.DeliveryPending, 2 * time.Second, "", kapsel.OutcomeRetry},
		{"410 still disables", no4xx, 1, status(410), kapsel.DeliveryPending, 0, kapsel.DisabledGone, kapsel.OutcomeDisabled},
		{"500 with 4xx final", no4xx, 1, status(500), kapsel.DeliveryPending, 2 * time.Second, "", kapsel.OutcomeRetry},
		{"max age reached", short, 5, status(500), kapsel.DeliveryFailed, 0, "", kapsel.OutcomeFailed},
		{"max age not yet", short, 2, status(500), kapsel.DeliveryPending, 4 * time.Second, "", kapsel.OutcomeRetry},
		{"retry-after beyond max age", short, 1, withRA(429, "60"), kapsel.DeliveryFailed, 0, "", kapsel.OutcomeFailed},
		{"zero policy is the default", kapsel.RetryPolicy{}, 1, status(400), kapsel.DeliveryPending, 2 * time.Second, "", kapsel.OutcomeRetry},
		{"shutdown", def, 25, &attemptResult{errorCode: kapsel.CodeShuttingDown, sent: true}, kapsel.DeliveryPending, 0, "", kapsel.OutcomeRetry},
	}
	for _, tt := range tests {
		got := decide(tt.policy, created, tt.number, tt.res, now, 0.5)
		if got.status != tt.status || got.disable != tt.disable || got.outcome != tt.outcome {
			t.Errorf("%s: got %+v, want status %s disable %q outcome %s", tt.name, got, tt.status, tt.disable, tt.outcome)
			continue
		}
		if tt.status == kapsel.DeliveryPending {
			if want := now.Add(tt.next); !got.nextAttemptAt.Equal(want) {
				t.Errorf("%s: next attempt at %s, want %s", tt.name, got.nextAttemptAt, want)
			}
		}
	}
}
