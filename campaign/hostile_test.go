package campaign

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Expectations of the hostile requests (SPEC §4's table, §6, §8).
var (
	want202       = expectation{202: {""}, 200: {""}}
	wantE1001     = expectation{401: {"E1001"}}
	wantE1002     = expectation{413: {"E1002"}}
	wantE1004     = expectation{400: {"E1004"}}
	wantE1009     = expectation{400: {"E1009"}}
	wantMalformed = expectation{400: {"", "E1009"}} // net/http's own 400, or Kapsel's
	wantE1010     = expectation{401: {"E1010"}}
	wantE1011     = expectation{404: {"E1011"}}
	wantE1003     = expectation{404: {"E1003"}}
	// A body shorter than its Content-Length, then a closed connection:
	// there is nobody left to answer.
	wantNothing = expectation{0: nil, 400: {"", "E1009"}}
)

// TestHostileInput sends a real kapseld what attackers and broken clients
// send — slowloris headers and bodies, 10 MiB + 1 with a lying
// Content-Length, chunked without a length, invalid UTF-8, NUL and CR/LF in
// headers and JSON, deeply nested JSON, huge header counts, path tricks in
// ids, concurrent duplicate idempotency keys, random JSON to every /v1 route
// of service/openapi.yaml — while a well-behaved provider keeps ingesting
// and a well-behaved API client keeps reading. Each hostile request must be
// answered its documented status and code (never a 500); nothing refused
// may be stored (the hostile source holds exactly the events acknowledged;
// the victim tenant exactly the resources created); the checker runs over
// the well-behaved load; and the well-behaved clients must be served.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	p := currentProfile()
	seed := seed(t, 5)
	rng := rand.New(rand.NewSource(seed))
	r := newRig(t, rigConfig{Nodes: 1, Endpoints: 1, Seed: seed, EndpointTimeout: 2 * time.Second,
		Plan: faultPlan{Latency: 20 * time.Millisecond}})
	routes, err := openAPIRoutes()
	if err != nil {
		t.Fatalf("campaign: reading service/openapi.yaml: %v", err)
	}
	base := r.nodes[0].baseURL()
	addr := strings.TrimPrefix(base, "http://")

	// The hostile source: same scheme, no endpoint subscribed, so what it
	// stores is only what the hostile requests got acknowledged.
	hsSecret := newWhsec()
	var hs sourceJSON
	r.api.must(http.MethodPost, "/v1/sources", r.tenant.APIKey, map[string]any{
		"name": "hostile", "verifier": map[string]any{"scheme": "standard-webhooks", "secrets": []string{hsSecret}},
	}, &hs)
	sg := newSigner(hsSecret)
	v := newVictim(t, r)

	// Well-behaved clients, all along.
	l := r.newLoader(p.rate)
	stopLoad := runLoad(l, 30*time.Second)
	defer stopLoad()
	polite := &politeClient{}
	stopPolite := make(chan struct{})
	var politeWG sync.WaitGroup
	politeWG.Add(1)
	go func() {
		defer politeWG.Done()
		polite.run(r.anyNode, "/v1/events?limit=20&source_id="+r.source.ID, r.tenant.APIKey, stopPolite)
	}()
	stopReader := sync.OnceFunc(func() { close(stopPolite); politeWG.Wait() })
	defer stopReader()

	log := &probeLog{keep: r.api.keepError}
	r.addSecret("hostile source secret", hsSecret)
	r.addSecret("victim API key", v.key)
	acked := &ackSet{ids: map[string]bool{}}
	ingest := "/ingest/" + strings.TrimPrefix(hs.IngestURL, "/ingest/")
	t0 := time.Now()

	// Slowloris, in the background while everything else runs.
	var slowWG sync.WaitGroup
	slow := &slowloris{}
	slowWG.Add(2)
	go func() { defer slowWG.Done(); slow.headers(addr, ingest, 20, 10*time.Second+5*time.Second) }()
	bodyWait := 12 * time.Second // short: hold them open, do not wait for the cut
	if p.long {
		bodyWait = 60*time.Second + 5*time.Second // kapseld's ReadTimeout
	}
	go func() { defer slowWG.Done(); slow.bodies(addr, ingest, sg, 10, bodyWait) }()

	// Bodies over the limit, framed every way.
	big := bytes.Repeat([]byte("b"), 10<<20+1)
	log.add("10 MiB + 1, honest Content-Length", raw(addr, post(ingest, sg.headers("big-1", big), big), time.Minute), wantE1002)
	log.add("10 MiB + 1, chunked, no length", raw(addr, post(ingest, sg.headers("big-2", big)+"Transfer-Encoding: chunked\r\n", chunked(big)), time.Minute), wantE1002)
	log.add("10 MiB + 1 behind Content-Length: 100", raw(addr, post(ingest, sg.headers("big-3", big)+"Content-Length: 100\r\n", big), time.Minute), wantE1001)
	log.add("10 MiB + 1 behind Content-Length: 100 and chunked", raw(addr, post(ingest, sg.headers("big-4", big)+"Content-Length: 100\r\nTransfer-Encoding: chunked\r\n", chunked(big)), time.Minute),
		expectation{400: {""}, 413: {"E1002"}})
	short := []byte(`{"short":true}`)
	log.add("Content-Length: 10 MiB + 1, 14 bytes sent, closed", rawHalf(addr, post(ingest, sg.headers("big-5", big)+"Content-Length: 10485761\r\n", short)),
		expectation{0: nil, 413: {"E1002"}, 400: {"", "E1009"}})
	log.add("Content-Length: 1000, 14 bytes sent, closed", rawHalf(addr, post(ingest, sg.headers("big-6", short)+"Content-Length: 1000\r\n", short)), wantNothing)

	// Bytes Kapsel keeps as they are (SPEC §4: the body is opaque).
	for i, body := range [][]byte{[]byte("\xff\xfe\xfd not utf-8 \xc3\x28"), []byte(`{"nul":"` + "\x00" + `","crlf":"` + "\r\n" + `"}`),
		[]byte(`{"escaped":"\u0000\r\n"}`), bytes.Repeat([]byte("["), 100_000), []byte(strings.Repeat(`{"type":`, 50_000) + "1" + strings.Repeat("}", 50_000))} {
		name := fmt.Sprintf("opaque body %d (%d bytes: invalid UTF-8, NUL, CR/LF, deep nesting)", i, len(body))
		a := raw(addr, post(ingest, sg.headers(fmt.Sprintf("opaque-%d", i), body), body), 30*time.Second)
		log.add(name, a, want202)
		if id := acked.add(a); id != "" {
			v.checkBody(log, r, id, body)
		}
	}

	// Headers.
	ok := []byte(`{"ok":1}`)
	hdr := func(name, extra string, want expectation) {
		a := raw(addr, post(ingest, sg.headers("hdr-"+strings.ReplaceAll(name, " ", "-"), ok)+extra, ok), 30*time.Second)
		log.add("header: "+name, a, want)
		acked.add(a)
	}
	hdr("NUL in a value", "X-Nul: a\x00b\r\n", wantMalformed)
	hdr("CR in a value", "X-Cr: a\rb\r\n", wantMalformed)
	hdr("LF in a value (a smuggled header)", "X-Lf: a\nX-Smuggled: 1\r\n", expectation{400: {"", "E1009"}, 202: {""}})
	hdr("invalid UTF-8 idempotency key", "Idempotency-Key: \xff\xfe\r\n", wantE1004)
	hdr("256-byte idempotency key", "Idempotency-Key: "+strings.Repeat("k", 256)+"\r\n", wantE1004)
	hdr("invalid bytes in Content-Type", "Content-Type: text/\xff\r\n", wantE1009)
	hdr("space in a header name", "X Bad: 1\r\n", wantMalformed)
	var many strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&many, "X-H-%d: v\r\n", i)
	}
	hdr("2000 headers (under the 64 KiB header limit)", many.String(), want202)
	many.Reset()
	for i := range 20_000 {
		fmt.Fprintf(&many, "X-H-%d: v\r\n", i)
	}
	hdr("20000 headers", many.String(), expectation{431: {""}})
	hdr("none odd (control: the series' requests are well signed)", "", want202)
	log.add("header: missing signature", raw(addr, post(ingest, "webhook-id: nosig\r\n", ok), 10*time.Second), wantE1001)
	log.add("header: bearer token with NUL", raw(addr, []byte("GET /v1/sources HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer a\x00b\r\nConnection: close\r\n\r\n"), 10*time.Second), wantMalformed)
	log.add("header: no token", raw(addr, []byte("GET /v1/sources HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n"), 10*time.Second), wantE1010)
	log.add("header: wrong token", raw(addr, []byte("GET /v1/sources HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer kap_x\r\nConnection: close\r\n\r\n"), 10*time.Second), wantE1010)

	// Path tricks in ids.
	get := func(path, token string) answer {
		auth := ""
		if token != "" {
			auth = "Authorization: Bearer " + token + "\r\n"
		}
		return raw(addr, []byte("GET "+path+" HTTP/1.1\r\nHost: k\r\n"+auth+"Connection: close\r\n\r\n"), 10*time.Second)
	}
	for _, id := range pathTricks {
		log.add("ingest id "+short80(id), raw(addr, post("/ingest/"+id, sg.headers("trick", ok), ok), 10*time.Second), wantE1003)
		for _, kind := range []string{"sources", "endpoints", "events", "deliveries"} {
			log.add("GET /v1/"+kind+"/"+short80(id), get("/v1/"+kind+"/"+id, r.tenant.APIKey), wantE1011)
		}
	}
	// Another tenant's resources through this tenant's key (I9).
	log.add("foreign source", get("/v1/sources/"+v.source, r.tenant.APIKey), wantE1011)
	log.add("foreign endpoint", get("/v1/endpoints/"+v.endpoint, r.tenant.APIKey), wantE1011)
	log.add("foreign event", get("/v1/events/"+v.event, r.tenant.APIKey), wantE1011)
	log.add("foreign tenant with a tenant key", get("/v1/tenants/"+v.tenant.ID, r.tenant.APIKey), wantE1010)

	// Concurrent duplicate idempotency keys, same body and different
	// bodies: one event per key (I2).
	dupBad, dupIDs := concurrentKeys(addr, ingest, sg, 32)
	for _, b := range dupBad {
		log.bad = append(log.bad, "concurrent keys: "+b)
	}
	log.n += 64
	for _, id := range dupIDs {
		acked.ids[id] = true
	}

	// Random JSON to every /v1 route.
	perRoute := 8
	if p.long {
		perRoute = 60
	}
	v.randomJSON(log, rng, routes, perRoute)
	hostileTime := time.Since(t0)

	slowWG.Wait()
	stopLoad()
	stopReader()

	res := r.check(checkOptions{Scenario: "hostile input on ingest and the API, 1 node", Load: l, Quiesce: time.Minute})
	res.Faults = fmt.Sprintf("%d hostile requests, %d slowloris connections", log.n, slow.count())
	for _, b := range log.bad {
		res.violate("hostile: %s", b)
	}
	for _, b := range slow.problems() {
		res.violate("slowloris: %s", b)
	}
	res.Notes = append(res.Notes, slow.notes()...)
	// Nothing half-written: the hostile source holds exactly what was
	// acknowledged; the victim tenant exactly what was created.
	stored, err := listAll[eventJSON](r.api, "/v1/events?source_id="+hs.ID, r.tenant.APIKey)
	if err != nil {
		t.Fatalf("campaign: %v", err)
	}
	storedIDs := map[string]bool{}
	for _, ev := range stored {
		storedIDs[ev.ID] = true
		if !acked.ids[ev.ID] {
			res.violate("half-written: event %s (key %q) of the hostile source was never acknowledged", ev.ID, ev.IdempotencyKey)
		}
	}
	for id := range acked.ids {
		if !storedIDs[id] {
			res.violate("I1: hostile-source event %s acknowledged but not stored", id)
		}
	}
	for _, b := range v.verify(r) {
		res.violate("half-written: %s", b)
	}
	// Served meanwhile.
	ls := l.stats()
	firstTry := float64(ls.Statuses[http.StatusAccepted]+ls.Statuses[http.StatusOK]) / float64(max(1, ls.Sent))
	okN, failN, p50, p99, worst := polite.summary()
	res.Notes = append(res.Notes,
		fmt.Sprintf("hostile phase %s; well-behaved ingest: %d sent, %.1f %% answered 2xx, %d transport errors", hostileTime.Round(100*time.Millisecond), ls.Sent, 100*firstTry, ls.Transport),
		fmt.Sprintf("well-behaved API reader: %d ok, %d failed, p50 %s, p99 %s, max %s", okN, failN, p50.Round(time.Millisecond), p99.Round(time.Millisecond), worst.Round(time.Millisecond)))
	if firstTry < 0.99 || ls.Transport > 0 {
		res.violate("served meanwhile: well-behaved ingest %.1f %% 2xx, %d transport errors", 100*firstTry, ls.Transport)
	}
	if failN > 0 || okN == 0 || p99 > 2*time.Second {
		res.violate("served meanwhile: well-behaved API reader %d ok, %d failed (%v), p99 %s", okN, failN, polite.failures[:min(3, len(polite.failures))], p99)
	}
	if testing.Verbose() {
		for _, line := range log.lines {
			t.Log(line)
		}
	}
	report(t, res)
}

