package delivery

// Held returns the dispatcher's slot accounting: attempts running, claimed
// deliveries queued, and endpoints holding either.
func (d *Dispatcher) Held() (running, queued, endpoints int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running, d.queuedTotal, len(d.inflight)
}

// WorkersStarted returns how many worker goroutines the dispatcher started.
func (d *Dispatcher) WorkersStarted() int64 { return d.workersStarted.Load() }
