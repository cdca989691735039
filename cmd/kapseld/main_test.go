package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary act as kapseld itself (KAPSELD_RUN_MAIN=1),
// so the signal handling of main() is tested on a real process without
// building a separate binary.
func TestMain(m *testing.M) {
	if os.Getenv("KAPSELD_RUN_MAIN") == "1" {
		os.Args = []string{"kapseld", "serve"}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSignals starts kapseld as a process and stops it with SIGTERM and
// SIGINT: each time it shuts down cleanly and exits 0.
func TestSignals(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "KAPSELD_RUN_MAIN=1", "KAPSEL_LISTEN=127.0.0.1:0",
				"KAPSEL_DATA_DIR="+t.TempDir(), "KAPSEL_ADMIN_TOKEN=adm")
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill() }() // a no-op after a clean exit

			lines := make(chan string, 100)
			go func() {
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			addr := ""
			timeout := time.After(30 * time.Second)
			for addr == "" {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatal("kapseld exited before serving")
					}
					var m map[string]any
					if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "kapseld serving" {
						addr = m["addr"].(string)
					}
				case <-timeout:
					t.Fatal("kapseld did not serve within 30 s")
				}
			}
			resp, err := http.Get("http://" + addr + "/healthz")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("healthz: %v %v", err, resp)
			}
			resp.Body.Close()

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			var rest strings.Builder
			for l := range lines {
				rest.WriteString(l + "\n")
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("exit after %s: %v\n%s", sig, err, rest.String())
			}
			if !strings.Contains(rest.String(), "shut down cleanly") {
				t.Fatalf("no clean shutdown after %s:\n%s", sig, rest.String())
			}
		})
	}
}
