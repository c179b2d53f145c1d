package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/config"
	"github.com/dpe-engine/dpe/internal/location"
	"github.com/dpe-engine/dpe/internal/paths"
)

// locationsUsage is the synopsis of `dpe locations`.
const locationsUsage = "want: dpe locations check --config FILE [--timeout D] [-o json]"

// runLocations is `dpe locations check --config FILE`: it probes every
// root of every location of the file (exists, is a directory, can be read
// and written) and prints their health. It fails (exit 1) when a location
// has no healthy root at all; a replica or a read-only root that is down
// is shown but is no failure, since reads and writes fail over.
func runLocations(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "check" {
		return usagef(locationsUsage)
	}
	fs, g := newCommand("locations check", e)
	cfgPath := fs.String("config", "", "configuration file holding the locations section")
	timeout := fs.Duration("timeout", location.DefaultTimeout, "a root whose probe takes longer counts as down")
	pos, err := g.parse(args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q (%s)", pos[0], locationsUsage)
	}
	if *cfgPath == "" {
		return usagef(locationsUsage)
	}
	f, err := config.Load(*cfgPath)
	if err != nil {
		return usagef("%v", err)
	}
	set, err := newLocationSet(*cfgPath, f, location.Options{Timeout: *timeout})
	if err != nil {
		return err
	}
	if set == nil {
		return usagef("%s: no locations section", *cfgPath)
	}
	health := set.Check(ctx)
	down := locationsDown(health)
	if g.json() {
		if err := printJSON(e.stdout, checkOutput(health, down)); err != nil {
			return err
		}
	} else {
		printLocationHealth(e, health)
	}
	if len(down) > 0 {
		return fmt.Errorf("no healthy root: %s", strings.Join(down, ", "))
	}
	return nil
}

// newLocationSet builds the locations of config file f (read from path);
// nil, and no error, when it has none.
func newLocationSet(path string, f *config.File, opts location.Options) (*location.Set, error) {
	if len(f.Locations) == 0 {
		return nil, nil
	}
	set, err := location.New(f.Locations, opts)
	if err != nil {
		return nil, usagef("%s: %v", path, err)
	}
	return set, nil
}

// locationGuard builds a processor's path guard (DESIGN §3, §6): the
// allowed roots are allow plus the roots of every location in set, and
// loc:NAME/... paths resolve through set.Resolve. A nil set gives the
// guard of allow alone. paths.NewGuard needs its roots to exist, so a
// location root that is missing at start is left out with a warning: loc:
// paths that fail over to it are refused until the processor restarts
// (util.sync still mirrors to it, as it does not go through the guard).
func locationGuard(allow []string, set *location.Set, log *slog.Logger) (*paths.Guard, error) {
	roots := append([]string(nil), allow...)
	if set != nil {
		for _, r := range set.AllRoots() {
			if fi, err := os.Stat(r); err != nil || !fi.IsDir() {
				log.Warn("location root not reachable at start: not an allowed root until restart", "root", r, "err", err)
				continue
			}
			roots = append(roots, r)
		}
	}
	g, err := paths.NewGuard(roots)
	if err != nil {
		return nil, usagef("allowed paths: %v", err)
	}
	if set != nil {
		g.Locations = set.Resolve
	}
	return g, nil
}

// locationsDown lists the locations none of whose roots is healthy.
func locationsDown(health []location.RootHealth) []string {
	up := map[string]bool{}
	var names []string
	for _, h := range health {
		if _, seen := up[h.Location]; !seen {
			names = append(names, h.Location)
		}
		up[h.Location] = up[h.Location] || h.Healthy
	}
	var down []string
	for _, n := range names {
		if !up[n] {
			down = append(down, n)
		}
	}
	return down
}

// healthWord is a root's HEALTH column: ok, read-only or down.
func healthWord(h location.RootHealth) string {
	switch {
	case !h.Healthy:
		return "down"
	case !h.Writable:
		return "read-only"
	}
	return "ok"
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func printLocationHealth(e *env, health []location.RootHealth) {
	t := newTable(e.stdout, "LOCATION", "ROOT", "ROLE", "HEALTH", "LATENCY", "ERROR")
	for _, h := range health {
		t.row(h.Location, h.Root, h.Role(), healthWord(h), h.Latency.Round(time.Microsecond), dash(errString(h.Err)))
	}
	t.flush()
}

// rootJSON is one root in the -o json output.
type rootJSON struct {
	Location  string  `json:"location"`
	Root      string  `json:"root"`
	Index     int     `json:"index"`
	Role      string  `json:"role"`
	Health    string  `json:"health"` // ok, read-only or down
	Healthy   bool    `json:"healthy"`
	Writable  bool    `json:"writable"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
}

// checkJSON is the -o json output of `dpe locations check`.
type checkJSON struct {
	OK    bool       `json:"ok"`   // every location has a healthy root
	Down  []string   `json:"down"` // locations without one
	Roots []rootJSON `json:"roots"`
}

func checkOutput(health []location.RootHealth, down []string) checkJSON {
	out := checkJSON{OK: len(down) == 0, Down: down, Roots: []rootJSON{}}
	if out.Down == nil {
		out.Down = []string{}
	}
	for _, h := range health {
		out.Roots = append(out.Roots, rootJSON{
			Location: h.Location, Root: h.Root, Index: h.Index, Role: h.Role(),
			Health: healthWord(h), Healthy: h.Healthy, Writable: h.Writable,
			LatencyMS: float64(h.Latency.Microseconds()) / 1000, Error: errString(h.Err),
		})
	}
	return out
}
