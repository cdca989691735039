package delivery_test

import (
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel"
	"github.com/kapsel-dev/kapsel/delivery"
)

// TestRetryDueBeforeThePollIsNotLate: with a poll interval far longer than
// the retry interval, the retry this dispatcher scheduled is attempted when
// it falls due, not at the next poll: the claim loop brings its timer
// forward to it.
func TestRetryDueBeforeThePollIsNotLate(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *delivery.Config) { c.PollInterval = time.Hour })
	f.dest.FailTimes(1, 500)
	dl := f.insert(nil, `{"n":1}`)

	first := f.waitAttempts(dl, 1)
	if first.Status != kapsel.DeliveryPending {
		t.Fatalf("after attempt 1: %+v", first)
	}
	// Only the retry's own time: advanceUntil would step on by the default
	// poll interval (1 s) at most 200 times, far short of the hour.
	f.advanceUntil(first.NextAttemptAt, func() bool { return f.delivery(dl.ID).Attempts >= 2 })
	delivered := f.requireDelivered(dl)
	if got := f.attemptsOf(dl.ID); len(got) != 2 || got[1].StartedAt.After(first.NextAttemptAt.Add(time.Minute)) {
		t.Fatalf("attempts %d, the second started %s after its time", len(got), got[len(got)-1].StartedAt.Sub(first.NextAttemptAt))
	}
	if delivered.Attempts != 2 {
		t.Fatalf("delivered after %d attempts, want 2", delivered.Attempts)
	}
}

// TestRetryDueSurvivesAClaimInBetween: a claim made before the retry is due
// (here woken by a new event) must not make the dispatcher forget the
// retry's time and leave it to the next poll.
func TestRetryDueSurvivesAClaimInBetween(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *delivery.Config) { c.PollInterval = time.Hour })
	f.dest.FailTimes(1, 500)
	dl := f.insert(nil, `{"n":1}`)
	first := f.waitAttempts(dl, 1)
	if first.Status != kapsel.DeliveryPending {
		t.Fatalf("after attempt 1: %+v", first)
	}

	other := f.insert(nil, `{"n":2}`) // wakes the dispatcher: a claim before the retry is due
	f.requireDelivered(other)
	if got := f.delivery(dl.ID).Attempts; got != 1 {
		t.Fatalf("the retry ran before its time: %d attempts", got)
	}

	f.advanceUntil(first.NextAttemptAt, func() bool { return f.delivery(dl.ID).Attempts >= 2 })
	f.requireDelivered(dl)
}
