package campaign

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// killRecord is one kill -9 of a node.
type killRecord struct {
	Node string
	// At is when the node was frozen (SIGSTOP), just before SIGKILL: it
	// sent nothing after.
	At time.Time
	// Ports are the local ports of its connections to the destination at
	// that moment; nil when they could not be read.
	Ports map[int]bool
	// Delivering are the deliveries the database had delivering right
	// after the kill, with what was left of their lease.
	Delivering []dbDelivery
}

// dbDelivery is a delivering row read from the database.
type dbDelivery struct {
	EventID, EndpointID string
	LeaseLeft           time.Duration
}

// result is one scenario's row of the campaign table, and what the
// invariant checker found wrong.
type result struct {
	Scenario   string
	Rate       float64 // events acknowledged per second while the load ran
	Faults     string
	Acked      int
	Lost       int
	Duplicates int
	Requests   int // requests the destination read
	Records    int // attempt records
	Cut        int // requests cut by a kill -9 between send and record
	// Recovery is the longest kill → re-attempt time over the deliveries
	// in flight on killed nodes (RecoveryN of them); 0 when none.
	Recovery  time.Duration
	RecoveryN int
	// Recoveries are the kill → re-attempt times of every delivery in
	// flight on a killed node; Recovery is their maximum.
	Recoveries []time.Duration
	Ingest503  int
	Notes      []string
	Violations []string
	// uncapped keeps every violation (a scenario that sorts them itself).
	uncapped bool
}

func (res *result) violate(format string, args ...any) {
	const max = 40
	if res.uncapped {
		res.Violations = append(res.Violations, fmt.Sprintf(format, args...))
		return
	}
	if len(res.Violations) == max {
		res.Violations = append(res.Violations, "… more violations left out")
	}
	if len(res.Violations) < max {
		res.Violations = append(res.Violations, fmt.Sprintf(format, args...))
	}
}

// checkOptions says what a scenario allows.
type checkOptions struct {
	Scenario string
	Faults   string
	Load     *loader
	Kills    []killRecord
	// Quiesce bounds the wait for every delivery to end.
	Quiesce time.Duration
	// Uncapped keeps every violation instead of the first 40.
	Uncapped bool
}

