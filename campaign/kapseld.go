package campaign

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// envKapseld names a prebuilt kapseld binary to drive instead of building
// ./cmd/kapseld (for example one built from another branch).
const envKapseld = "KAPSEL_CAMPAIGN_KAPSELD"

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// kapseldBinary returns the kapseld binary, building cmd/kapseld once per
// test run into a temporary directory (removeBuild removes it).
func kapseldBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(envKapseld); p != "" {
		return p
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "kapsel-campaign-bin-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "kapseld")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool(), "build", "-o", buildPath, "github.com/kapsel-dev/kapsel/cmd/kapseld")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/kapseld: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("campaign: %v", buildErr)
	}
	return buildPath
}

// removeBuild removes the binary kapseldBinary built; TestMain calls it.
func removeBuild() {
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
}

func goTool() string {
	if p := filepath.Join(os.Getenv("GOROOT"), "bin", "go"); os.Getenv("GOROOT") != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// binaryKnows reports whether kapseld's usage mentions the environment
// variable name: how the campaign tells whether a knob it sets is honoured
// (kapseld ignores variables it does not know).
func binaryKnows(t testing.TB, bin, name string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "-h").CombinedOutput()
	return bytes.Contains(out, []byte(name))
}

// node is one kapseld process, started as a subprocess on 127.0.0.1 (port
// chosen by the kernel, read from its "kapseld serving" log line) with its
// JSON log appended to a file across restarts.
type node struct {
	t       testing.TB
	name    string
	bin     string
	env     []string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	addr   string
	starts int
}

// newNode returns a node, not started; env holds its KAPSEL_* settings.
func newNode(t testing.TB, name, bin, dir string, env map[string]string) *node {
	n := &node{t: t, name: name, bin: bin, logPath: filepath.Join(dir, name+".log")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KAPSEL_") {
			n.env = append(n.env, kv)
		}
	}
	for k, v := range env {
		n.env = append(n.env, k+"="+v)
	}
	n.env = append(n.env, "KAPSEL_LISTEN=127.0.0.1:0", "KAPSEL_LOG_FORMAT=json")
	t.Cleanup(n.kill)
	return n
}

// start starts the process and waits until /readyz answers 200.
func (n *node) start() {
	n.t.Helper()
	n.mu.Lock()
	if n.cmd != nil {
		n.mu.Unlock()
		n.t.Fatalf("campaign: %s started twice", n.name)
	}
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		n.mu.Unlock()
		n.t.Fatalf("campaign: %v", err)
	}
	addrCh := make(chan string, 1)
	w := &lineWriter{out: f, line: func(l []byte) {
		var m struct{ Msg, Addr string }
		if json.Unmarshal(l, &m) == nil && m.Msg == "kapseld serving" {
			select {
			case addrCh <- m.Addr:
			default:
			}
		}
	}}
	cmd := exec.Command(n.bin)
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		n.mu.Unlock()
		n.t.Fatalf("campaign: starting %s: %v", n.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(exited)
	}()
	n.cmd, n.exited = cmd, exited
	n.starts++
	n.mu.Unlock()

	select {
	case addr := <-addrCh:
		n.mu.Lock()
		n.addr = addr
		n.mu.Unlock()
	case <-exited:
		n.t.Fatalf("campaign: %s exited at start; its log:\n%s", n.name, tail(n.logPath, 4000))
	case <-time.After(60 * time.Second):
		n.t.Fatalf("campaign: %s did not serve within 60 s; its log:\n%s", n.name, tail(n.logPath, 4000))
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(n.baseURL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("campaign: %s not ready within 60 s: %v", n.name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// baseURL returns http://addr of the running process ("" when stopped).
func (n *node) baseURL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return ""
	}
	return "http://" + n.addr
}

// pid returns the process id, 0 when not running.
func (n *node) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// signal sends sig to the running process.
func (n *node) signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return errors.New(n.name + " is not running")
	}
	return n.cmd.Process.Signal(sig)
}

// kill sends SIGKILL and waits for the process to be gone. Safe when not
// running.
func (n *node) kill() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// lineWriter copies a process's output to a file and hands each complete
// line to line. exec calls Write from one goroutine at a time.
type lineWriter struct {
	out  *os.File
	line func([]byte)
	buf  []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	_, _ = w.out.Write(p)
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 1<<20 { // a line that never ends is not a log line
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

// tail returns the last n bytes of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
