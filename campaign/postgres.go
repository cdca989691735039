package campaign

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables the Postgres side of the campaign reads.
const (
	// envPGBin names the directory holding initdb and pg_ctl; by default the
	// newest /usr/lib/postgresql/*/bin, else the PATH.
	envPGBin = "KAPSEL_CAMPAIGN_PG_BIN"
	// envRequireDB (CI sets it) turns "no Postgres to start" into a failure.
	envRequireDB = "KAPSEL_REQUIRE_DB"
)

// cluster is a private Postgres server that the campaign owns and may stop
// and start as a fault: a cluster made by initdb in a temporary directory,
// listening on 127.0.0.1 on a free port (never the machine's shared
// server), or, when no Postgres binaries are installed and Docker answers,
// a container (dockerCluster). Everything it started is stopped and removed
// in t.Cleanup, failed test or not.
type cluster struct {
	t        testing.TB
	bin      string // directory of initdb and pg_ctl
	runAs    string // OS user to run them as ("" = ourselves)
	dir      string // temporary directory: data, socket, server log
	port     int
	password string
	docker   *dockerCluster

	mu      sync.Mutex
	running bool
}

// newCluster starts a private cluster with a database "kapsel" owned by the
// user "kapsel" (password authentication over TCP), or skips t — fails it
// under KAPSEL_REQUIRE_DB=1 — when it cannot. initdb runs once per test run
// (a template, removeTemplate removes it); each cluster starts from a copy.
func newCluster(t testing.TB) *cluster {
	t.Helper()
	tpl, err := clusterTemplate()
	if err != nil && tpl == nil {
		d, derr := newDockerCluster(t, templatePassword())
		if derr != nil {
			unavailable(t, fmt.Errorf("no Postgres binaries (%v) and no Docker (%v)", err, derr))
		}
		c := &cluster{t: t, password: templatePassword(), docker: d, port: d.port, running: true}
		c.createDatabase()
		return c
	}
	if err != nil {
		t.Fatalf("campaign: %v", err)
	}
	c := &cluster{t: t, bin: tpl.bin, runAs: tpl.runAs, password: tpl.password}
	if err := c.copyFrom(tpl); err != nil {
		t.Fatalf("campaign: %v", err)
	}
	t.Cleanup(c.destroy)
	var startErr error
	for range 3 { // the free port may be taken between choosing and binding
		if c.port, startErr = freePort(); startErr != nil {
			break
		}
		if startErr = c.start(); startErr == nil {
			break
		}
	}
	if startErr != nil {
		t.Fatalf("campaign: starting the private Postgres: %v\n%s", startErr, c.serverLog())
	}
	c.createDatabase()
	return c
}

var (
	templateOnce sync.Once
	template     *cluster
	templateErr  error
	passwordOnce sync.Once
	password     string
)

// templatePassword returns the run's database password.
func templatePassword() string {
	passwordOnce.Do(func() {
		var b [12]byte
		_, _ = rand.Read(b[:])
		password = "campaign-db-" + hex.EncodeToString(b[:])
	})
	return password
}

// clusterTemplate runs initdb once. It returns a nil cluster and an error
// when there are no Postgres binaries, a cluster and an error when initdb
// failed.
func clusterTemplate() (*cluster, error) {
	templateOnce.Do(func() {
		bin, err := findPGBin()
		if err != nil {
			templateErr = err
			return
		}
		c := &cluster{bin: bin, password: templatePassword()}
		if os.Geteuid() == 0 {
			// initdb refuses to run as root ("cannot be run as root"), and
			// the server would too: run both as the postgres user that the
			// Debian packages create.
			c.runAs = "postgres"
		}
		template, templateErr = c, c.init()
	})
	return template, templateErr
}

// removeTemplate removes the template cluster; TestMain calls it.
func removeTemplate() {
	if template != nil && template.dir != "" {
		_ = os.RemoveAll(template.dir)
	}
}

// copyFrom makes c's directory, owned like the template's, with a copy of
// its data directory.
func (c *cluster) copyFrom(tpl *cluster) error {
	dir, err := c.makeDir()
	if err != nil {
		return err
	}
	c.dir = dir
	out, err := exec.Command("cp", "-a", tpl.dataDir(), c.dataDir()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("copying the template cluster: %w\n%s", err, out)
	}
	return nil
}

// unavailable skips t, or fails it when KAPSEL_REQUIRE_DB=1.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(envRequireDB) == "1" {
		t.Fatalf("campaign: %s=1 but no private Postgres: %v", envRequireDB, err)
	}
	t.Skipf("campaign: no private Postgres: %v", err)
}

