package postgres

import (
	"context"
	"errors"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
)

func TestOpenConcurrentMigratesOnce(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	dsn := db.schemaDSN(t)
	const n = 5
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(t.Context(), dsn, nil) })
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("Open #%d: %v", i, errs[i])
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping #%d: %v", i, err)
		}
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	var rows, distinct int
	err = stores[0].pool.QueryRow(t.Context(),
		`SELECT count(*), count(DISTINCT version) FROM schema_version`).Scan(&rows, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	if rows != len(ms) || distinct != len(ms) {
		t.Errorf("schema_version has %d rows (%d versions), want one per migration (%d)", rows, distinct, len(ms))
	}
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = Open(t.Context(), "postgres://postgres@"+addr+"/test?sslmode=disable&connect_timeout=5", nil)
	if !errors.Is(err, model.ErrUnavailable) {
		t.Fatalf("Open against a closed port: %v, want ErrUnavailable", err)
	}
}

func TestOpenBadDSN(t *testing.T) {
	t.Parallel()
	_, err := Open(t.Context(), "postgres://h/db?sslmode=bogus", nil)
	if !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("Open with a bad DSN: %v, want ErrInvalid", err)
	}
}

// TestPingUnavailable takes the database away from a working store (its
// port starts refusing connections) and checks that Ping and queries say
// ErrUnavailable rather than failing in some other way or hanging.
func TestPingUnavailable(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	dsn := db.schemaDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	s := openDSN(t, withHost(t, dsn, p.Addr()))
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping through the proxy: %v", err)
	}
	p.Cut()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := s.Ping(ctx); !errors.Is(err, model.ErrUnavailable) {
		t.Fatalf("Ping with the port closed: %v, want ErrUnavailable", err)
	}
	if _, err := s.JobGet(ctx, 1); !errors.Is(err, model.ErrUnavailable) {
		t.Fatalf("JobGet with the port closed: %v, want ErrUnavailable", err)
	}
}

func TestPingDeadlineIsUnavailable(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if err := s.Ping(ctx); !errors.Is(err, model.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping past its deadline: %v, want ErrUnavailable wrapping the deadline", err)
	}
	cctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Ping(cctx); errors.Is(err, model.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Ping with a cancelled context: %v, want context.Canceled only", err)
	}
}

func TestPingSchemaNotCurrent(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_version (version, name) VALUES (9999, 'future')`); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); !errors.Is(err, model.ErrUnavailable) {
		t.Fatalf("Ping on a newer schema: %v, want ErrUnavailable", err)
	}
}

func TestErrorTranslation(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	ctx := t.Context()
	if _, err := s.JobGet(ctx, 424242); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("JobGet of a missing job: %v, want ErrNotFound", err)
	}
	// A unique violation the store did not expect is a conflict.
	_, err := s.pool.Exec(ctx, `INSERT INTO leases (name, holder, epoch, until) VALUES ('x', 'a', 1, now()), ('x', 'b', 1, now())`)
	if err := s.wrap("test", err); !errors.Is(err, model.ErrConflict) {
		t.Errorf("unique violation: %v, want ErrConflict", err)
	}
	// The server going down mid-session is unavailable.
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT pg_terminate_backend(pg_backend_pid())`)
		return err
	})
	if err := s.wrap("test", err); !errors.Is(err, model.ErrUnavailable) {
		t.Errorf("terminated backend: %v, want ErrUnavailable", err)
	}
}
