package kapseltest

import (
	"testing"
	"time"
)

func TestClockTimersFireInOrderOnAdvance(t *testing.T) {
	t.Parallel()
	c := NewClock(time.Time{})
	start := c.Now()
	a := c.NewTimer(2 * time.Second)
	b := c.NewTimer(5 * time.Second)
	if got := c.Timers(); got != 2 {
		t.Fatalf("Timers() = %d, want 2", got)
	}
	c.Advance(time.Second)
	select {
	case <-a.C():
		t.Fatal("timer a fired 1 s early")
	default:
	}
	c.Advance(time.Second)
	select {
	case at := <-a.C():
		if !at.Equal(start.Add(2 * time.Second)) {
			t.Fatalf("timer a fired at %v, want %v", at, start.Add(2*time.Second))
		}
	default:
		t.Fatal("timer a did not fire at its deadline")
	}
	if b.Stop() != true {
		t.Fatal("Stop on a waiting timer reported inactive")
	}
	c.Advance(time.Hour)
	select {
	case <-b.C():
		t.Fatal("stopped timer fired")
	default:
	}
	if c.Timers() != 0 {
		t.Fatalf("Timers() = %d after all fired or stopped", c.Timers())
	}
}

func TestClockWaitForTimers(t *testing.T) {
	t.Parallel()
	c := NewClock(time.Time{})
	done := make(chan struct{})
	go func() {
		tm := c.NewTimer(time.Minute)
		<-tm.C()
		close(done)
	}()
	if !c.WaitForTimers(1, 5*time.Second) {
		t.Fatal("goroutine's timer never appeared")
	}
	c.Advance(time.Minute)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("goroutine not woken by Advance")
	}
	if c.WaitForTimers(1, 10*time.Millisecond) {
		t.Fatal("WaitForTimers reported a timer that does not exist")
	}
}
