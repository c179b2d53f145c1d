package postgres

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/testdb"
)

// testDB is one fresh database (from testdb.Postgres) in which every store
// opened gets its own schema: real isolation (own tables, sequences and
// indexes) at the cost of a CREATE SCHEMA rather than a CREATE DATABASE.
// Notifications are per database, so stores of one testDB hear each other's
// (a spurious wake-up, which the contract allows).
type testDB struct {
	dsn     string
	schemas atomic.Int64
}

func newTestDB(t testing.TB) *testDB {
	t.Helper()
	return &testDB{dsn: testdb.Postgres(t)}
}

// schemaDSN creates a new empty schema and returns a DSN whose connections
// use it (search_path is passed to the server as a run-time parameter).
func (d *testDB) schemaDSN(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("s%d", d.schemas.Add(1))
	conn, err := pgx.Connect(t.Context(), d.dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	return withParam(t, d.dsn, "search_path", name)
}

// open returns a migrated store in a fresh schema, closed at cleanup.
func (d *testDB) open(t testing.TB) *Store {
	t.Helper()
	return openDSN(t, d.schemaDSN(t))
}

// openDSN opens a store on dsn, closed at cleanup.
func openDSN(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// withParam returns the URL dsn with a query parameter set.
func withParam(t testing.TB, dsn, key, value string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("testdb DSN is not a URL: %v", err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// withHost returns the URL dsn pointing at another host:port.
func withHost(t testing.TB, dsn, hostport string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("testdb DSN is not a URL: %v", err)
	}
	u.Host = hostport
	return u.String()
}

// proxy forwards TCP connections to a database server until cut, so a test
// can take the database away from a store without touching the server.
type proxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
	wg     sync.WaitGroup
}

// newProxy listens on a free local port and forwards to target; it is cut
// at cleanup.
func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.Cut)
	return p
}

func (p *proxy) Addr() string { return p.l.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, up) {
			return
		}
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	p.conns = append(p.conns, cs...)
	return true
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// Cut closes the listening port and every forwarded connection, as if the
// database host went away; the port then refuses connections.
func (p *proxy) Cut() {
	p.mu.Lock()
	if !p.cut {
		p.cut = true
		p.l.Close()
		for _, c := range p.conns {
			c.Close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}