func short80(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%s… (%d bytes)", s[:40], len(s))
	}
	return s
}

// rawHalf sends data, closes its writing half, and reads what comes back.
func rawHalf(addr string, data []byte) answer {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return answer{Err: err}
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(data); err != nil {
		return answer{Err: err}
	}
	_ = c.(*net.TCPConn).CloseWrite()
	return readAnswer(bufio.NewReader(c), nil)
}

// ackSet is the ids the hostile requests got acknowledged.
type ackSet struct {
	mu  sync.Mutex
	ids map[string]bool
}

// add keeps a's event id when a is a 2xx ingest answer, and returns it.
func (s *ackSet) add(a answer) string {
	if a.Status != http.StatusAccepted && a.Status != http.StatusOK {
		return ""
	}
	var out struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(a.Body, &out) != nil || out.ID == "" {
		return ""
	}
	s.mu.Lock()
	s.ids[out.ID] = true
	s.mu.Unlock()
	return out.ID
}

// concurrentKeys sends one key n times at once with one body, then another
// key n times at once with n different bodies, and returns what is wrong:
// the first must be one 202 and n-1 200 duplicates of the same id; the
// second one 202 and n-1 422 E1005. ids are the events acknowledged.
func concurrentKeys(addr, ingest string, sg signer, n int) (bad, ids []string) {
	for round, sameBody := range []bool{true, false} {
		key := fmt.Sprintf("concurrent-%d-%s", round, randHex(4))
		answers := make([]answer, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := []byte(`{"same":true}`)
				if !sameBody {
					body = fmt.Appendf(nil, `{"i":%d}`, i)
				}
				req := post(ingest, sg.headers(key, body), body)
				<-start
				answers[i] = raw(addr, req, 30*time.Second)
			}()
		}
		close(start)
		wg.Wait()
		idCount := map[string]int{}
		statuses := map[string]int{}
		for _, a := range answers {
			statuses[a.String()]++
			var out struct {
				ID string `json:"id"`
			}
			if a.Status < 300 && json.Unmarshal(a.Body, &out) == nil {
				idCount[out.ID]++
			}
			if a.Status == http.StatusOK && a.Header.Get("Idempotent-Replayed") != "true" {
				bad = append(bad, "a duplicate answered without Idempotent-Replayed: true")
			}
		}
		for id := range idCount {
			ids = append(ids, id)
		}
		want := fmt.Sprintf("one 202, %d × 200 duplicates of its id", n-1)
		if !sameBody {
			want = fmt.Sprintf("one 202, %d × 422 E1005", n-1)
		}
		n202 := 0
		for _, a := range answers {
			if a.Status == http.StatusAccepted {
				n202++
			}
		}
		switch {
		case len(idCount) != 1 || n202 != 1:
			bad = append(bad, fmt.Sprintf("key %s sent %d times at once (same body %t): %d ids, %d × 202, answers %v; want %s", key, n, sameBody, len(idCount), n202, statuses, want))
		case sameBody && idCount[firstKey(idCount)] != n:
			bad = append(bad, fmt.Sprintf("key %s, same body: %v", key, statuses))
		case !sameBody:
			for _, a := range answers {
				if a.Status != http.StatusAccepted && judge(a, expectation{422: {"E1005"}}) != "" {
					bad = append(bad, fmt.Sprintf("key %s, different bodies: %s", key, a))
				}
			}
		}
	}
	return bad, ids
}

