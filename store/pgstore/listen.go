package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5"
)

// DeliveryListen returns a channel that receives a value whenever any
// process commits new deliveries to this store's schema (NOTIFY on
// NotifyChannel, one per committed batch: an insert, a backfill). Values
// are coalesced: the channel holds at most one, and a reader that was busy
// sees one wake-up for everything it missed.
//
// The listener has a dedicated connection, taken out of the pool. When the
// connection fails it reconnects with exponential backoff
// (ListenReconnectMin up to ListenReconnectMax, for as long as ctx lasts) and
// sends one wake-up after reconnecting, since deliveries may have been committed
// while it was away. An idle connection is pinged every ListenPingInterval so
// a silently dropped one is noticed. The channel is closed when ctx ends.
//
// DeliveryListen returns an error, and no channel, when the first
// connection cannot be made; callers then poll.
func (s *Store) DeliveryListen(ctx context.Context) (<-chan struct{}, error) {
	conn, schema, err := s.listenConnect(ctx)
	if err != nil {
		return nil, fmt.Errorf("listening for deliveries: %w", mapError(err))
	}
	ch := make(chan struct{}, 1)
	go s.listen(ctx, conn, schema, ch)
	return ch, nil
}

// listenConnect takes a connection out of the pool for good (so it was set
// up exactly as the store's others: search_path, AfterConnect hooks), learns
// its schema and starts listening.
func (s *Store) listenConnect(ctx context.Context) (*pgx.Conn, string, error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, "", err
	}
	conn := pc.Hijack()
	var schema string
	err = conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema)
	if err == nil {
		_, err = conn.Exec(ctx, `LISTEN `+NotifyChannel)
	}
	if err != nil {
		conn.Close(context.Background())
		return nil, "", err
	}
	return conn, schema, nil
}

// listen runs until ctx ends, delivering wake-ups to ch and replacing conn
// when it fails.
func (s *Store) listen(ctx context.Context, conn *pgx.Conn, schema string, ch chan struct{}) {
	defer close(ch)
	log := s.config.Logger
	for {
		err := s.receive(ctx, conn, schema, ch)
		conn.Close(context.Background())
		if ctx.Err() != nil {
			return
		}
		log.WarnContext(ctx, "pgstore: delivery listener lost its connection; reconnecting", slog.String("error", err.Error()))
		if conn = s.reconnect(ctx); conn == nil {
			return // ctx ended
		}
		log.InfoContext(ctx, "pgstore: delivery listener reconnected")
		wake(ch)
	}
}

// receive waits for notifications on conn until it fails or ctx ends.
func (s *Store) receive(ctx context.Context, conn *pgx.Conn, schema string, ch chan struct{}) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, s.config.ListenPingInterval)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if n.Payload == schema {
				wake(ch)
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Quiet for a while: make sure the connection is still there.
			pctx, cancel := context.WithTimeout(ctx, s.config.ListenPingInterval)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("pinging: %w", err)
			}
		default:
			return err
		}
	}
}

// reconnect retries listenConnect with backoff until it succeeds or ctx
// ends (then it returns nil).
func (s *Store) reconnect(ctx context.Context) *pgx.Conn {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = s.config.ListenReconnectMin
	b.MaxInterval = s.config.ListenReconnectMax
	b.MaxElapsedTime = 0 // for as long as ctx lasts
	bo := backoff.WithContext(b, ctx)
	var conn *pgx.Conn
	_ = backoff.Retry(func() error {
		c, _, err := s.listenConnect(ctx)
		if err != nil {
			s.config.Logger.DebugContext(ctx, "pgstore: delivery listener reconnection failed", slog.String("error", err.Error()))
			return err
		}
		conn = c
		return nil
	}, bo)
	return conn
}

// wake puts a value in ch unless one is already waiting.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
