package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/kapsel-dev/kapsel/bench/load"
)

// progress prints a live line while a phase runs: in place on a terminal,
// as a new line every 5 s otherwise.
type progress struct {
	w   io.Writer
	tty bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// watch prints until the returned stop is called.
func (p *progress) watch(label string, gen *load.Run, dest *load.Destination) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		every := time.Second
		if !p.tty {
			every = 5 * time.Second
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		var lastAck, lastDel int64
		for {
			select {
			case <-done:
				if p.tty {
					fmt.Fprint(p.w, "\r\033[K")
				}
				return
			case <-tick.C:
			}
			ack, del := gen.Acked.Load(), dest.Delivered.Load()
			line := fmt.Sprintf("[%s] %4.0fs sent %d, acked %d (%.0f/s), delivered %d (%.0f/s), failed %d",
				label, time.Since(gen.Start).Seconds(), gen.Sent.Load(), ack, float64(ack-lastAck)/every.Seconds(),
				del, float64(del-lastDel)/every.Seconds(), gen.Failed.Load())
			lastAck, lastDel = ack, del
			if p.tty {
				fmt.Fprint(p.w, "\r\033[K"+line)
			} else {
				fmt.Fprintln(p.w, line)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}