func firstKey(m map[string]int) string {
	for k := range m {
		return k
	}
	return ""
}

// slowloris holds connections that send their headers, or their body, one
// byte at a time, and records when the server cuts each.
type slowloris struct {
	mu    sync.Mutex
	n     int
	cuts  []string
	bad   []string
	alive int // connections still open when the wait ended
}

func (s *slowloris) count() int { s.mu.Lock(); defer s.mu.Unlock(); return s.n }
func (s *slowloris) problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bad...)
}
func (s *slowloris) notes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(append([]string(nil), s.cuts...), fmt.Sprintf("slowloris connections still open when their wait ended (bodies, short profile): %d", s.alive))
}

// headers opens n connections that send a header line every 500 ms and
// never end the header block: each must be cut within wait (kapseld's
// ReadHeaderTimeout is 10 s).
func (s *slowloris) headers(addr, path string, n int, wait time.Duration) {
	s.drip(addr, n, wait, true, []byte("POST "+path+" HTTP/1.1\r\nHost: k\r\n"), func(i int) []byte {
		return fmt.Appendf(nil, "X-Slow-%d: 1\r\n", i)
	})
}

// bodies opens n connections with complete headers announcing 1000 bytes,
// then sends the body a byte every 500 ms. In the long profile they must be
// cut within wait (ReadTimeout 60 s); in the short one they are only held.
func (s *slowloris) bodies(addr, path string, sg signer, n int, wait time.Duration) {
	body := bytes.Repeat([]byte("s"), 1000)
	mustCut := wait > 30*time.Second
	s.drip(addr, n, wait, mustCut, post(path, sg.headers("slow-"+randHex(4), body)+"Content-Length: 1000\r\n", nil), nil)
}