// findPGBin returns the directory of initdb and pg_ctl.
func findPGBin() (string, error) {
	if d := os.Getenv(envPGBin); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	p, err := exec.LookPath("initdb")
	if err != nil {
		return "", errors.New("initdb not in /usr/lib/postgresql/*/bin nor on the PATH; set " + envPGBin)
	}
	return filepath.Dir(p), nil
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// makeDir makes a temporary directory owned by the server's user.
func (c *cluster) makeDir() (string, error) {
	dir, err := os.MkdirTemp("", "kapsel-campaign-pg-")
	if err != nil {
		return "", err
	}
	return dir, c.chown(dir)
}

func (c *cluster) chown(path string) error {
	if c.runAs == "" {
		return nil
	}
	u, err := user.Lookup(c.runAs)
	if err != nil {
		return fmt.Errorf("running as root, and no %q user to run Postgres as: %w", c.runAs, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(path, uid, gid)
}

// init makes the template: a directory and initdb in it.
func (c *cluster) init() error {
	dir, err := c.makeDir()
	if err != nil {
		return err
	}
	c.dir = dir
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(c.password+"\n"), 0o600); err != nil {
		return err
	}
	if err := c.chown(pwfile); err != nil {
		return err
	}
	out, err := c.command(2*time.Minute, "initdb", "-D", c.dataDir(), "-U", "kapsel",
		"--pwfile="+pwfile, "--auth-local=trust", "--auth-host=scram-sha-256",
		"-E", "UTF8", "--no-locale", "--no-sync")
	if err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return os.Remove(pwfile)
}

func (c *cluster) dataDir() string { return filepath.Join(c.dir, "data") }

func (c *cluster) serverLog() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
	return string(b)
}

// command runs one of the Postgres programs, as c.runAs when set (through
// runuser, else su), bounded by timeout.
func (c *cluster) command(timeout time.Duration, prog string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	switch {
	case c.runAs == "":
		cmd = exec.CommandContext(ctx, path, args...)
	case haveCommand("runuser"):
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", c.runAs, "--", path}, args...)...)
	default:
		quoted := make([]string, 0, len(args)+1)
		for _, a := range append([]string{path}, args...) {
			quoted = append(quoted, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
		}
		cmd = exec.CommandContext(ctx, "su", c.runAs, "-s", "/bin/sh", "-c", strings.Join(quoted, " "))
	}
	cmd.Dir = c.dir // readable by the server's user, unlike our working directory
	return cmd.CombinedOutput()
}

func haveCommand(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// start starts the server and waits until it accepts connections.
func (c *cluster) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.docker != nil {
		err := c.docker.start()
		c.running = err == nil
		return err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on -c synchronous_commit=on", c.port, c.dir)
	out, err := c.command(60*time.Second, "pg_ctl", "-D", c.dataDir(), "-l", filepath.Join(c.dir, "postgres.log"),
		"-w", "-t", "50", "-o", opts, "start")
	if err != nil {
		return fmt.Errorf("pg_ctl start: %w\n%s", err, out)
	}
	c.running = true
	return nil
}

// stop stops the server: mode "immediate" is a crash (connections cut, WAL
// replayed at the next start), "fast" a clean shutdown that still cuts every
// connection.
func (c *cluster) stop(mode string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return nil
	}
	if c.docker != nil {
		err := c.docker.stop()
		c.running = err != nil
		return err
	}
	out, err := c.command(60*time.Second, "pg_ctl", "-D", c.dataDir(), "-m", mode, "-w", "-t", "50", "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %w\n%s", mode, err, out)
	}
	c.running = false
	return nil
}

// destroy stops the server and removes its directory.
func (c *cluster) destroy() {
	if err := c.stop("immediate"); err != nil {
		c.t.Errorf("campaign: %v", err)
	}
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// url returns the connection string of database "kapsel". Its password is
// one of the secrets the campaign looks for in every log line.
func (c *cluster) url() string {
	return fmt.Sprintf("postgres://kapsel:%s@127.0.0.1:%d/kapsel?sslmode=disable", c.password, c.port)
}

func (c *cluster) createDatabase() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := strings.Replace(c.url(), "/kapsel?", "/postgres?", 1)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		c.t.Fatalf("campaign: connecting to the private Postgres: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE kapsel"); err != nil {
		c.t.Fatalf("campaign: creating the database: %v", err)
	}
}

// conn opens a connection to database "kapsel": the invariant checker's
// view of the tables.
func (c *cluster) conn(ctx context.Context) (*pgx.Conn, error) {
	return pgx.Connect(ctx, c.url())
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
