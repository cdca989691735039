package campaign

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kapsel-dev/kapsel/delivery"
	"github.com/kapsel-dev/kapsel/service"
	"github.com/kapsel-dev/kapsel/store/pgstore"
)

// trap is a listener standing in for what the SSRF guard protects — the
// machine itself, the cloud metadata service — on 127.0.0.1 and ::1 at one
// port: any connection it accepts is a violation of I7.
type trap struct {
	port     int
	accepted atomic.Int64
	lns      []net.Listener
}

func newTrap(t testing.TB) *trap {
	t.Helper()
	tr := &trap{}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr.port = ln.Addr().(*net.TCPAddr).Port
	tr.lns = append(tr.lns, ln)
	if ln6, err := net.Listen("tcp6", fmt.Sprintf("[::1]:%d", tr.port)); err == nil {
		tr.lns = append(tr.lns, ln6)
	} else {
		t.Logf("campaign: no trap on [::1]:%d (%v): IPv6 forms are judged by their attempt records only", tr.port, err)
	}
	for _, l := range tr.lns {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				tr.accepted.Add(1)
				c.Close()
			}
		}()
	}
	t.Cleanup(func() {
		for _, l := range tr.lns {
			l.Close()
		}
	})
	// Control: the trap sees a connection when one is made.
	for _, l := range tr.lns {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatalf("campaign: dialling the trap: %v", err)
		}
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for tr.accepted.Load() < int64(len(tr.lns)) {
		if time.Now().After(deadline) {
			t.Fatalf("campaign: the trap counted %d of %d control connections", tr.accepted.Load(), len(tr.lns))
		}
		time.Sleep(10 * time.Millisecond)
	}
	tr.accepted.Store(0)
	return tr
}

// ssrfForms are destination URLs that all mean the machine itself (the
// trap's port), spelled every way a guard that reads strings could miss.
func ssrfForms(port int) []string {
	var out []string
	for _, h := range []string{
		"2130706433",               // decimal 127.0.0.1
		"0177.0.0.1",               // octal
		"0x7f.0.0.1",               // hex octet
		"0x7f000001",               // hex
		"017700000001",             // octal, whole
		"127.1",                    // short form
		"127.000.000.001",          // zero-padded
		"127.0.0.1.",               // trailing dot
		"[::ffff:127.0.0.1]",       // IPv4-mapped IPv6
		"[::ffff:7f00:1]",          // the same, hex
		"[0:0:0:0:0:ffff:7f00:1]",  // the same, long
		"[64:ff9b::7f00:1]",        // NAT64 of 127.0.0.1
		"[::1]",                    // IPv6 loopback
		"[0:0:0:0:0:0:0:1]",        // the same, long
		"[::127.0.0.1]",            // IPv4-compatible (deprecated)
		"0.0.0.0",                  // unspecified: Linux connects it to the machine
		"[::]",                     // the same, IPv6
		"localhost",                // a name that resolves to loopback (/etc/hosts)
		"LOCALHOST.",               // the same, upper case, rooted
		"[fe80::1%25lo]",           // link-local with a zone
		"[::ffff:169.254.169.254]", // the metadata address, mapped (refused at the API; never sent)
	} {
		out = append(out, fmt.Sprintf("http://%s:%d/hook", h, port))
	}
	for _, h := range hostsLoopbackNames() { // names, judged after resolution
		out = append(out, fmt.Sprintf("http://%s:%d/hook", h, port))
	}
	return append(out,
		"http://169.254.169.254/latest/meta-data/", // refused at the API; deleted unsent if not
		"http://[fd00:ec2::254]/latest/meta-data/", // AWS's IPv6 metadata address
	)
}

