package campaign

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// codeStatus is the status of each of Kapsel's request and server error
// codes (SPEC §8; the ErrorCode table of service/openapi.yaml): a problem
// answer whose code and status disagree is a violation.
var codeStatus = map[string]int{
	"E1001": 401, "E1002": 413, "E1003": 404, "E1004": 400, "E1005": 422, "E1006": 429,
	"E1007": 422, "E1008": 422, "E1009": 400, "E1010": 401, "E1011": 404,
	"E3001": 503, "E3002": 500, "E3003": 503, "E3004": 503,
}

// answer is one hostile request's outcome.
type answer struct {
	Status  int
	Code    string // the problem's code; "" when the body is not a problem
	Problem bool   // Content-Type application/problem+json
	Body    []byte
	Header  http.Header
	Err     error // no answer could be read
}

func (a answer) String() string {
	if a.Err != nil {
		return "no answer (" + a.Err.Error() + ")"
	}
	if a.Code != "" {
		return fmt.Sprintf("%d %s", a.Status, a.Code)
	}
	return fmt.Sprintf("%d %.80q", a.Status, a.Body)
}

// readAnswer reads one HTTP answer from br (at most 1 MiB of body) and
// decodes a problem body.
func readAnswer(br *bufio.Reader, req *http.Request) answer {
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return answer{Err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	a := answer{Status: resp.StatusCode, Body: b, Header: resp.Header}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		a.Problem = true
		var p struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
		}
		if json.Unmarshal(b, &p) == nil {
			a.Code = p.Code
			if p.Status != resp.StatusCode {
				a.Code = fmt.Sprintf("%s (problem status %d ≠ %d)", p.Code, p.Status, resp.StatusCode)
			}
		}
	}
	return a
}

// raw sends bytes as they are to addr (host:port) and reads one answer,
// the whole exchange bounded by timeout. The bytes may be anything: that is
// the point.
func raw(addr string, data []byte, timeout time.Duration) answer {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return answer{Err: err}
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	// Write and read at once: the server may answer (413, 400) and close
	// before it has read everything.
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		werr <- err
	}()
	a := readAnswer(bufio.NewReader(c), nil)
	c.Close()
	<-werr
	return a
}

// expectation is what a hostile request may be answered: a status and
// the codes allowed with it. Code "" allows net/http's own plain-text
// answer (a request so malformed that it never reaches Kapsel's handlers:
// invalid bytes in a header line, headers over the limit) or, for a 2xx,
// Kapsel's JSON; code "*" a problem with any of the status's codes.
type expectation map[int][]string

// judge returns what is wrong with a, or "" when it is one of want.
func judge(a answer, want expectation) string {
	if a.Err != nil {
		if _, ok := want[0]; ok {
			return ""
		}
		return "no answer: " + a.Err.Error()
	}
	if a.Status >= 500 && a.Status != http.StatusServiceUnavailable {
		return fmt.Sprintf("answered %s", a)
	}
	codes, ok := want[a.Status]
	if !a.Problem && (a.Status == http.StatusBadRequest || a.Status == http.StatusRequestHeaderFieldsTooLarge) {
		// net/http's own answer to a request line or header block it cannot
		// parse (an invalid escape, a line over MaxHeaderBytes): the request
		// never reached Kapsel.
		return ""
	}
	if canonicalRedirect(a) {
		return ""
	}
	if !ok {
		return fmt.Sprintf("answered %s, want one of %s", a, want)
	}
	if a.Status >= 400 && a.Problem {
		if s, ok := codeStatus[a.Code]; !ok || s != a.Status {
			return fmt.Sprintf("answered %d with code %q, which SPEC §8 does not give that status", a.Status, a.Code)
		}
	}
	for _, c := range codes {
		if (c == "*" && a.Problem) || c == a.Code || (c == "" && !a.Problem) {
			return ""
		}
	}
	return fmt.Sprintf("answered %s, want one of %s", a, want)
}

