package handlers

import (
	"encoding/json"
	"fmt"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/location"
)

// resolveTarget confines a path that a job writes: a copy's or a move's
// target, a new directory. A loc:NAME/... target goes to the location's
// first root healthy for writing — the master whenever it is up — even when
// a replica already has the file, so new content lands on the master and
// util.sync carries it to the replicas. (Reads go through Guard.Locations,
// which prefers the first root that has the file: see
// location.Set.Resolve.) Other paths, and every path when no Locations are
// configured, are resolved like any other.
func (c Config) resolveTarget(field, p string) (string, error) {
	if c.Locations == nil {
		return c.resolve(field, p)
	}
	name, rel, ok, err := location.SplitPath(p)
	switch {
	case !ok:
		return c.resolve(field, p)
	case err != nil:
		return "", pathErr(field, err)
	}
	abs, err := c.Locations.ResolveWrite(name, rel)
	if err != nil {
		return "", pathErr(field, err)
	}
	// The root came from the configuration, but rel may cross a symbolic
	// link planted in it: the guard confines the result like any path.
	return c.resolve(field, abs)
}

// fromTo is the params of a job that makes one file from another: its
// source (from, read) and target (to, written), and a check of the rest.
type fromTo interface {
	paths() (from, to *string)
	check() error
}

// decodeFromTo decodes a job's params into p, confines its source and
// target (refusing a target that is the source itself) and checks the
// rest: what convert, transcode and thumbnail all do first.
func (c Config) decodeFromTo(spec jobtype.Spec, params json.RawMessage, p fromTo) error {
	if err := decode(spec, params, p); err != nil {
		return err
	}
	from, to := p.paths()
	src, err := c.resolve("from", *from)
	if err != nil {
		return err
	}
	dst, err := c.resolveTarget("to", *to)
	if err != nil {
		return err
	}
	if src == dst {
		return Permanent(fmt.Errorf("%s: params.to: is the source itself", spec.Name))
	}
	*from, *to = src, dst
	if err := p.check(); err != nil {
		return Permanent(fmt.Errorf("%s: %w", spec.Name, err))
	}
	return nil
}