// TestSSRFGuard runs kapseld with the SSRF guard on (its default) and asks
// for endpoints at every spelling of the machine's own addresses, a trap
// listening there. Each endpoint is refused by the API with 422 E1007, or
// accepted (a name: the guard judges it at dial time, after DNS) and then
// every attempt to it is recorded E2006 (blocked) or E2003 (the name did
// not resolve) — and the trap never accepts a connection (SPEC I7).
func TestSSRFGuard(t *testing.T) {
	t.Parallel()
	seed := seed(t, 6)
	r := newRig(t, rigConfig{Nodes: 1, Seed: seed, Guard: true, EndpointTimeout: 2 * time.Second})
	tr := newTrap(t)
	if len(hostsLoopbackNames()) == 0 {
		t.Log("campaign: /etc/hosts names no loopback host but localhost: the dial-time guard is probed by TestSSRFFrontDoorResolverAndRedirects only")
	}
	res := &result{Scenario: "SSRF probes, guard on, 1 node (kapseld)"}
	type made struct{ url, id string }
	var accepted []made
	refused := 0
	for _, u := range ssrfForms(tr.port) {
		var ep endpointJSON
		status, err := r.api.do(http.MethodPost, "/v1/endpoints", r.tenant.APIKey, map[string]any{
			"name": "ssrf", "url": u, "source_ids": []string{r.source.ID}, "timeout_ms": 2000,
			"retry_policy": map[string]any{"max_attempts": 2, "initial_interval_ms": 200, "max_interval_ms": 200},
		}, &ep)
		switch {
		case status == http.StatusUnprocessableEntity && strings.Contains(err.Error(), `"E1007"`):
			refused++
		case status == http.StatusCreated:
			if _, err := netip.ParseAddr(strings.Trim(hostOf(u), "[]")); err == nil {
				res.violate("I7: the API accepted %s, a literal it must refuse with 422 E1007", u)
				r.api.do(http.MethodDelete, "/v1/endpoints/"+ep.ID, r.tenant.APIKey, nil, nil)
				continue
			}
			accepted = append(accepted, made{u, ep.ID})
		default:
			res.violate("I7: creating an endpoint at %s answered %d (%v), want 422 E1007 or 201", u, status, err)
		}
	}
	// Events for the accepted ones: the guard must block every attempt.
	sg := newSigner(r.verifierSecret)
	const events = 3
	for i := range events {
		body := fmt.Appendf(nil, `{"ssrf":%d}`, i)
		a := raw(strings.TrimPrefix(r.nodes[0].baseURL(), "http://"), post("/ingest/"+r.source.ID, sg.headers(fmt.Sprintf("ssrf-%d", i), body), body), 10*time.Second)
		if a.Status != http.StatusAccepted {
			t.Fatalf("campaign: ingest answered %s", a)
		}
	}
	codes := map[string]int{}
	for _, m := range accepted {
		var atts []attemptJSON
		deadline := time.Now().Add(30 * time.Second)
		for {
			ds, err := listAll[deliveryJSON](r.api, "/v1/deliveries?endpoint_id="+m.id, r.tenant.APIKey)
			if err != nil {
				t.Fatalf("campaign: %v", err)
			}
			atts = atts[:0]
			for _, d := range ds {
				as, err := listAll[attemptJSON](r.api, "/v1/deliveries/"+d.ID+"/attempts", r.tenant.APIKey)
				if err != nil {
					t.Fatalf("campaign: %v", err)
				}
				atts = append(atts, as...)
			}
			if len(ds) == events && len(atts) >= events || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if len(atts) < events {
			res.violate("I7: %s: %d attempts recorded after 30 s, want at least %d", m.url, len(atts), events)
		}
		for _, a := range atts {
			codes[a.ErrorCode]++
			if a.ErrorCode != "E2006" && a.ErrorCode != "E2003" {
				res.violate("I7: an attempt to %s was recorded %q (status %d, %q), want E2006 or E2003", m.url, a.ErrorCode, a.StatusCode, a.Error)
			}
		}
	}
	if n := tr.accepted.Load(); n > 0 {
		res.violate("I7: the trap on the machine's own addresses accepted %d connection(s)", n)
	}
	res.Faults = fmt.Sprintf("%d URL forms: %d refused 422 E1007, %d accepted (names) and blocked at dial: attempts %v; trap connections %d",
		len(ssrfForms(tr.port)), refused, len(accepted), codes, tr.accepted.Load())
	r.checkSecrets(res, &loader{}, nil)
	report(t, res)
}

// hostOf returns the host of an http URL written by ssrfForms.
func hostOf(u string) string {
	h := strings.TrimPrefix(u, "http://")
	h = h[:strings.IndexByte(h, '/')]
	if i := strings.LastIndexByte(h, ':'); i > 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	return h
}

// hostsLoopbackNames returns the names /etc/hosts maps to a loopback
// address, other than localhost (here: the machine's own names): names the
// system resolver kapseld uses turns into 127.0.0.1 with no DNS server.
func hostsLoopbackNames() []string {
	b, _ := os.ReadFile("/etc/hosts")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.SplitN(line, "#", 2)[0])
		if len(f) < 2 {
			continue
		}
		if a, err := netip.ParseAddr(f[0]); err != nil || !a.IsLoopback() {
			continue
		}
		for _, n := range f[1:] {
			if !strings.EqualFold(n, "localhost") && !strings.HasPrefix(strings.ToLower(n), "localhost.") {
				out = append(out, n)
			}
		}
	}
	return out
}

