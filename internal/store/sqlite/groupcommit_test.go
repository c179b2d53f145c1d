package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/eventually"
)

// TestGroupCommit: concurrent writes share commits, and one write's error
// undoes that write only, never the others of its group.
func TestGroupCommit(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "g.db"))
	ctx := t.Context()
	if err := s.write(ctx, "setup", func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE scratch (n INTEGER PRIMARY KEY)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	errOdd := errors.New("odd writes fail after writing")
	const n = 400
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.write(ctx, "insert", func(tx *txn) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO scratch (n) VALUES (?)`, i); err != nil {
					return err
				}
				if i%2 == 1 {
					return errOdd
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if want := i%2 == 1; want != errors.Is(err, errOdd) || (!want && err != nil) {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	var rows, odd int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE n % 2 = 1) FROM scratch`).Scan(&rows, &odd); err != nil {
		t.Fatal(err)
	}
	if rows != n/2 || odd != 0 {
		t.Errorf("%d rows, %d of failed writes; want %d, none", rows, odd, n/2)
	}
}

// TestGroupCommitCanceledCaller: a caller gone before its turn changes
// nothing and gets its context's error; the others commit.
func TestGroupCommitCanceledCaller(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "g.db"))
	ctx := t.Context()
	block := make(chan struct{})
	started := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- s.write(ctx, "first", func(tx *txn) error {
			close(started)
			<-block // holds the writer: the next writes queue up
			_, err := tx.ExecContext(ctx, `CREATE TABLE scratch (n INTEGER)`)
			return err
		})
	}()
	<-started
	gone, cancel := context.WithCancel(ctx)
	results := make(chan error, 3)
	for i, c := range []context.Context{ctx, gone, ctx} {
		go func() {
			results <- s.write(c, fmt.Sprint("w", i), func(tx *txn) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO scratch (n) VALUES (?)`, i)
				return err
			})
		}()
	}
	waitQueued(t, s, 3) // all three wait behind "first"
	cancel()
	close(block)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	var canceled, ok int
	for range 3 {
		switch err := <-results; {
		case err == nil:
			ok++
		case errors.Is(err, context.Canceled):
			canceled++
		default:
			t.Errorf("write: %v", err)
		}
	}
	var rows int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM scratch`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if canceled != 1 || ok != 2 || rows != 2 {
		t.Errorf("%d canceled, %d ok, %d rows; want 1, 2, 2", canceled, ok, rows)
	}
}

// TestGroupCommitPanic: a write that panics fails alone, with an error,
// and the writer goes on.
func TestGroupCommitPanic(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "g.db"))
	ctx := t.Context()
	err := s.write(ctx, "boom", func(tx *txn) error { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "panic in write transaction: boom") {
		t.Fatalf("panicking write: %v", err)
	}
	if err := s.write(ctx, "after", func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE scratch (n INTEGER)`)
		return err
	}); err != nil {
		t.Fatalf("write after a panic: %v", err)
	}
}

// TestGroupCommitCallerGoneMidStatement: a caller whose context ends while
// its write runs does not take the other writes of its group down (SQLite
// rolls back the whole transaction of an interrupted write; found by the
// bench, where workers end their long polls).
func TestGroupCommitCallerGoneMidStatement(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "g.db"))
	ctx := t.Context()
	if err := s.write(ctx, "setup", func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE scratch (n INTEGER)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	started, block := make(chan struct{}), make(chan struct{})
	hold := make(chan error, 1)
	go func() {
		hold <- s.write(ctx, "hold", func(tx *txn) error { close(started); <-block; return nil })
	}()
	<-started
	gone, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan error, 2)
	go func() {
		results <- s.write(gone, "long", func(tx *txn) error {
			time.AfterFunc(2*time.Millisecond, cancel) // ends while the statement runs
			_, err := tx.ExecContext(gone, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100000)
				INSERT INTO scratch SELECT max(x) FROM c`)
			return err
		})
	}()
	go func() {
		results <- s.write(ctx, "other", func(tx *txn) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO scratch (n) VALUES (1)`)
			return err
		})
	}()
	waitQueued(t, s, 2) // both behind "hold": they form one group
	close(block)
	if err := <-hold; err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-results; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("write: %v", err)
		}
	}
	var ones int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM scratch WHERE n = 1`).Scan(&ones); err != nil {
		t.Fatal(err)
	}
	if ones != 1 {
		t.Errorf("the other write of the group left %d rows, want 1", ones)
	}
}

// waitQueued waits until n writes wait for the writer loop.
func waitQueued(t *testing.T, s *Store, n int32) {
	t.Helper()
	eventually.Value(t, 10*time.Second, func() (int32, error) { return s.queued.Load(), nil },
		func(q int32) bool { return q >= n }, fmt.Sprintf("%d writes queued", n))
}
