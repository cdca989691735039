package stats

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	t.Parallel()
	if last := bucket(MaxValue); last != maxBuckets-1 {
		t.Fatalf("bucket(MaxValue) = %d, want the last of %d buckets", last, maxBuckets)
	}
	tests := []struct {
		v     uint64
		upper uint64
	}{
		{0, 0}, {1, 1}, {127, 127},
		{128, 129}, {129, 129}, {130, 131}, {255, 255},
		{256, 259}, {1000, 1007}, {1 << 20, 1<<20 + 1<<14 - 1},
		{MaxValue, MaxValue},
	}
	for _, tt := range tests {
		i := bucket(tt.v)
		if i >= maxBuckets {
			t.Fatalf("bucket(%d) = %d, beyond %d buckets", tt.v, i, maxBuckets)
		}
		if got := upper(i); got != tt.upper {
			t.Errorf("upper(bucket(%d)) = %d, want %d", tt.v, got, tt.upper)
		}
		if upper(i) < tt.v {
			t.Errorf("value %d above its bucket's upper bound %d", tt.v, upper(i))
		}
	}
}

func TestBucketsAreMonotonicAndTight(t *testing.T) {
	t.Parallel()
	prev := -1
	for v := uint64(0); v < 1<<22; v += 1 + v/500 {
		i := bucket(v)
		if i < prev {
			t.Fatalf("bucket(%d) = %d < bucket of a smaller value %d", v, i, prev)
		}
		prev = i
		if u := upper(i); float64(u-v) > float64(v)/64+1 {
			t.Fatalf("value %d reported as %d: more than 1/64 above", v, u)
		}
	}
}

func TestQuantile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values []uint64
		q      float64
		want   uint64
	}{
		{"empty", nil, 0.5, 0},
		{"one value", []uint64{42}, 0.5, 42},
		{"one value, max", []uint64{42}, 1, 42},
		{"p50 of 1..100", seq(1, 100), 0.5, 50},
		{"p90 of 1..100", seq(1, 100), 0.9, 90},
		{"p99 of 1..100", seq(1, 100), 0.99, 99},
		{"p100 of 1..100", seq(1, 100), 1, 100},
		{"p0 is the smallest", seq(5, 100), 0, 5},
		{"capped at max", []uint64{1000, 1001}, 0.99, 1001},
		{"log bucket upper bound", []uint64{1000, 1000, 1000, 5000}, 0.5, 1007},
		{"tail", append(slices.Repeat([]uint64{1}, 99), 1_000_000), 0.99, 1},
		{"tail max", append(slices.Repeat([]uint64{1}, 99), 1_000_000), 0.999, 1_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := New()
			for _, v := range tt.values {
				h.Record(v)
			}
			if got := h.Quantile(tt.q); got != tt.want {
				t.Fatalf("Quantile(%v) = %d, want %d", tt.q, got, tt.want)
			}
		})
	}
}

// TestQuantileAgainstSort compares with exact percentiles of a skewed sample.
func TestQuantileAgainstSort(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	h := New()
	vals := make([]uint64, 100_000)
	for i := range vals {
		vals[i] = uint64(r.ExpFloat64() * 5000)
		h.Record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		if got < exact || float64(got) > float64(exact)*(1+1.0/64)+1 {
			t.Errorf("Quantile(%v) = %d, exact %d: outside [exact, exact·(1+1/64)]", q, got, exact)
		}
	}
}

func TestRecordDurationAndSummary(t *testing.T) {
	t.Parallel()
	h := New()
	h.RecordDuration(-time.Second) // counts as 0
	h.RecordDuration(2 * time.Millisecond)
	h.RecordDuration(4 * time.Millisecond)
	h.Record(MaxValue + 10) // clamped
	s := h.Summarize()
	if s.Count != 4 {
		t.Fatalf("count %d, want 4", s.Count)
	}
	if s.Max != float64(MaxValue)/1000 {
		t.Fatalf("max %v ms, want the clamp %v", s.Max, float64(MaxValue)/1000)
	}
	if s.P50 < 1.99 || s.P50 > 2.04 {
		t.Fatalf("p50 %v ms, want ~2", s.P50)
	}
}

func TestCDF(t *testing.T) {
	t.Parallel()
	h := New()
	if h.CDF() != nil {
		t.Fatal("CDF of an empty histogram is not empty")
	}
	for _, v := range []uint64{10, 10, 20, 30} {
		h.Record(v)
	}
	want := []CDFPoint{{10, 0.5}, {20, 0.75}, {30, 1}}
	if got := h.CDF(); !slices.Equal(got, want) {
		t.Fatalf("CDF = %v, want %v", got, want)
	}
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}
