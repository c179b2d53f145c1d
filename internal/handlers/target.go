package handlers

import (
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
