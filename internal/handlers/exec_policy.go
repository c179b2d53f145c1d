package handlers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dpe-engine/dpe/internal/model"
)

// ExecPolicy is what a processor lets exec jobs run. Exec is off unless
// Allow names at least one program.
type ExecPolicy struct {
	// Allow lists the programs exec may start, as absolute paths. A job's
	// argv[0] is resolved to an absolute path (a bare name through PATH, a
	// relative path against the job's dir) and must equal one exactly.
	Allow []string
	// Env is the environment of the programs besides PATH, which is the
	// processor's: KEY=VALUE sets a variable, KEY passes the processor's
	// value on when set. Nothing else of the processor's environment
	// reaches a job.
	Env []string
	// JobEnv lists the variables a job's params.env may set; a job setting
	// any other fails (LD_PRELOAD would subvert an allowed program).
	JobEnv []string
}

// secretEnv never reaches a job, whatever the policy says.
var secretEnv = []string{"DPE_TOKEN", "DPE_DB", "DPE_TOKEN_FILE"}

// Check refuses a policy with a relative or unclean program path, or one
// that passes a dpe secret on.
func (p ExecPolicy) Check() error {
	for i, a := range p.Allow {
		if !filepath.IsAbs(a) || filepath.Clean(a) != a {
			return model.Invalid(fmt.Sprintf("exec.allow[%d]", i), "want a clean absolute path, got %q", a)
		}
	}
	for i, kv := range append(slices.Clone(p.Env), p.JobEnv...) {
		k, _, _ := strings.Cut(kv, "=")
		if k == "" || slices.Contains(secretEnv, k) {
			return model.Invalid(fmt.Sprintf("exec.env[%d]", i), "%q may not be passed to jobs", k)
		}
	}
	return nil
}

// Enabled reports whether exec may run anything.
func (p ExecPolicy) Enabled() bool { return len(p.Allow) > 0 }

// program resolves argv0 to the absolute path to start and checks it
// against Allow.
func (p ExecPolicy) program(argv0, dir string) (string, error) {
	prog := argv0
	switch {
	case !strings.ContainsRune(prog, '/') && !strings.ContainsRune(prog, os.PathSeparator):
		var err error
		if prog, err = exec.LookPath(prog); err != nil {
			return "", Permanent(fmt.Errorf("exec: %w", err))
		}
		if !filepath.IsAbs(prog) { // "." in PATH
			return "", Permanent(fmt.Errorf("exec: %s: found relative to the working directory; not allowed", argv0))
		}
	case !filepath.IsAbs(prog):
		base := dir
		if base == "" {
			var err error
			if base, err = os.Getwd(); err != nil {
				return "", err
			}
		}
		prog = filepath.Join(base, prog)
	}
	prog = filepath.Clean(prog)
	if !slices.Contains(p.Allow, prog) {
		return "", Permanent(fmt.Errorf("exec: %w", model.Invalid("params.argv[0]", "%s is not in this processor's exec allow-list", prog)))
	}
	return prog, nil
}

// environ is the environment of a job's program: PATH, the policy's Env,
// then the job's own variables (which must be in JobEnv).
func (p ExecPolicy) environ(job []string) ([]string, error) {
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, kv := range p.Env {
		if strings.Contains(kv, "=") {
			env = append(env, kv)
		} else if v, ok := os.LookupEnv(kv); ok {
			env = append(env, kv+"="+v)
		}
	}
	for i, kv := range job {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, Permanent(fmt.Errorf("exec: %w", model.Invalid(fmt.Sprintf("params.env[%d]", i), "want KEY=VALUE, got %q", kv)))
		}
		if !slices.Contains(p.JobEnv, k) || slices.Contains(secretEnv, k) {
			return nil, Permanent(fmt.Errorf("exec: %w", model.Invalid(fmt.Sprintf("params.env[%d]", i), "%s may not be set by a job on this processor", k)))
		}
		env = append(env, kv)
	}
	return env, nil
}