// check waits until the system is quiescent, then asserts SPEC §1 on what
// the API, the database and the destination's log say.
func (r *rig) check(o checkOptions) *result {
	r.t.Helper()
	ls := o.Load.stats()
	res := &result{Scenario: o.Scenario, Faults: o.Faults, Rate: ls.Rate, Acked: ls.Acked,
		Ingest503: ls.Statuses[http.StatusServiceUnavailable], uncapped: o.Uncapped}
	for _, b := range ls.Bad {
		res.violate("ingest: %s", b)
	}
	if ls.NoRetryAfter > 0 {
		res.violate("I1: %d ingest answers 503 without a Retry-After", ls.NoRetryAfter)
	}
	r.waitQuiescent(res, o.Quiesce)

	key := r.tenant.APIKey
	events, err := listAll[eventJSON](r.api, "/v1/events?source_id="+r.source.ID, key)
	if err != nil {
		r.t.Fatalf("campaign: listing events: %v", err)
	}
	deliveries, err := listAll[deliveryJSON](r.api, "/v1/deliveries", key)
	if err != nil {
		r.t.Fatalf("campaign: listing deliveries: %v", err)
	}
	attempts := r.attempts(deliveries)
	reqs := r.dest.requests()
	conns := r.dest.connections()

	epIndex := map[string]string{} // destination path index → endpoint id
	for i, ep := range r.endpoints {
		epIndex[strconv.Itoa(i)] = ep.ID
	}

	// I1, I2, I10: every acknowledged webhook is one stored event with one
	// delivery per endpoint.
	byKey := map[string]eventJSON{}
	byID := map[string]eventJSON{}
	for _, ev := range events {
		if prev, ok := byKey[ev.IdempotencyKey]; ok {
			res.violate("I2: key %s has two events, %s and %s", ev.IdempotencyKey, prev.ID, ev.ID)
		}
		byKey[ev.IdempotencyKey] = ev
		byID[ev.ID] = ev
		if ev.Deliveries.Total != len(r.endpoints) {
			res.violate("I10: event %s has %d deliveries, want %d", ev.ID, ev.Deliveries.Total, len(r.endpoints))
		}
	}
	type pair struct{ event, endpoint string }
	dls := map[pair]deliveryJSON{}
	for _, d := range deliveries {
		p := pair{d.EventID, d.EndpointID}
		if _, ok := dls[p]; ok {
			res.violate("I10: two deliveries of %s to %s", d.EventID, d.EndpointID)
		}
		dls[p] = d
	}
	acked := o.Load.ackedKeys()
	ackedIDs := map[string]bool{}
	for _, id := range acked {
		ackedIDs[id] = true
	}
	for k, id := range acked {
		ev, ok := byID[id]
		if !ok {
			res.Lost += len(r.endpoints)
			res.violate("I1: acknowledged %s (key %s) is not stored", id, k)
			continue
		}
		if ev.IdempotencyKey != k {
			res.violate("I2: acknowledged %s for key %s, stored with key %q", id, k, ev.IdempotencyKey)
		}
		for _, ep := range r.endpoints {
			d, ok := dls[pair{id, ep.ID}]
			switch {
			case !ok:
				res.Lost++
				res.violate("I1: acknowledged %s has no delivery to %s", id, ep.ID)
			case d.Status != "delivered":
				res.Lost++
				res.violate("I4: delivery %s is %s after %d attempts (last error %q)", d.ID, d.Status, d.Attempts, d.LastError)
			}
		}
	}
	for _, d := range deliveries {
		if d.Status != "delivered" && !ackedIDs[d.EventID] { // acknowledged ones are counted above
			res.violate("I3: delivery %s of an event never acknowledged is %s", d.ID, d.Status)
		}
	}

	cut, cutBy := checkI5(res, reqs, attempts, conns, o.Kills, epIndex, r.cfg.EndpointTimeout)
	for _, q := range reqs {
		// I4: duplicates carry the same webhook-id: the event of the key
		// in the body.
		if ev, ok := byKey[q.Key]; !ok || ev.ID != q.WebhookID {
			res.violate("I4: request %d has webhook-id %q, its body is key %q (event %q)", q.Seq, q.WebhookID, q.Key, ev.ID)
		}
	}

	// I4: each delivered delivery was answered 2xx; a second 2xx answer is
	// a duplicate, allowed only when the first was cut by a kill.
	answered := map[pair][]int{}
	for i, q := range reqs {
		if q.Answered2xx {
			p := pair{q.WebhookID, epIndex[q.Endpoint]}
			answered[p] = append(answered[p], i)
		}
	}
	for p, d := range dls {
		if d.Status == "delivered" && len(answered[p]) == 0 {
			res.violate("I4: delivery %s is delivered but the destination never answered it 2xx", d.ID)
		}
	}
	checkI4Duplicates(res, reqs, attempts, epIndex, cut)

	r.checkDatabase(res)
	r.checkSecrets(res, o.Load, reqs)
	if len(res.Violations) > 0 {
		r.dump(reqs, conns, attempts, cut)
	}
	res.Recovery, res.RecoveryN = recovery(res, o.Kills, reqs, conns, cutBy, epIndex, r.cfg.EndpointTimeout)
	if rs := append([]time.Duration(nil), res.Recoveries...); len(rs) > 0 {
		sort.Slice(rs, func(i, j int) bool { return rs[i] < rs[j] })
		res.Notes = append(res.Notes, fmt.Sprintf("recovery after kill -9 over %d deliveries in flight: min %s, median %s, max %s",
			len(rs), rs[0].Round(10*time.Millisecond), rs[len(rs)/2].Round(10*time.Millisecond), rs[len(rs)-1].Round(10*time.Millisecond)))
	}
	return res
}