// TestSSRFFrontDoorResolverAndRedirects runs the whole front door
// (service.Service: the management API, ingest and the dispatcher, on
// pgstore on a private cluster) in this process, because two probes need
// what kapseld cannot be given from outside: a resolver of our own (a name
// that resolves to loopback and to the metadata address — kapseld uses the
// system's, and the machine's /etc/hosts is not ours to edit) and an
// allowed range (a redirecting destination the guard lets through, on
// 127.0.0.2, while the trap stays on 127.0.0.1; kapseld has no setting for
// allowed ranges). With the guard on: names resolving to blocked addresses
// are accepted by the API (it does not resolve) and every attempt is
// recorded E2006; redirects to the metadata address, to the trap and to a
// name resolving to it are recorded E2007 and never followed; the trap
// accepts nothing.
func TestSSRFFrontDoorResolverAndRedirects(t *testing.T) {
	t.Parallel()
	seed(t, 7)
	if _, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Skipf("campaign: 127.0.0.2 is not a local address here (%v)", err)
	}
	tr := newTrap(t)
	dns := newTestDNS(t, map[string]netip.Addr{
		"internal.campaign.test.": netip.MustParseAddr("127.0.0.1"),
		"metadata.campaign.test.": netip.MustParseAddr("169.254.169.254"),
		"mapped.campaign.test.":   netip.MustParseAddr("::ffff:127.0.0.1"),
	})
	// The redirecting destination, allowed on 127.0.0.2.
	redirects := []string{
		"http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		fmt.Sprintf("http://127.0.0.1:%d/", tr.port),
		fmt.Sprintf("http://internal.campaign.test:%d/", tr.port),
	}
	var served atomic.Int64
	rln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	redirector := &httptest.Server{Listener: rln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		i := 0
		fmt.Sscanf(r.URL.Path, "/r/%d", &i)
		http.Redirect(w, r, redirects[i%len(redirects)], []int{302, 307, 308, 301}[i%4])
	}), ReadHeaderTimeout: 5 * time.Second}}
	redirector.Start()
	t.Cleanup(redirector.Close)

	pg := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := pgstore.Open(ctx, pg.url(), &pgstore.Config{})
	if err != nil {
		t.Fatalf("campaign: %v", err)
	}
	t.Cleanup(st.Close)
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("campaign: %v", err)
	}
	logPath := t.TempDir() + "/front-door.log"
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	admin := "kadm_campaign_" + randHex(16)
	svc, err := service.New(st, &service.Config{
		AdminToken:   admin,
		Logger:       slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug})),
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")},
		Delivery:     delivery.Config{Resolver: dns.resolver()},
	})
	if err != nil {
		t.Fatalf("campaign: %v", err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatalf("campaign: %v", err)
	}
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		_ = svc.Stop(sctx)
	})
	front := httptest.NewServer(svc.Handler())
	t.Cleanup(front.Close)

	a := newAPI(t, func() string { return front.URL })
	var tenant tenantJSON
	a.must(http.MethodPost, "/v1/tenants", admin, map[string]any{"name": "ssrf"}, &tenant)
	var src sourceJSON
	a.must(http.MethodPost, "/v1/sources", tenant.APIKey, map[string]any{"name": "ssrf"}, &src)
	type target struct {
		url, want string
		id        string
	}
	targets := []target{
		{url: fmt.Sprintf("http://internal.campaign.test:%d/hook", tr.port), want: "E2006"},
		{url: fmt.Sprintf("http://mapped.campaign.test:%d/hook", tr.port), want: "E2006"},
		{url: "http://metadata.campaign.test/latest/meta-data/", want: "E2006"},
	}
	for i := range redirects {
		targets = append(targets, target{url: fmt.Sprintf("%s/r/%d", redirector.URL, i), want: "E2007"})
	}
	res := &result{Scenario: "SSRF probes, guard on, in-process front door (test resolver, redirects)"}
	for i := range targets {
		var ep endpointJSON
		if err := a.retry(http.MethodPost, "/v1/endpoints", tenant.APIKey, map[string]any{
			"name": "ssrf", "url": targets[i].url, "source_ids": []string{src.ID}, "timeout_ms": 2000,
			"retry_policy": map[string]any{"max_attempts": 2, "initial_interval_ms": 200, "max_interval_ms": 200},
		}, &ep); err != nil {
			res.violate("creating an endpoint at %s: %v", targets[i].url, err)
			continue
		}
		targets[i].id = ep.ID
	}
	var ev struct {
		ID string `json:"id"`
	}
	a.must(http.MethodPost, "/ingest/"+src.ID, "", map[string]any{"ssrf": true}, &ev)
	codes := map[string]int{}
	for _, tg := range targets {
		if tg.id == "" {
			continue
		}
		var atts []attemptJSON
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			var ds page[deliveryJSON]
			a.must(http.MethodGet, "/v1/deliveries?endpoint_id="+tg.id, tenant.APIKey, nil, &ds)
			if len(ds.Data) == 1 && ds.Data[0].Attempts >= 1 {
				atts, err = listAll[attemptJSON](a, "/v1/deliveries/"+ds.Data[0].ID+"/attempts", tenant.APIKey)
				if err != nil {
					t.Fatalf("campaign: %v", err)
				}
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(atts) == 0 {
			res.violate("%s: no attempt recorded in 30 s", tg.url)
		}
		for _, at := range atts {
			codes[at.ErrorCode]++
			if at.ErrorCode != tg.want {
				res.violate("I7: an attempt to %s was recorded %q (status %d, %q), want %s", tg.url, at.ErrorCode, at.StatusCode, at.Error, tg.want)
			}
		}
	}
	if n := tr.accepted.Load(); n > 0 {
		res.violate("I7: the trap accepted %d connection(s)", n)
	}
	if served.Load() == 0 {
		res.violate("the redirecting destination was never reached: the redirect probes measured nothing")
	}
	res.Faults = fmt.Sprintf("%d targets (3 names resolving to blocked addresses, %d redirects); attempts %v; redirector reached %d times; trap connections %d; DNS queries %d",
		len(targets), len(redirects), codes, served.Load(), tr.accepted.Load(), dns.queries.Load())
	// Secrets: the front door's log and the API's error bodies.
	logFile.Sync()
	b, _ := os.ReadFile(logPath)
	for name, s := range map[string]string{"admin token": admin, "tenant API key": tenant.APIKey, "database password": pg.password} {
		if strings.Contains(string(b), s) || strings.Contains(strings.Join(a.errorTexts, "\n"), s) {
			res.violate("I8: the %s appears in the front door's log or an error body", name)
		}
	}
	report(t, res)
}

