// Package stats records latencies in a fixed-size log-linear histogram that
// many goroutines update without locks, and reads percentiles and a CDF
// from it.
//
// A value below 128 µs has a bucket of its own; above, each power of two is
// cut into 64 buckets, so a reported percentile is at most 1/64 (1.6 %)
// above the true one and never above the recorded maximum.
package stats

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	subBits   = 6 // 64 buckets per power of two
	subCount  = 1 << subBits
	linearMax = 2 * subCount // values below are exact
	maxBits   = 40
	// MaxValue is the largest value recorded (about 12.7 days in µs);
	// larger values are clamped to it.
	MaxValue   = uint64(1)<<maxBits - 1
	maxBuckets = (maxBits - subBits + 1) * subCount // bucket(MaxValue) + 1
)

// Histogram counts values in microseconds. The zero value is not usable:
// call New. All methods are safe for concurrent use.
type Histogram struct {
	counts [maxBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64
	max    atomic.Uint64
}

// New returns an empty histogram.
func New() *Histogram { return new(Histogram) }

// bucket returns the index of v's bucket.
func bucket(v uint64) int {
	if v < linearMax {
		return int(v)
	}
	e := bits.Len64(v) - (subBits + 1) // v>>e is in [64, 128)
	return e*subCount + int(v>>e)
}

// upper returns the largest value that falls in bucket i.
func upper(i int) uint64 {
	if i < linearMax {
		return uint64(i)
	}
	e := i/subCount - 1
	m := uint64(i - e*subCount)
	return (m+1)<<e - 1
}

// Record adds one value, in microseconds; values above MaxValue count as
// MaxValue.
func (h *Histogram) Record(us uint64) {
	us = min(us, MaxValue)
	h.counts[bucket(us)].Add(1)
	h.n.Add(1)
	h.sum.Add(us)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// RecordDuration adds d rounded down to the microsecond; a negative d
// counts as 0.
func (h *Histogram) RecordDuration(d time.Duration) {
	h.Record(uint64(max(d, 0) / time.Microsecond))
}

// Count returns how many values were recorded.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Max returns the largest value recorded, in microseconds.
func (h *Histogram) Max() uint64 { return h.max.Load() }

// Mean returns the mean of the values recorded, in microseconds; 0 when
// empty.
func (h *Histogram) Mean() float64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return float64(h.sum.Load()) / float64(n)
}

// Quantile returns the value at or below which a fraction q of the values
// lie (q in [0, 1]), in microseconds: the upper bound of the bucket that
// holds the ⌈q·n⌉-th smallest value, capped at the maximum. 0 when empty.
func (h *Histogram) Quantile(q float64) uint64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	if rank >= n {
		return h.max.Load()
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(upper(i), h.max.Load())
		}
	}
	return h.max.Load()
}

// CDFPoint is one step of a cumulative distribution: a fraction of the
// values are at or below Value (µs).
type CDFPoint struct {
	Value    uint64
	Fraction float64
}

// CDF returns one point per non-empty bucket, in increasing order.
func (h *Histogram) CDF() []CDFPoint {
	n := h.n.Load()
	if n == 0 {
		return nil
	}
	var out []CDFPoint
	var seen uint64
	for i := range h.counts {
		c := h.counts[i].Load()
		if c == 0 {
			continue
		}
		seen += c
		out = append(out, CDFPoint{Value: min(upper(i), h.max.Load()), Fraction: float64(seen) / float64(n)})
	}
	return out
}

// Summary is a histogram's percentiles in milliseconds, as reports show them.
type Summary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// Summarize returns h's count, mean, p50, p90, p99 and max.
func (h *Histogram) Summarize() Summary {
	ms := func(us uint64) float64 { return float64(us) / 1000 }
	return Summary{
		Count: h.Count(), Mean: h.Mean() / 1000,
		P50: ms(h.Quantile(0.50)), P90: ms(h.Quantile(0.90)), P99: ms(h.Quantile(0.99)), Max: ms(h.Max()),
	}
}
