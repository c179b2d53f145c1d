// Package testbin builds the dpe binary for tests that run it as real
// processes (the CLI's end-to-end tests, the monitor's browser tests).
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// build is the one build of a test process: every test of a package
// shares it.
var build struct {
	once sync.Once
	path string
	err  error
}

// DPE builds cmd/dpe once per test process and returns the binary's path
// (left in a temporary directory for the process's other tests).
func DPE(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "dpe-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "dpe")
		// By import path, so any package's test can build it.
		out, err := exec.Command("go", "build", "-o", build.path, "github.com/dpe-engine/dpe/cmd/dpe").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}