// checkI5 asserts SPEC I5 exactly: the destination's requests and the
// attempt records are equal as multisets of (event, endpoint, attempt
// number), except for requests cut by a kill -9 between send and record
// (cutByKill), which are counted in res.Cut. It returns which requests were
// cut, and by which kill.
func checkI5(res *result, reqs []request, attempts []attemptJSON, conns map[uint64]connInfo, kills []killRecord,
	epIndex map[string]string, timeout time.Duration) (cut []bool, cutBy map[int]int) {
	type akey struct {
		event, endpoint string
		n               int
	}
	records := map[akey]int{}
	for _, a := range attempts {
		records[akey{a.EventID, a.EndpointID, a.Attempt}]++
		res.Records++
	}
	seen := map[akey][]int{} // indexes into reqs
	for i, q := range reqs {
		res.Requests++
		ep, ok := epIndex[q.Endpoint]
		if !ok {
			res.violate("I5: request %d to an unknown path /e/%s", q.Seq, q.Endpoint)
			continue
		}
		k := akey{q.WebhookID, ep, q.Attempt}
		seen[k] = append(seen[k], i)
	}
	cut = make([]bool, len(reqs))
	cutBy = map[int]int{} // request index → kill index
	for k, idx := range seen {
		extra := len(idx) - records[k]
		if extra < 0 {
			res.violate("I5: %d attempt record(s) of %s → %s #%d with no request", -extra, k.event, k.endpoint, k.n)
		}
		if extra <= 0 {
			continue
		}
		for _, i := range idx {
			if k := cutByKill(reqs[i], conns, kills, timeout); extra > 0 && k >= 0 {
				cut[i] = true
				cutBy[i] = k
				extra--
				res.Cut++
			}
		}
		if extra > 0 {
			hint := ""
			for _, i := range idx {
				if transportReplay(reqs, idx, i) {
					hint = " (looks like net/http sending it again by itself after a broken reused connection: does the dispatcher's request have a GetBody again?)"
				}
			}
			res.violate("I5: %d request(s) of %s → %s #%d without an attempt record, not cut by a kill%s: %s",
				extra, k.event, k.endpoint, k.n, hint, describe(reqs, idx))
		}
	}
	for k, n := range records {
		if _, ok := seen[k]; !ok {
			res.violate("I5: %d attempt record(s) of %s → %s #%d with no request", n, k.event, k.endpoint, k.n)
		}
	}
	return cut, cutBy
}

// transportReplay reports whether request i, one of the requests idx of one
// attempt, looks sent again by net/http: it carried an idempotency header
// and another request of the same attempt followed within 200 ms on
// another connection. The cause was fixed in c607879 (the dispatcher's
// requests have no GetBody, so net/http never resends them); this only
// names the suspect in an I5 violation, it excuses nothing.
func transportReplay(reqs []request, idx []int, i int) bool {
	q := reqs[i]
	if q.Header.Get("Idempotency-Key") == "" && q.Header.Get("X-Idempotency-Key") == "" {
		return false
	}
	for _, j := range idx {
		o := reqs[j]
		if j != i && o.Conn != q.Conn && o.At.After(q.At) && o.At.Sub(q.At) < 200*time.Millisecond {
			return true
		}
	}
	return false
}

// describe lists requests for a violation: when, which connection, how it
// was answered, and the answer before it on the same connection.
func describe(reqs []request, idx []int) string {
	var parts []string
	for _, i := range idx {
		q := reqs[i]
		prev := "-"
		for j := i - 1; j >= 0; j-- {
			if reqs[j].Conn == q.Conn {
				prev = string(reqs[j].Mode)
				break
			}
		}
		parts = append(parts, fmt.Sprintf("[req %d at %s conn %d#%d (previous on it: %s) idempotency-key header %t answered %s]",
			q.Seq, q.At.Format("15:04:05.000"), q.Conn, q.ConnSeq, prev, q.Header.Get("Idempotency-Key") != "", q.Mode))
	}
	return strings.Join(parts, " ")
}

// dump writes the destination's log and the attempt records next to the
// node logs (kept when the test fails), for a post-mortem.
func (r *rig) dump(reqs []request, conns map[uint64]connInfo, attempts []attemptJSON, cut []bool) {
	var b strings.Builder
	for i, q := range reqs {
		c := conns[q.Conn]
		fmt.Fprintf(&b, "%d %s conn=%d#%d port=%d opened=%s closed=%s endpoint=%s webhook-id=%s attempt=%d key=%s mode=%s 2xx=%t cut=%t\n",
			q.Seq, q.At.Format(time.RFC3339Nano), q.Conn, q.ConnSeq, c.RemotePort, c.Opened.Format(time.RFC3339Nano),
			c.Closed.Format(time.RFC3339Nano), q.Endpoint, q.WebhookID, q.Attempt, q.Key, q.Mode, q.Answered2xx, cut[i])
	}
	_ = os.WriteFile(filepath.Join(r.dir, "requests.txt"), []byte(b.String()), 0o600)
	b.Reset()
	for _, a := range attempts {
		fmt.Fprintf(&b, "%s %s %s %s #%d %s status=%d %s %q\n", a.ID, a.DeliveryID, a.EventID, a.EndpointID, a.Attempt,
			a.StartedAt.Format(time.RFC3339Nano), a.StatusCode, a.ErrorCode, a.Error)
	}
	_ = os.WriteFile(filepath.Join(r.dir, "attempts.txt"), []byte(b.String()), 0o600)
}

