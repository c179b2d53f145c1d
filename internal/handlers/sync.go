package handlers

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"path/filepath"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/paths"
)

// syncHandler runs util.sync: it mirrors the master root of a location to
// each of its replicas (DESIGN §6).
type syncHandler struct {
	cfg  Config
	spec jobtype.Spec
}

type syncParams struct {
	Location  string `json:"location"`
	Delete    bool   `json:"delete"`
	DryRun    bool   `json:"dry_run"`
	Algorithm string `json:"algorithm"` // "" is sha256
}

// maxSyncListed bounds the changes and errors a report lists one by one
// (the counts stay exact), so a first sync of a big archive does not make
// a huge job result.
const maxSyncListed = 100

// syncReport is the result of util.sync. In a dry run the counts say what
// a real run would do.
type syncReport struct {
	Location  string `json:"location"`
	Master    string `json:"master"`
	Algorithm string `json:"algorithm"`
	Delete    bool   `json:"delete"`
	DryRun    bool   `json:"dry_run"`
	// Files and Bytes count the regular files on the master.
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
	// Skipped counts master entries that are neither files nor
	// directories (symbolic links, devices): they are not mirrored.
	Skipped  int64            `json:"skipped"`
	Replicas []*replicaReport `json:"replicas"`
	// Errors are those not tied to one replica (reading the master).
	Errors     []string `json:"errors,omitempty"`
	ErrorCount int64    `json:"error_count"`
}

// replicaReport is what util.sync did to one replica. Each master file
// counts once: copied, repaired, verified or in the errors.
type replicaReport struct {
	Root     string `json:"root"`
	Copied   int64  `json:"copied"`   // missing on the replica: copied
	Repaired int64  `json:"repaired"` // different on the replica (size or checksum): replaced
	Verified int64  `json:"verified"` // already identical
	Deleted  int64  `json:"deleted"`  // only on the replica, deleted (delete: true)
	Extra    int64  `json:"extra"`    // only on the replica, kept (delete: false)
	// BytesCopied is the size of the files copied and repaired.
	BytesCopied int64 `json:"bytes_copied"`
	// Changes lists the first maxSyncListed differences found.
	Changes    []syncChange `json:"changes,omitempty"`
	Errors     []string     `json:"errors,omitempty"`
	ErrorCount int64        `json:"error_count"`

	real  string       // Root with its symbolic links evaluated
	guard *paths.Guard // confines the paths written to Root
	skip  bool         // unhealthy: left alone
}

// syncChange is one difference: a file (relative to the roots) and what
// was done about it: copied, repaired, deleted or extra.
type syncChange struct {
	Path   string `json:"path"`
	Action string `json:"action"`
}

// change counts one difference and lists it while the list is short.
func (r *replicaReport) change(rel, action string, size int64) {
	switch action {
	case "copied":
		r.Copied++
	case "repaired":
		r.Repaired++
	case "deleted":
		r.Deleted++
	case "extra":
		r.Extra++
	}
	r.BytesCopied += size
	if len(r.Changes) < maxSyncListed {
		r.Changes = append(r.Changes, syncChange{Path: rel, Action: action})
	}
}

// fail records an error about rel ("" for the replica as a whole).
func (r *replicaReport) fail(rel string, err error) {
	r.ErrorCount++
	if len(r.Errors) < maxSyncListed {
		r.Errors = append(r.Errors, errText(rel, err))
	}
}

// fail records an error about the master.
func (s *syncReport) fail(rel string, err error) {
	s.ErrorCount++
	if len(s.Errors) < maxSyncListed {
		s.Errors = append(s.Errors, errText(rel, err))
	}
}

func errText(rel string, err error) string {
	if rel == "" {
		return err.Error()
	}
	return rel + ": " + err.Error()
}

// errorTotal counts the errors of the whole report.
func (s *syncReport) errorTotal() int64 {
	n := s.ErrorCount
	for _, r := range s.Replicas {
		n += r.ErrorCount
	}
	return n
}

// errNoLocations: the processor has no locations section.
var errNoLocations = errors.New("util.sync: no locations configured")

// Run mirrors the master to the replicas and returns the report. A master
// that is down fails the attempt (retried); a replica that is down, or a
// file that could not be mirrored, is listed in the report and fails the
// attempt after every other file was done, so a retry finishes the work.
// Every step is idempotent: files already in place are only compared.
func (h *syncHandler) Run(ctx context.Context, t Task) (any, error) {
	var p syncParams
	if err := decode(h.spec, t.Params, &p); err != nil {
		return nil, err
	}
	if h.cfg.Locations == nil {
		return nil, Permanent(errNoLocations)
	}
	if p.Algorithm == "" {
		p.Algorithm = "sha256"
	}
	newHash, err := hasher(p.Algorithm)
	if err != nil {
		return nil, err
	}
	health, err := h.cfg.Locations.CheckLocation(ctx, p.Location)
	if err != nil {
		return nil, Permanent(fmt.Errorf("util.sync: %w", err))
	}
	master := health[0]
	rep := &syncReport{Location: p.Location, Master: master.Root, Algorithm: p.Algorithm, Delete: p.Delete, DryRun: p.DryRun}
	if !master.Healthy {
		return nil, fmt.Errorf("util.sync: master %s of location %q is down: %w", master.Root, p.Location, master.Err)
	}
	realMaster, err := filepath.EvalSymlinks(master.Root)
	if err != nil {
		return nil, fmt.Errorf("util.sync: master: %w", err)
	}
	for _, r := range health[1:] {
		rr := &replicaReport{Root: r.Root}
		rep.Replicas = append(rep.Replicas, rr)
		if err := rr.open(r.Healthy && (r.Writable || p.DryRun), r.Err); err != nil {
			rr.skip = true
			rr.fail("", err)
		}
	}
	// Every file of the sync is opened through a guard of the master and
	// the usable replicas, beneath its root (see paths.Guard.Open).
	roots := []string{realMaster}
	for _, r := range rep.Replicas {
		if !r.skip {
			roots = append(roots, r.real)
		}
	}
	sg, err := paths.NewGuard(roots)
	if err != nil {
		return nil, fmt.Errorf("util.sync: %w", err)
	}
	cfg := h.cfg
	cfg.Guard = sg
	s := &syncer{cfg: cfg, p: p, rep: rep, master: realMaster, newHash: newHash}
	if err := s.run(ctx, t); err != nil {
		return rep, fmt.Errorf("util.sync: %w", err)
	}
	if n := rep.errorTotal(); n > 0 {
		return rep, fmt.Errorf("util.sync: location %q: %d errors (listed in the result)", p.Location, n)
	}
	return rep, nil
}

// open prepares a replica for the sync: usable says whether its probe
// allows it (err says why not).
func (r *replicaReport) open(usable bool, err error) error {
	if !usable {
		if err == nil {
			err = errors.New("not writable")
		}
		return fmt.Errorf("replica unhealthy, left alone: %w", err)
	}
	if r.real, err = filepath.EvalSymlinks(r.Root); err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	if r.guard, err = paths.NewGuard([]string{r.real}); err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	return nil
}

// hasher returns the hash function called alg.
func hasher(alg string) (func() hash.Hash, error) {
	switch alg {
	case "sha256":
		return sha256.New, nil
	case "md5":
		return md5.New, nil
	}
	// The spec's enum refuses it first; kept for a spec edited alone.
	return nil, Permanent(fmt.Errorf("util.sync: unknown algorithm %q", alg))
}