// drip is the slowloris loop of one kind.
func (s *slowloris) drip(addr string, n int, wait time.Duration, mustCut bool, head []byte, next func(int) []byte) {
	var wg sync.WaitGroup
	for c := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				s.mu.Lock()
				s.bad = append(s.bad, "dial: "+err.Error())
				s.mu.Unlock()
				return
			}
			defer conn.Close()
			s.mu.Lock()
			s.n++
			s.mu.Unlock()
			t0 := time.Now()
			_, _ = conn.Write(head)
			closed := make(chan string, 1)
			go func() {
				b, err := io.ReadAll(io.LimitReader(conn, 4096))
				closed <- fmt.Sprintf("%v, %d bytes answered %.40q", err, len(b), b)
			}()
			tick := time.NewTicker(500 * time.Millisecond)
			defer tick.Stop()
			deadline := time.After(wait)
			for i := 0; ; i++ {
				select {
				case how := <-closed:
					if c == 0 {
						s.mu.Lock()
						s.cuts = append(s.cuts, fmt.Sprintf("slowloris (%s) cut after %s: %s", kind(next), time.Since(t0).Round(100*time.Millisecond), how))
						s.mu.Unlock()
					}
					return
				case <-deadline:
					s.mu.Lock()
					if mustCut {
						s.bad = append(s.bad, fmt.Sprintf("%s still open after %s", kind(next), wait))
					} else {
						s.alive++
					}
					s.mu.Unlock()
					return
				case <-tick.C:
					b := []byte("s")
					if next != nil {
						b = next(i)
					}
					_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
					_, _ = conn.Write(b)
				}
			}
		}()
	}
	wg.Wait()
}

