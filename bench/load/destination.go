package load

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kapsel-dev/kapsel/bench/stats"
)

// Destination is the local receiver of deliveries, on 127.0.0.1. POSTs to
// /ok, or /ok/{k} for the endpoint k of a fan-out (0 ≤ k < fanout; /ok is
// endpoint 0), are answered 204 and counted per request number (read from
// the body) and endpoint, and per webhook-id and endpoint; POSTs to /fail
// are answered 500 and only counted.
type Destination struct {
	URL string // http://127.0.0.1:port, without a path

	// Delivered counts deliveries answered 2xx, duplicates included.
	Delivered atomic.Int64
	// Failed counts requests to /fail.
	Failed atomic.Int64
	// Foreign counts 2xx deliveries whose body was not the generator's.
	Foreign atomic.Int64
	// DuplicateIDs counts deliveries whose webhook-id had been seen at the
	// same endpoint (every endpoint of a fan-out gets the event's id).
	DuplicateIDs atomic.Int64
	// SendLatency is body timestamp (sent, or due) → received.
	SendLatency *stats.Histogram

	fanout int
	first  []atomic.Int64 // first receipt per request number × fanout + endpoint, unix ns
	copies []atomic.Int32 // receipts per request number × fanout + endpoint

	idMu sync.Mutex
	ids  map[idAt]struct{}

	srv  *http.Server
	bufs sync.Pool
}

// idAt is a webhook-id received by one endpoint.
type idAt struct {
	id       string
	endpoint int
}

// NewDestination listens on 127.0.0.1:0 and serves until Close. capacity
// bounds the request numbers it records, fanout (at least 1) the
// endpoints each request is delivered to.
func NewDestination(capacity, fanout int) (*Destination, error) {
	if capacity < 0 || fanout < 1 || capacity > (1<<31-1)/fanout {
		return nil, errors.New("load: destination capacity × fanout out of range")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &Destination{
		URL:         "http://" + ln.Addr().String(),
		SendLatency: stats.New(),
		fanout:      fanout,
		first:       make([]atomic.Int64, capacity*fanout),
		copies:      make([]atomic.Int32, capacity*fanout),
		ids:         make(map[idAt]struct{}, capacity*fanout),
		bufs:        sync.Pool{New: func() any { b := make([]byte, 0, 2*BodySize); return &b }},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ok", func(w http.ResponseWriter, r *http.Request) { d.ok(w, r, 0) })
	mux.HandleFunc("POST /ok/{k}", func(w http.ResponseWriter, r *http.Request) {
		k, err := strconv.Atoi(r.PathValue("k"))
		if err != nil || k < 0 || k >= d.fanout {
			_, _ = io.Copy(io.Discard, r.Body)
			d.Foreign.Add(1)
			w.WriteHeader(http.StatusNotFound)
			return
		}
		d.ok(w, r, k)
	})
	mux.HandleFunc("POST /fail", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		d.Failed.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	})
	d.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = d.srv.Serve(ln) }()
	return d, nil
}

// ok records a delivery to endpoint k.
func (d *Destination) ok(w http.ResponseWriter, r *http.Request, k int) {
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
		key := idAt{id, k}
		d.idMu.Lock()
		_, seen := d.ids[key]
		if !seen {
			d.ids[key] = struct{}{}
		}
		d.idMu.Unlock()
		if seen {
			d.DuplicateIDs.Add(1)
		}
	}
	d.Delivered.Add(1)
	seq, ts, ok := ParseBody(buf)
	if !ok || seq >= uint64(len(d.first)/d.fanout) {
		d.Foreign.Add(1)
	} else if i := int(seq)*d.fanout + k; d.copies[i].Add(1) == 1 {
		d.first[i].Store(now)
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

// Fanout returns the number of endpoints each request is delivered to.
func (d *Destination) Fanout() int { return d.fanout }

// FirstAt returns when request n was first received by endpoint k (unix
// ns), 0 if never.
func (d *Destination) FirstAt(n, k int) int64 { return d.first[n*d.fanout+k].Load() }

// Copies returns how many times endpoint k received request n.
func (d *Destination) Copies(n, k int) int32 { return d.copies[n*d.fanout+k].Load() }

// Close stops the server.
func (d *Destination) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return d.srv.Shutdown(ctx)
}
