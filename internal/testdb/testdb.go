// Package testdb gives tests fresh, isolated databases on real servers
// named by environment variables:
//
//	DPE_TEST_POSTGRES  e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//	DPE_TEST_MYSQL     e.g. mysql://root@127.0.0.1:3306/test
//
// Each call creates a new database (dpe_t_<random>) through the server the
// variable names and drops it when the test ends, so tests never see each
// other's data and may run in parallel. A test whose variable is unset is
// skipped, unless DPE_TEST_STRICT=1 (as CI sets it), which makes it fail: a
// missing database in CI must not pass as a skip. A variable that is set but
// names a server that does not answer always fails the test.
package testdb

import (
	"crypto/rand"
	"fmt"
	"os"
	"testing"
	"time"
)

// Environment variables read by this package.
const (
	EnvPostgres = "DPE_TEST_POSTGRES"
	EnvMySQL    = "DPE_TEST_MYSQL"
	// EnvStrict set to 1 turns the skip of an unset database variable into
	// a failure.
	EnvStrict = "DPE_TEST_STRICT"
)

// setupTimeout bounds reaching the server and creating or dropping a
// database.
const setupTimeout = 30 * time.Second

// serverURL returns the value of env, or skips (fails when strict) the test
// when it is unset.
func serverURL(t testing.TB, env, engine, scheme string) string {
	t.Helper()
	if v := os.Getenv(env); v != "" {
		return v
	}
	msg := fmt.Sprintf("%s not set: skipping %s test; set it to a %s URL to run", env, engine, scheme)
	if os.Getenv(EnvStrict) == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// newName returns a fresh database name: dpe_t_ and 16 lowercase hex
// digits, a valid unquoted identifier in every engine.
func newName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return short)
	return fmt.Sprintf("dpe_t_%x", b)
}