func kind(next func(int) []byte) string {
	if next != nil {
		return "headers"
	}
	return "body"
}

// victim is a second tenant that the random JSON is thrown at, with a
// source, an endpoint (delivering to a sink of its own), an event and a
// delivery for the routes' ids; it counts what the answers say was created
// and deleted, and verify compares with what the API lists.
type victim struct {
	t        testing.TB
	tenant   tenantJSON
	key      string
	source   string
	endpoint string
	event    string
	delivery string
	sink     *http.Server

	adminToken string
	base       func() string
	r          *rig

	created map[string]map[string]bool // kind → ids answered 201/202
	deleted map[string]map[string]bool
}

func newVictim(t testing.TB, r *rig) *victim {
	v := &victim{t: t, created: map[string]map[string]bool{}, deleted: map[string]map[string]bool{},
		adminToken: r.admin, base: r.anyNode, r: r}
	r.api.must(http.MethodPost, "/v1/tenants", r.admin, map[string]any{"name": "victim"}, &v.tenant)
	v.key = v.tenant.APIKey
	var src sourceJSON
	r.api.must(http.MethodPost, "/v1/sources", v.key, map[string]any{
		"name": "victim", "verifier": map[string]any{"scheme": "none"}}, &src)
	v.source = src.ID
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	v.sink = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = v.sink.Serve(ln) }()
	t.Cleanup(func() { v.sink.Close() })
	var ep endpointJSON
	r.api.must(http.MethodPost, "/v1/endpoints", v.key, map[string]any{
		"name": "victim", "url": "http://" + ln.Addr().String() + "/sink", "source_ids": []string{v.source}}, &ep)
	v.endpoint = ep.ID
	var ev struct {
		ID string `json:"id"`
	}
	r.api.must(http.MethodPost, "/v1/events", v.key, map[string]any{"type": "victim", "payload": map[string]any{"a": 1}}, &ev)
	v.event = ev.ID
	var ds page[deliveryJSON]
	r.api.must(http.MethodGet, "/v1/deliveries?event_id="+ev.ID, v.key, nil, &ds)
	if len(ds.Data) > 0 {
		v.delivery = ds.Data[0].ID
	}
	v.created["tenants"] = map[string]bool{v.tenant.ID: true, r.tenant.ID: true}
	v.created["sources"] = map[string]bool{v.source: true}
	v.created["endpoints"] = map[string]bool{v.endpoint: true}
	v.created["events"] = map[string]bool{v.event: true}
	return v
}

