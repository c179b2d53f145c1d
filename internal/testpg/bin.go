package testpg

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// binaries are the PostgreSQL programs and the OS user they run as.
type binaries struct {
	dir string // holds initdb and pg_ctl
	// asRoot: the test runs as root, so the programs run as the user
	// postgres (uid, gid) through runuser, or su when runuser is missing.
	asRoot   bool
	uid, gid int
	runuser  string
	su       string
}

// findBinaries locates initdb and pg_ctl and, under root, the postgres user
// and a way to become it; it skips the test (fails when strict) when any
// is missing.
func findBinaries(t testing.TB) binaries {
	t.Helper()
	var b binaries
	b.dir = binDir()
	if b.dir == "" {
		skipOrFail(t, "testpg: PostgreSQL server programs (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or PATH: skipping; install the postgresql package to run this test")
	}
	if os.Geteuid() != 0 {
		return b
	}
	b.asRoot = true
	u, err := user.Lookup("postgres")
	if err != nil {
		skipOrFail(t, "testpg: running as root, and PostgreSQL refuses to run as root, but there is no OS user postgres to run it as: "+err.Error())
	}
	b.uid, _ = strconv.Atoi(u.Uid)
	b.gid, _ = strconv.Atoi(u.Gid)
	if p, err := lookPath("runuser"); err == nil {
		b.runuser = p
	} else if p, err := lookPath("su"); err == nil {
		b.su = p
	} else {
		skipOrFail(t, "testpg: running as root needs runuser or su to run PostgreSQL as the user postgres; neither was found")
	}
	return b
}

// binDir is the directory of the newest /usr/lib/postgresql/*/bin holding
// initdb and pg_ctl, else the directory of pg_ctl in PATH when initdb is
// next to it, else "".
func binDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first: "15" after "9.6", so compare numerically.
	version := func(d string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int {
		switch va, vb := version(a), version(b); {
		case va > vb:
			return -1
		case va < vb:
			return 1
		}
		return 0
	})
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if executable(filepath.Join(d, "initdb")) && executable(filepath.Join(d, "pg_ctl")) {
			return d
		}
	}
	return ""
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// command is the program name with args, run in dir as the cluster's user.
func (b binaries) command(dir, name string, args ...string) *exec.Cmd {
	prog := filepath.Join(b.dir, name)
	var cmd *exec.Cmd
	switch {
	case !b.asRoot:
		cmd = exec.Command(prog, args...)
	case b.runuser != "":
		cmd = exec.Command(b.runuser, append([]string{"-u", "postgres", "--", prog}, args...)...)
	default:
		line := shellQuote(prog)
		for _, a := range args {
			line += " " + shellQuote(a)
		}
		cmd = b.shell(dir, line)
	}
	// The cluster's user may not be allowed into the test's working
	// directory; pg_ctl and initdb complain when they cannot return to it.
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

// prepareDir lets the cluster's user own dir and reach it. Under root the
// directory is chowned to postgres, and every directory between it and
// the system's temporary directory gets o+x (the testing package makes
// them 0700). The result is checked as postgres.
func (b binaries) prepareDir(t testing.TB, dir string) {
	t.Helper()
	if !b.asRoot {
		return
	}
	if err := os.Chown(dir, b.uid, b.gid); err != nil {
		t.Fatalf("testpg: chown %s to postgres: %v", dir, err)
	}
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Dir(dir); strings.HasPrefix(d, tmp+string(filepath.Separator)); d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatalf("testpg: %v", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
				t.Fatalf("testpg: let postgres through %s: %v", d, err)
			}
		}
	}
	out, err := b.shell(dir, "test -w "+shellQuote(dir)).CombinedOutput()
	if err != nil {
		t.Fatalf("testpg: the user postgres cannot write %s (is a directory above it closed to others? TMPDIR=%q): %v %s", dir, os.Getenv("TMPDIR"), err, out)
	}
}

// shell runs a /bin/sh command line as the cluster's user (root case only).
func (b binaries) shell(dir, line string) *exec.Cmd {
	var cmd *exec.Cmd
	if b.runuser != "" {
		cmd = exec.Command(b.runuser, "-u", "postgres", "--", "/bin/sh", "-c", line)
	} else {
		cmd = exec.Command(b.su, "postgres", "-s", "/bin/sh", "-c", line)
	}
	cmd.Dir = dir
	return cmd
}

// socketDir is where the cluster puts its Unix socket: dir/s, or a short
// directory of its own when dir's path is too long for a socket address
// (108 bytes on Linux, including ".s.PGSQL.PORT").
func socketDir(t testing.TB, b binaries, dir string) string {
	t.Helper()
	s := filepath.Join(dir, "s")
	if len(s)+len("/.s.PGSQL.65535") >= 100 {
		var err error
		if s, err = os.MkdirTemp("", "pgs"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(s) })
	} else if err := os.Mkdir(s, 0o700); err != nil {
		t.Fatal(err)
	}
	if b.asRoot {
		if err := os.Chown(s, b.uid, b.gid); err != nil {
			t.Fatalf("testpg: chown %s to postgres: %v", s, err)
		}
	}
	return s
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