// testDNS is a DNS server on 127.0.0.1 (UDP) that answers A and AAAA
// queries for its names and NXDOMAIN for the rest: the resolver a test
// hands the dispatcher (delivery.Config.Resolver).
type testDNS struct {
	conn    net.PacketConn
	names   map[string]netip.Addr
	queries atomic.Int64
	wg      sync.WaitGroup
}

func newTestDNS(t testing.TB, names map[string]netip.Addr) *testDNS {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &testDNS{conn: c, names: names}
	d.wg.Add(1)
	go d.serve()
	t.Cleanup(func() { c.Close(); d.wg.Wait() })
	return d
}

// resolver returns a pure-Go resolver that asks only this server.
func (d *testDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "udp4", d.conn.LocalAddr().String())
	}}
}

func (d *testDNS) serve() {
	defer d.wg.Done()
	buf := make([]byte, 512)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if out := d.answer(buf[:n]); out != nil {
			_, _ = d.conn.WriteTo(out, from)
		}
	}
}

// answer builds the reply to one query (RFC 1035 §4): the question echoed,
// one answer record when the name is known with an address of the type
// asked, NXDOMAIN when it is unknown.
func (d *testDNS) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	d.queries.Add(1)
	i := 12
	var labels []string
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	i++ // the root label
	if i+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i : i+2])
	question := q[12 : i+4]
	name := strings.ToLower(strings.Join(labels, ".")) + "."
	addr, known := d.names[name]
	out := make([]byte, 12, 64)
	copy(out, q[:2])                            // id
	binary.BigEndian.PutUint16(out[2:], 0x8180) // response, recursion desired and available
	binary.BigEndian.PutUint16(out[4:], 1)
	if !known {
		out[3] |= 3 // NXDOMAIN
		return append(out, question...)
	}
	var rdata []byte
	switch {
	case qtype == 1 && addr.Is4():
		a := addr.As4()
		rdata = a[:]
	case qtype == 28 && addr.Is6():
		a := addr.As16()
		rdata = a[:]
	}
	out = append(out, question...)
	if rdata == nil {
		return out // no record of that type
	}
	binary.BigEndian.PutUint16(out[6:], 1)
	out = append(out, 0xc0, 12) // the name, by pointer to the question
	out = binary.BigEndian.AppendUint16(out, qtype)
	out = binary.BigEndian.AppendUint16(out, 1) // IN
	out = binary.BigEndian.AppendUint32(out, 60)
	out = binary.BigEndian.AppendUint16(out, uint16(len(rdata)))
	return append(out, rdata...)
}