// checkBody reads event id's body back and compares it with body.
func (v *victim) checkBody(log *probeLog, r *rig, id string, body []byte) {
	var ev struct {
		Body         string `json:"body"`
		BodyEncoding string `json:"body_encoding"`
	}
	if err := r.api.retry(http.MethodGet, "/v1/events/"+id+"?include=body", r.tenant.APIKey, nil, &ev); err != nil {
		log.bad = append(log.bad, fmt.Sprintf("reading %s back: %v", id, err))
		return
	}
	got := []byte(ev.Body)
	if ev.BodyEncoding == "base64" {
		got, _ = base64.StdEncoding.DecodeString(ev.Body)
	}
	if !bytes.Equal(got, body) {
		log.bad = append(log.bad, fmt.Sprintf("event %s: body not kept byte for byte (%d bytes stored, %d sent, encoding %q)", id, len(got), len(body), ev.BodyEncoding))
	}
}

// randomJSON sends perRoute random requests to every route, ids filled
// with the victim's own (most of the time) or path tricks.
func (v *victim) randomJSON(log *probeLog, rng *rand.Rand, routes []route, perRoute int) {
	for _, rt := range routes {
		for i := range perRoute {
			id := v.idFor(rt.Path)
			if i%4 == 3 || (rt.Method == http.MethodDelete && strings.HasPrefix(rt.Path, "/v1/tenants/")) {
				id = pathTricks[rng.Intn(len(pathTricks))]
			}
			path := fillPath(rt.Path, id)
			var body []byte
			if rt.Method != http.MethodGet && rt.Method != http.MethodDelete {
				body = randBody(rng, rt)
			}
			if rt.Method == http.MethodGet && rng.Intn(2) == 0 {
				q := url.Values{}
				for _, k := range []string{"limit", "cursor", "status", "source_id", "event_id", "endpoint_id", "type", "include"} {
					if rng.Intn(3) == 0 {
						q.Set(k, hostileStrings[rng.Intn(len(hostileStrings))])
					}
				}
				path += "?" + q.Encode()
			}
			token := v.key
			if rt.Admin {
				token = v.adminToken
			}
			var reqb bytes.Buffer
			fmt.Fprintf(&reqb, "%s %s HTTP/1.1\r\nHost: kapsel\r\nContent-Type: application/json\r\nConnection: close\r\n", rt.Method, path)
			if !rt.NoAuth {
				fmt.Fprintf(&reqb, "Authorization: Bearer %s\r\n", token)
			}
			if body != nil {
				fmt.Fprintf(&reqb, "Content-Length: %d\r\n", len(body))
			}
			reqb.WriteString("\r\n")
			reqb.Write(body)
			a := raw(strings.TrimPrefix(v.base(), "http://"), reqb.Bytes(), 30*time.Second)
			want := expectation{}
			for s := range rt.Statuses {
				switch {
				case s == http.StatusInternalServerError:
				case s >= 400:
					want[s] = []string{"*"}
				default:
					want[s] = []string{""}
				}
			}
			if len(body) > 1<<20 { // answered 413 and closed before it was all sent
				want[0] = nil
			}
			log.add(fmt.Sprintf("random JSON %s (%.60q)", strings.Replace(rt.String(), "{id}", short80(id), 1), body), a, want)
			v.account(rt, id, a)
		}
	}
}