func (e expectation) String() string {
	var parts []string
	for s, cs := range e {
		if s == 0 {
			parts = append(parts, "no answer")
			continue
		}
		for _, c := range cs {
			if c == "" {
				c = "net/http plain text"
			}
			parts = append(parts, fmt.Sprintf("%d %s", s, c))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// probeLog collects hostile requests and their verdicts.
type probeLog struct {
	keep  func(string) // keeps error bodies for the secret scan
	mu    sync.Mutex
	n     int
	bad   []string
	lines []string
}

func (p *probeLog) add(name string, a answer, want expectation) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if a.Status >= 300 && p.keep != nil {
		p.keep(string(a.Body)) // searched for secrets (SPEC I8)
	}
	verdict := judge(a, want)
	p.lines = append(p.lines, fmt.Sprintf("%s: %s", name, a))
	if verdict != "" {
		p.bad = append(p.bad, name+": "+verdict)
	}
}

// signer signs Standard Webhooks requests for one source.
type signer struct {
	key []byte
}

func newSigner(whsec string) signer {
	k, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(whsec, "whsec_"))
	return signer{key: k}
}

// headers returns the Standard Webhooks headers of body under id, as
// header lines.
func (s signer) headers(id string, body []byte) string {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, s.key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	return fmt.Sprintf("webhook-id: %s\r\nwebhook-timestamp: %s\r\nwebhook-signature: v1,%s\r\n",
		id, ts, base64.StdEncoding.EncodeToString(mac.Sum(nil)))
}

// post builds a raw POST of body to path with the extra header lines,
// Content-Length set unless the extra lines set a framing of their own.
func post(path, extra string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: kapsel\r\nConnection: close\r\n%s", path, extra)
	if !strings.Contains(strings.ToLower(extra), "content-type:") {
		b.WriteString("Content-Type: application/json\r\n")
	}
	if !strings.Contains(strings.ToLower(extra), "content-length:") && !strings.Contains(strings.ToLower(extra), "transfer-encoding:") {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// chunked encodes body in 64 KiB chunks.
func chunked(body []byte) []byte {
	var b bytes.Buffer
	for len(body) > 0 {
		n := min(len(body), 64<<10)
		fmt.Fprintf(&b, "%x\r\n", n)
		b.Write(body[:n])
		b.WriteString("\r\n")
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.Bytes()
}

// politeClient is a well-behaved management API client that keeps reading
// while the hostile requests run: how well it is served is the measure of
// "others keep being served".
type politeClient struct {
	mu        sync.Mutex
	ok, fail  int
	latencies []time.Duration
	failures  []string
}

// run GETs path every 50 ms until stop is closed.
func (p *politeClient) run(base func() string, path, token string, stop <-chan struct{}) {
	client := &http.Client{Timeout: 10 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		req, _ := http.NewRequest(http.MethodGet, base()+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		t0 := time.Now()
		resp, err := client.Do(req)
		d := time.Since(t0)
		p.mu.Lock()
		switch {
		case err != nil:
			p.fail++
			p.failures = append(p.failures, err.Error())
		case resp.StatusCode != http.StatusOK:
			p.fail++
			p.failures = append(p.failures, resp.Status)
		default:
			p.ok++
			p.latencies = append(p.latencies, d)
		}
		p.mu.Unlock()
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}

// summary returns successes, failures and the latency quantiles.
func (p *politeClient) summary() (ok, fail int, p50, p99, worst time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ls := append([]time.Duration(nil), p.latencies...)
	sort.Slice(ls, func(i, j int) bool { return ls[i] < ls[j] })
	if len(ls) > 0 {
		p50, p99, worst = ls[len(ls)/2], ls[len(ls)*99/100], ls[len(ls)-1]
	}
	return p.ok, p.fail, p50, p99, worst
}

// canonicalRedirect reports whether a is Go's ServeMux redirecting a path
// with "..", "." or empty segments to its cleaned form: 307 (301 for GET in
// older Go) with a Location that is a path on the same server, never
// another host. kapseld answers it before any of Kapsel's handlers runs;
// docs/guarantees.md ("Hostile input") records the decision to keep it.
func canonicalRedirect(a answer) bool {
	if a.Status != http.StatusTemporaryRedirect && a.Status != http.StatusMovedPermanently && a.Status != http.StatusPermanentRedirect {
		return false
	}
	loc, _, _ := strings.Cut(a.Header.Get("Location"), "?")
	return strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") && !strings.Contains(loc, "..")
}
