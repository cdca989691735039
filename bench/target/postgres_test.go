package target

import (
	"net/url"
	"testing"
	"time"
)

func TestWithoutPoolSettings(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://root@127.0.0.1:5432/postgres?sslmode=disable&pool_max_conns=16": "postgres://root@127.0.0.1:5432/postgres?sslmode=disable",
		"postgres://root@127.0.0.1:5432/postgres?pool_min_conns=2&pool_max_conns=8": "postgres://root@127.0.0.1:5432/postgres",
		"postgres://root@127.0.0.1:5432/postgres?sslmode=disable":                   "postgres://root@127.0.0.1:5432/postgres?sslmode=disable",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := withoutPoolSettings(u); got != want {
			t.Errorf("withoutPoolSettings(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestCPUSince(t *testing.T) {
	t.Parallel()
	before := map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: time.Second}
	now := map[int]time.Duration{1: 3 * time.Second, 2: 2 * time.Second, 4: 500 * time.Millisecond}
	// 1 used 2 s, 2 nothing, 3 ended (not counted), 4 started since (counted whole).
	if got, want := CPUSince(before, now), 2500*time.Millisecond; got != want {
		t.Errorf("CPUSince = %v, want %v", got, want)
	}
}

func TestParsePGBench(t *testing.T) {
	t.Parallel()
	out := []byte(`pgbench (15.10 (Debian 15.10-0+deb12u1))
transaction type: /tmp/insert.sql
number of clients: 64
latency average = 21.528 ms
initial connection time = 80.312 ms
tps = 2972.843111 (without initial connection time)
`)
	r, err := parsePGBench(out, 64, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.TPS != 2972.843111 || r.LatencyMS != 21.528 || r.Clients != 64 || r.DurationS != 10 {
		t.Fatalf("parsed %+v", r)
	}
	if _, err := parsePGBench([]byte("pgbench: error"), 64, time.Second); err == nil {
		t.Fatal("no tps line: want an error")
	}
}
