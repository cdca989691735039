package ingest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kapsel-dev/kapsel"
)

// Item states: an item waits in the queue until a flush takes it, or until
// its caller gives up first. Whoever moves it out of itemQueued owns it.
const (
	itemQueued int32 = iota
	itemTaken
	itemAbandoned
)

// item is one event waiting for its commit.
type item struct {
	row   *kapsel.EventInsertParams
	state atomic.Int32
	done  chan outcome // buffered: the flush never blocks on a caller
}

// batcher group-commits: callers queue their rows; one loop gathers them
// into batches and hands each batch to a flush goroutine, at most maxFlushes
// at a time. A batch goes at once when no flush is running (no added latency
// at low load); otherwise it waits up to wait for more rows; and while every
// flush slot is busy it keeps filling up, so that batches grow with load and
// one commit's fsync does not hold up everything.
type batcher struct {
	commit     func(ctx context.Context, rows []*kapsel.EventInsertParams) []outcome
	size       int
	bytes      int64
	wait       time.Duration
	queue      chan *item
	slots      chan struct{} // one token per running flush
	stop       chan struct{} // closed by close()
	done       chan struct{} // closed when the loop has flushed everything
	flushes    sync.WaitGroup
	inFlight   atomic.Int32
	waiting    atomic.Int64 // rows queued or gathered, not yet taken by a flush
	closeMu    sync.RWMutex
	closed     bool
	unavailErr func() error // the answer when the queue is full
	closedErr  func() error // the answer once closed
}

func newBatcher(cfg *Config, commit func(context.Context, []*kapsel.EventInsertParams) []outcome, unavail, closed func() error) *batcher {
	return &batcher{
		commit:     commit,
		size:       cfg.BatchSize,
		bytes:      cfg.BatchBytes,
		wait:       cfg.BatchWait,
		queue:      make(chan *item, cfg.QueueSize),
		slots:      make(chan struct{}, cfg.MaxFlushes),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		unavailErr: unavail,
		closedErr:  closed,
	}
}

// submit queues row and waits for its outcome. When ctx ends before a flush
// took the row, the row is abandoned (never committed) and the answer is
// 503; once taken, the answer waits for the commit, which CommitTimeout
// bounds.
func (b *batcher) submit(ctx context.Context, row *kapsel.EventInsertParams) outcome {
	it := &item{row: row, done: make(chan outcome, 1)}
	b.closeMu.RLock()
	if b.closed {
		b.closeMu.RUnlock()
		return outcome{err: b.closedErr()}
	}
	select {
	case b.queue <- it:
		b.waiting.Add(1)
	default:
		b.closeMu.RUnlock()
		return outcome{err: b.unavailErr()}
	}
	b.closeMu.RUnlock()

	select {
	case o := <-it.done:
		return o
	case <-ctx.Done():
		if it.state.CompareAndSwap(itemQueued, itemAbandoned) {
			return outcome{err: &kapsel.Error{Code: kapsel.CodeStorageUnavailable, Detail: "request ended before its commit", Err: ctx.Err()}}
		}
		return <-it.done
	}
}

// run is the gathering loop. It returns after close() once everything queued
// was flushed and every flush finished.
func (b *batcher) run() {
	defer close(b.done)
	var batch []*item
	var batchBytes int64
	stopping := false
	add := func(it *item) {
		batch = append(batch, it)
		batchBytes += int64(len(it.row.Body))
	}
	full := func() bool { return len(batch) >= b.size || batchBytes >= b.bytes }
	for {
		// 1. The first row of a batch.
		if len(batch) == 0 {
			if stopping {
				select {
				case it := <-b.queue:
					add(it)
				default:
					b.flushes.Wait()
					return
				}
			} else {
				select {
				case it := <-b.queue:
					add(it)
				case <-b.stop:
					stopping = true
					continue
				}
			}
		}
		// 2. Whatever is already queued.
		b.drain(add, full)
		// 3. Under load, a short wait for more.
		if !full() && !stopping && b.wait > 0 && b.inFlight.Load() > 0 {
			b.gather(add, full)
		}
		// 4. A flush slot; while all are busy, keep filling the batch, taking
		// what is queued before a slot that frees up.
		for {
			b.drain(add, full)
			queue := b.queue
			if full() {
				queue = nil
			}
			select {
			case b.slots <- struct{}{}:
			case it := <-queue:
				add(it)
				continue
			}
			break
		}
		b.inFlight.Add(1)
		b.flushes.Add(1)
		go b.flush(batch)
		batch, batchBytes = nil, 0
	}
}

// drain adds what is queued, without waiting, until the batch is full.
func (b *batcher) drain(add func(*item), full func() bool) {
	for !full() {
		select {
		case it := <-b.queue:
			add(it)
		default:
			return
		}
	}
}

// gather waits up to b.wait for more rows until the batch is full.
func (b *batcher) gather(add func(*item), full func() bool) {
	t := time.NewTimer(b.wait)
	defer t.Stop()
	for !full() {
		select {
		case it := <-b.queue:
			add(it)
		case <-t.C:
			return
		case <-b.stop:
			return
		}
	}
}

// flush commits the batch's live rows and answers each caller.
func (b *batcher) flush(batch []*item) {
	defer func() {
		b.inFlight.Add(-1)
		<-b.slots
		b.flushes.Done()
	}()
	b.waiting.Add(-int64(len(batch)))
	live := batch[:0]
	for _, it := range batch {
		if it.state.CompareAndSwap(itemQueued, itemTaken) {
			live = append(live, it)
		}
	}
	if len(live) == 0 {
		return
	}
	rows := make([]*kapsel.EventInsertParams, len(live))
	for i, it := range live {
		rows[i] = it.row
	}
	for i, o := range b.commit(context.Background(), rows) {
		live[i].done <- o
	}
}

// close stops accepting rows, flushes what is queued and waits until every
// flush finished or ctx ends. Closing twice is safe.
func (b *batcher) close(ctx context.Context) error {
	b.closeMu.Lock()
	if !b.closed {
		b.closed = true
		close(b.stop)
	}
	b.closeMu.Unlock()
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
