package campaign

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
)

// dockerCluster is the fallback private Postgres: a postgres:16 container
// whose port is bound to a fixed free port on 127.0.0.1, so that stopping and
// starting the container (the fault) keeps the address kapseld uses. It is
// used only when no initdb is installed and a Docker engine answers; the
// machine the campaign was written on has no Docker engine, so this path is
// compiled and documented but was not run there.
type dockerCluster struct {
	pool *dockertest.Pool
	res  *dockertest.Resource
	port int
	url  string
}

func newDockerCluster(t testing.TB, password string) (*dockerCluster, error) {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return nil, err
	}
	if err := pool.Client.Ping(); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	res, err := pool.RunWithOptions(&dockertest.RunOptions{
		Repository: "postgres",
		Tag:        "16",
		Env:        []string{"POSTGRES_USER=kapsel", "POSTGRES_PASSWORD=" + password, "POSTGRES_DB=postgres"},
		PortBindings: map[docker.Port][]docker.PortBinding{
			"5432/tcp": {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(port)}},
		},
	}, func(hc *docker.HostConfig) {
		hc.AutoRemove = false // it is stopped and started again as a fault
		hc.RestartPolicy = docker.RestartPolicy{Name: "no"}
	})
	if err != nil {
		return nil, fmt.Errorf("starting a Postgres container: %w", err)
	}
	_ = res.Expire(1800)
	d := &dockerCluster{pool: pool, res: res, port: port,
		url: fmt.Sprintf("postgres://kapsel:%s@127.0.0.1:%d/postgres?sslmode=disable", password, port)}
	t.Cleanup(func() { _ = pool.Purge(res) })
	if err := d.waitReady(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *dockerCluster) waitReady() error {
	d.pool.MaxWait = 60 * time.Second
	return d.pool.Retry(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, d.url)
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	})
}

// stop kills the server at once (docker stop with no grace period).
func (d *dockerCluster) stop() error { return d.pool.Client.StopContainer(d.res.Container.ID, 0) }

func (d *dockerCluster) start() error {
	if err := d.pool.Client.StartContainer(d.res.Container.ID, nil); err != nil {
		return err
	}
	return d.waitReady()
}