func (v *victim) account(rt route, id string, a answer) {
	kind := strings.Split(strings.TrimPrefix(rt.Path, "/v1/"), "/")[0]
	var out struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	_ = json.Unmarshal(a.Body, &out)
	switch {
	case rt.Method == http.MethodPost && !strings.Contains(rt.Path, "{id}") && (a.Status == 201 || a.Status == 202 || a.Status == 200) && out.ID != "":
		if v.created[kind] == nil {
			v.created[kind] = map[string]bool{}
		}
		v.created[kind][out.ID] = true
	case rt.Method == http.MethodDelete && rt.Path == "/v1/"+kind+"/{id}" && a.Status < 300:
		// Only DELETE /v1/{kind}/{id} removes the resource; DELETE
		// /v1/events/{id}/body and /v1/tenants/{id}/event-bodies erase
		// bodies and leave it listed.
		if v.deleted[kind] == nil {
			v.deleted[kind] = map[string]bool{}
		}
		v.deleted[kind][id] = true
	case strings.HasSuffix(rt.Path, "rotate-api-key") && a.Status == 200 && out.APIKey != "":
		v.key = out.APIKey
		v.r.addSecret("victim API key "+randHex(2), out.APIKey)
	}
}

// verify lists the victim's resources and compares them with what the
// answers said: anything more was half-written by a refused request.
func (v *victim) verify(r *rig) []string {
	var bad []string
	for _, kind := range []string{"sources", "endpoints", "events"} {
		items, err := listAll[struct {
			ID string `json:"id"`
		}](r.api, "/v1/"+kind, v.key)
		if err != nil {
			bad = append(bad, fmt.Sprintf("listing the victim's %s: %v", kind, err))
			continue
		}
		bad = append(bad, v.compare(kind, items)...)
	}
	tenants, err := listAll[struct {
		ID string `json:"id"`
	}](r.api, "/v1/tenants", r.admin)
	if err != nil {
		return append(bad, fmt.Sprintf("listing tenants: %v", err))
	}
	return append(bad, v.compare("tenants", tenants)...)
}

func (v *victim) compare(kind string, items []struct {
	ID string `json:"id"`
}) []string {
	var bad []string
	listed := map[string]bool{}
	for _, it := range items {
		listed[it.ID] = true
		if !v.created[kind][it.ID] {
			bad = append(bad, fmt.Sprintf("%s %s is listed, but no answer created it", kind, it.ID))
		}
	}
	for id := range v.created[kind] {
		if !listed[id] && !v.deleted[kind][id] {
			bad = append(bad, fmt.Sprintf("%s %s was created (2xx) but is not listed", kind, id))
		}
		if listed[id] && v.deleted[kind][id] {
			bad = append(bad, fmt.Sprintf("%s %s was deleted (2xx) but is still listed", kind, id))
		}
	}
	return bad
}

// idFor returns the victim's own id of the kind path names.
func (v *victim) idFor(path string) string {
	switch {
	case strings.HasPrefix(path, "/v1/tenants/"):
		return v.tenant.ID
	case strings.HasPrefix(path, "/v1/sources/"):
		return v.source
	case strings.HasPrefix(path, "/v1/endpoints/"):
		return v.endpoint
	case strings.HasPrefix(path, "/v1/events/"):
		return v.event
	case strings.HasPrefix(path, "/v1/deliveries/"):
		return v.delivery
	}
	return ""
}