// waitQuiescent waits, at most timeout, until no delivery is pending or
// delivering and the destination has had no request for a second.
func (r *rig) waitQuiescent(res *result, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	var pending, delivering []deliveryJSON
	slow := false
	for {
		var p, d page[deliveryJSON]
		errP := r.api.retry(http.MethodGet, "/v1/deliveries?status=pending&limit=500", r.tenant.APIKey, nil, &p)
		errD := r.api.retry(http.MethodGet, "/v1/deliveries?status=delivering&limit=500", r.tenant.APIKey, nil, &d)
		pending, delivering = p.Data, d.Data
		if errP == nil && errD == nil && len(pending) == 0 && len(delivering) == 0 &&
			time.Since(r.dest.lastRequestAt()) > time.Second {
			return
		}
		if !slow && time.Since(deadline.Add(-timeout)) > 15*time.Second {
			slow = true
			res.Notes = append(res.Notes, fmt.Sprintf("still not quiescent after 15 s: %d pending (first %s), %d delivering (first %s)",
				len(pending), first(pending), len(delivering), first(delivering)))
		}
		if time.Now().After(deadline) {
			res.violate("I3: after %s, %d deliveries pending and %d delivering (first: %v %v)",
				timeout, len(pending), len(delivering), first(pending), first(delivering))
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func first(ds []deliveryJSON) string {
	if len(ds) == 0 {
		return "-"
	}
	return fmt.Sprintf("%s(%d attempts, %q)", ds[0].ID, ds[0].Attempts, ds[0].LastError)
}

// attempts reads every delivery's attempt records, 8 deliveries at a time.
func (r *rig) attempts(deliveries []deliveryJSON) []attemptJSON {
	r.t.Helper()
	var (
		mu   sync.Mutex
		all  []attemptJSON
		errs []error
		wg   sync.WaitGroup
	)
	work := make(chan string)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				as, err := listAll[attemptJSON](r.api, "/v1/deliveries/"+id+"/attempts", r.tenant.APIKey)
				mu.Lock()
				all = append(all, as...)
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	for _, d := range deliveries {
		work <- d.ID
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		r.t.Fatalf("campaign: reading attempts: %v", errs[0])
	}
	return all
}

// acceptSlack is how late after a kill the destination may accept a
// connection the killed node had already opened (seen: 46 ms under a load
// average of 26).
const acceptSlack = time.Second

// cutByKill returns the index of the kill that can have cut request q
// between its send and its record, or -1. With the killed node's ports
// known: q came on one of its connections, open when it was frozen — so q
// was sent before, even if the destination read it a moment after. Without
// them: q arrived in the attempt timeout before the kill.
func cutByKill(q request, conns map[uint64]connInfo, kills []killRecord, timeout time.Duration) int {
	c := conns[q.Conn]
	for i, k := range kills {
		if k.Ports == nil {
			if q.At.Before(k.At) && k.At.Sub(q.At) <= timeout+2*time.Second {
				return i
			}
			continue
		}
		// Opened is when the destination's Accept returned, which a loaded
		// machine delays behind the kernel's handshake: the port being in
		// the frozen process's socket table is the proof; the time only
		// keeps out a later connection that reused the port.
		if k.Ports[c.RemotePort] && c.Opened.Before(k.At.Add(acceptSlack)) && (c.Closed.IsZero() || !c.Closed.Before(k.At)) {
			return i
		}
	}
	return -1
}

// recovery returns, over the kills, the longest time from a kill to the next
// request of a delivery that was in flight on the killed node, and how many
// such deliveries there were. In flight on the killed node: a request of
// it was cut by the kill (cutBy), or the database had it delivering right
// after the kill and no other node had a request of it under way (sent
// within the attempt timeout before the kill).
func recovery(res *result, kills []killRecord, reqs []request, conns map[uint64]connInfo, cutBy map[int]int, epIndex map[string]string, timeout time.Duration) (time.Duration, int) {
	type pair struct{ event, endpoint string }
	byPair := map[pair][]request{}
	for _, q := range reqs {
		p := pair{q.WebhookID, epIndex[q.Endpoint]}
		byPair[p] = append(byPair[p], q)
	}
	// nextAfter returns the first request of p after t (zero if none).
	nextAfter := func(p pair, t time.Time) time.Time {
		var next time.Time
		for _, q := range byPair[p] {
			if q.At.After(t) && (next.IsZero() || q.At.Before(next)) {
				next = q.At
			}
		}
		return next
	}
	waiting := map[pair]time.Time{} // in flight on an earlier killed node: since when
	var worst time.Duration
	n := 0
	for ki, k := range kills {
		inFlight := map[pair]bool{}
		for i, kk := range cutBy {
			if kk == ki {
				inFlight[pair{reqs[i].WebhookID, epIndex[reqs[i].Endpoint]}] = true
			}
		}
		for _, d := range k.Delivering {
			p := pair{d.EventID, d.EndpointID}
			survivor := false
			for _, q := range byPair[p] {
				victims := cutByKill(q, conns, kills[ki:ki+1], timeout) == 0
				if q.At.Before(k.At) && k.At.Sub(q.At) <= timeout+time.Second && !victims && !cutByThis(q, cutBy, ki) {
					survivor = true
				}
			}
			if since, ok := waiting[p]; ok {
				if next := nextAfter(p, since); next.IsZero() || next.After(k.At) {
					continue // still waiting for an earlier kill's recovery
				}
			}
			if !survivor {
				inFlight[p] = true
			}
		}
		for p := range inFlight {
			waiting[p] = k.At
		}
		var kWorst time.Duration
		for p := range inFlight {
			next := nextAfter(p, k.At)
			if next.IsZero() {
				continue // finished by the killed node's last record, or never retried (I4 says which)
			}
			n++
			kWorst = max(kWorst, next.Sub(k.At))
			res.Recoveries = append(res.Recoveries, next.Sub(k.At))
		}
		res.Notes = append(res.Notes, fmt.Sprintf("kill of %s at %s: %d deliveries in flight, re-attempted within %s",
			k.Node, k.At.Format("15:04:05.000"), len(inFlight), kWorst.Round(10*time.Millisecond)))
		worst = max(worst, kWorst)
	}
	return worst, n
}

// cutByThis reports whether q is one of the requests cut by kill ki
// (cutBy is keyed by request index, which is Seq).
func cutByThis(q request, cutBy map[int]int, ki int) bool {
	k, ok := cutBy[q.Seq]
	return ok && k == ki
}

// checkDatabase reads what the API does not show: no delivery delivering
// past its lease (I3), and as many attempt rows as records listed.
func (r *rig) checkDatabase(res *result) {
	r.withDatabase(res, func(ctx context.Context, conn *pgx.Conn) {
		r.checkLeasesAndRows(ctx, conn, res)
	})
}

// withDatabase runs check on a connection to the rig's cluster, counting a
// failure to connect as a violation: a check that cannot read the database
// must not pass.
func (r *rig) withDatabase(res *result, check func(ctx context.Context, conn *pgx.Conn)) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := r.pg.conn(ctx)
	if err != nil {
		res.violate("database: %v", err)
		return
	}
	defer conn.Close(ctx)
	check(ctx, conn)
}

// checkLeasesAndRows is checkDatabase's reading.
func (r *rig) checkLeasesAndRows(ctx context.Context, conn *pgx.Conn, res *result) {
	var stale, rows int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE status = 'delivering' AND lease_expires_at < now()`).Scan(&stale); err != nil {
		res.violate("database: %v", err)
	}
	if stale > 0 {
		res.violate("I3: %d deliveries delivering past their lease", stale)
	}
	// This tenant's: a scenario may have other tenants delivering elsewhere.
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM attempts WHERE tenant_id = $1`, r.tenant.ID).Scan(&rows); err != nil {
		res.violate("database: %v", err)
	}
	if rows != res.Records {
		res.violate("I5: %d attempt rows in the database, %d listed by the API", rows, res.Records)
	}
}

// deliveringNow reads the deliveries the database has delivering.
func (r *rig) deliveringNow() []dbDelivery {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := r.pg.conn(ctx)
	if err != nil {
		r.t.Logf("campaign: reading delivering deliveries: %v", err)
		return nil
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT event_id, endpoint_id, extract(epoch FROM lease_expires_at - now())
		FROM deliveries WHERE status = 'delivering'`)
	if err != nil {
		r.t.Logf("campaign: reading delivering deliveries: %v", err)
		return nil
	}
	defer rows.Close()
	var out []dbDelivery
	for rows.Next() {
		var d dbDelivery
		var left float64
		if err := rows.Scan(&d.EventID, &d.EndpointID, &left); err != nil {
			r.t.Logf("campaign: %v", err)
			return out
		}
		d.LeaseLeft = time.Duration(left * float64(time.Second))
		out = append(out, d)
	}
	return out
}

// observeLease samples the database for d and returns the longest lease
// left on a delivering row: close to the lease kapseld takes, since rows
// are read moments after their claim.
func (r *rig) observeLease(d time.Duration) time.Duration {
	var longest time.Duration
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, dl := range r.deliveringNow() {
			longest = max(longest, dl.LeaseLeft)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if longest == 0 {
		r.t.Logf("campaign: no delivering row seen in %s; assuming the longest lease kapseld ever took, 150 s", d)
		return 150 * time.Second
	}
	return longest
}

// checkSecrets looks for every secret of the run in the nodes' logs, the
// error bodies the API and ingest answered, and the headers of every
// request the destination received (SPEC I8).
func (r *rig) checkSecrets(res *result, l *loader, reqs []request) {
	type text struct{ where, s string }
	var texts []text
	for _, n := range r.nodes {
		b, err := os.ReadFile(n.logPath)
		if err != nil {
			res.violate("reading %s: %v", n.logPath, err)
		}
		texts = append(texts, text{n.name + " log", string(b)})
	}
	r.api.mu.Lock()
	texts = append(texts, text{"management API error bodies", strings.Join(r.api.errorTexts, "\n")})
	r.api.mu.Unlock()
	texts = append(texts, text{"ingest error bodies", strings.Join(l.errorBodies(), "\n")})
	var hdr strings.Builder
	for _, q := range reqs {
		for k, vs := range q.Header {
			hdr.WriteString(k + ": " + strings.Join(vs, ", ") + "\n")
		}
	}
	texts = append(texts, text{"outbound headers", hdr.String()})
	names := make([]string, 0)
	secrets := r.secrets()
	for name := range secrets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := secrets[name]
		if len(s) < 8 {
			continue
		}
		for _, t := range texts {
			if n := strings.Count(t.s, s); n > 0 {
				res.violate("I8: the %s appears %d time(s) in %s", name, n, t.where)
			}
		}
	}
}

// unreadCodes are the attempt failures that a destination's 2xx can hide:
// the dispatcher never read the status line the destination wrote (I4).
var unreadCodes = map[string]bool{
	"E2001": true, // attempt timed out
	"E2002": true, // connection refused or reset
}

// checkI4Duplicates counts the duplicates after a 2xx answer: one is
// allowed when a kill cut the request answered first (cut), or when the
// dispatcher recorded that attempt as failed in a way that can hide a 2xx
// (unreadCodes); any other is an I4 violation.
func checkI4Duplicates(res *result, reqs []request, attempts []attemptJSON, epIndex map[string]string, cut []bool) {
	type pair struct{ event, endpoint string }
	// A 2xx the dispatcher never read — its attempt timed out while the
	// answer was on its way (E2001), or the connection was reset before
	// the written status line was read (E2002) — is retried, rightly:
	// at-least-once, not a duplicate Kapsel chose. Only those two codes
	// are excused: any other failure recorded for an attempt the
	// destination answered 2xx (E2005 for a 2xx, an internal error while
	// reading or classifying the answer) means the dispatcher received the
	// 2xx and recorded it wrongly, which is a violation.
	type akey struct {
		event, endpoint string
		n               int
	}
	failedRecord := map[akey]string{}
	for _, a := range attempts {
		if unreadCodes[a.ErrorCode] {
			failedRecord[akey{a.EventID, a.EndpointID, a.Attempt}] = a.ErrorCode
		}
	}
	answered := map[pair][]int{}
	for i, q := range reqs {
		if q.Answered2xx {
			p := pair{q.WebhookID, epIndex[q.Endpoint]}
			answered[p] = append(answered[p], i)
		}
	}
	unread := 0
	for p, idx := range answered {
		res.Duplicates += len(idx) - 1
		for _, i := range idx[:len(idx)-1] {
			if cut[i] {
				continue
			}
			if _, failed := failedRecord[akey{p.event, p.endpoint, reqs[i].Attempt}]; failed {
				unread++
				continue
			}
			res.violate("I4: %s → %s answered 2xx at request %d, then sent again, with no kill in between", p.event, p.endpoint, reqs[i].Seq)
		}
	}
	if unread > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("I4: %d duplicates after a 2xx the dispatcher did not read in time (its record says the attempt failed with E2001 or E2002)", unread))
	}
}
