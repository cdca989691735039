package load

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kapsel-dev/kapsel/bench/stats"
)

// Destination is the local receiver of deliveries, on 127.0.0.1. POSTs to
// /ok are answered 204 and counted per request number (read from the body)
// and per webhook-id; POSTs to /fail are answered 500 and only counted.
type Destination struct {
	URL string // http://127.0.0.1:port, without a path

	// Delivered counts deliveries answered 2xx, duplicates included.
	Delivered atomic.Int64
	// Failed counts requests to /fail.
	Failed atomic.Int64
	// Foreign counts 2xx deliveries whose body was not the generator's.
	Foreign atomic.Int64
	// DuplicateIDs counts deliveries whose webhook-id had been seen.
	DuplicateIDs atomic.Int64
	// SendLatency is body timestamp (sent, or due) → received.
	SendLatency *stats.Histogram

	first  []atomic.Int64 // first receipt per request number, unix ns
	copies []atomic.Int32 // receipts per request number

	idMu sync.Mutex
	ids  map[string]struct{}

	srv  *http.Server
	bufs sync.Pool
}

// NewDestination listens on 127.0.0.1:0 and serves until Close. capacity
// bounds the request numbers it records.
func NewDestination(capacity int) (*Destination, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &Destination{
		URL:         "http://" + ln.Addr().String(),
		SendLatency: stats.New(),
		first:       make([]atomic.Int64, capacity),
		copies:      make([]atomic.Int32, capacity),
		ids:         make(map[string]struct{}, capacity),
		bufs:        sync.Pool{New: func() any { b := make([]byte, 0, 2*BodySize); return &b }},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ok", d.ok)
	mux.HandleFunc("POST /fail", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		d.Failed.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	})
	d.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = d.srv.Serve(ln) }()
	return d, nil
}

func (d *Destination) ok(w http.ResponseWriter, r *http.Request) {
	now := time.Now().UnixNano()
	bp := d.bufs.Get().(*[]byte)
	defer d.bufs.Put(bp)
	buf, err := readAll(r.Body, (*bp)[:0])
	*bp = buf
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if id := r.Header.Get("webhook-id"); id != "" {
		d.idMu.Lock()
		_, seen := d.ids[id]
		if !seen {
			d.ids[id] = struct{}{}
		}
		d.idMu.Unlock()
		if seen {
			d.DuplicateIDs.Add(1)
		}
	}
	d.Delivered.Add(1)
	seq, ts, ok := ParseBody(buf)
	if !ok || seq >= uint64(len(d.first)) {
		d.Foreign.Add(1)
	} else if d.copies[seq].Add(1) == 1 {
		d.first[seq].Store(now)
		d.SendLatency.RecordDuration(time.Duration(now - ts))
	}
	w.WriteHeader(http.StatusNoContent)
}

func readAll(r io.Reader, b []byte) ([]byte, error) {
	for range 1 << 16 { // bounded: 64 Ki reads
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
	return b, errors.New("body too long")
}

// FirstAt returns when request n was first received (unix ns), 0 if never.
func (d *Destination) FirstAt(n int) int64 { return d.first[n].Load() }

// Copies returns how many times request n was received.
func (d *Destination) Copies(n int) int32 { return d.copies[n].Load() }

// Close stops the server.
func (d *Destination) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return d.srv.Shutdown(ctx)
}
