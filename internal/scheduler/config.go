package scheduler

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	// Embedded zone data: a scheduler in a minimal container (no
	// /usr/share/zoneinfo) must still know Europe/Berlin.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"

	"github.com/dpe-engine/dpe/internal/model"
)

// Misfire policies: what becomes of fire times found late (more than
// MisfireGrace past) after an outage.
const (
	MisfireSkip = "skip" // every late fire is recorded as skipped
	MisfireOnce = "once" // the latest late fire starts, earlier ones are coalesced
	MisfireAll  = "all"  // every late fire starts, up to MisfireLimit
)

// Overlap policies.
const (
	OverlapAllow = "allow" // start even while an earlier instance runs
	OverlapSkip  = "skip"  // record "overlap" while an instance it started runs
)

// Throttle policies (Throttle.WhenFull).
const (
	ThrottleSkip = "skip" // a fire over max_running is recorded and consumed
	ThrottleWait = "wait" // it waits, unconsumed, until an instance ends
)

// Defaults of Config.
const (
	DefaultMisfire         = MisfireOnce
	DefaultMisfireLimit    = 100
	DefaultMisfireGrace    = time.Second
	DefaultApprovalTimeout = 10 * time.Second
)

// nameRe is what a schedule name may be: it becomes part of instance names
// ("schedule/<name>/...") and of the trigger's URL path, so no slashes.
var nameRe = regexp.MustCompile(`^[a-z0-9._-]{1,128}$`)

// templateRe matches template names (DESIGN §9).
var templateRe = regexp.MustCompile(`^[a-z0-9._-]{1,128}$`)

// cronParser accepts 5 fields, or 6 with seconds first, and descriptors.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour |
	cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Config is one entry of the `schedules:` section of the config file
// (DESIGN §9). Zero fields take the defaults named on each.
type Config struct {
	// Name identifies the schedule: its trigger in the core DB and the
	// middle of its instance names. 1 to 128 of [a-z0-9._-].
	Name string `yaml:"name"`
	// Cron has 5 fields (minute first) or 6 (seconds first), or is a
	// descriptor such as @hourly or @daily. @every is refused: it counts
	// from the last fire, so copies could not agree on fire times.
	Cron string `yaml:"cron"`
	// Timezone is the IANA zone the cron fields are read in. Default UTC.
	Timezone string `yaml:"timezone"`
	// Template is the workflow template each fire starts.
	Template string `yaml:"template"`
	// Args are the instance's arguments, sent as they are: ${{ }}
	// expressions in them (fire_time, schedule) are evaluated by the
	// server.
	Args map[string]any `yaml:"args"`
	// Priority of the started instances, 0 to model.MaxPriority.
	Priority int `yaml:"priority"`
	// Enabled: nil means true.
	Enabled *bool `yaml:"enabled"`
	// Misfire is skip, once or all. Default once.
	Misfire string `yaml:"misfire"`
	// MisfireLimit bounds the late fires that start under "all" (the rest
	// are recorded as skipped "misfire: over limit"), and the number of
	// late fires recorded one by one under every policy. Default 100.
	MisfireLimit int `yaml:"misfire_limit"`
	// MisfireGrace: a fire at most this late still counts as on time.
	// Default 1s.
	MisfireGrace time.Duration `yaml:"misfire_grace"`
	// Overlap is allow or skip. Default allow.
	Overlap string `yaml:"overlap"`
	// Approval, when set, is asked before each fire.
	Approval *Approval `yaml:"approval"`
	// Throttle, when set, caps the running instances of this schedule.
	Throttle *Throttle `yaml:"throttle"`
}

// Approval is an HTTP GET asked before each fire (see approve).
type Approval struct {
	// URL is http or https; the query gets schedule=NAME and
	// fire_time=RFC3339 added.
	URL string `yaml:"url"`
	// Timeout bounds the whole question, retries included. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// Throttle caps the non-final instances a schedule started.
type Throttle struct {
	// MaxRunning is at least 1.
	MaxRunning int `yaml:"max_running"`
	// WhenFull is skip (default: the fire is recorded as throttled and
	// consumed) or wait (it stays due and is offered again every second).
	WhenFull string `yaml:"when_full"`
}

// ConfigError names the schedule and the field a bad config is refused
// for. It matches model.ErrInvalid.
type ConfigError struct {
	Schedule string // the schedule's name (may be empty: then the name is at fault too)
	Field    string // the YAML key, e.g. "cron" or "approval.url"
	Reason   string
}

// Error reads like `schedule "nightly": cron: "0 2 * *": expected 5 to 6 fields`.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("schedule %q: %s: %s", e.Schedule, e.Field, e.Reason)
}

// Is makes errors.Is(err, model.ErrInvalid) true.
func (e *ConfigError) Is(target error) bool { return target == model.ErrInvalid }

// IsEnabled reports whether the schedule runs (Enabled nil or true).
func (c *Config) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }

// Validate refuses every bad field (all of them, joined, each a
// *ConfigError) and fills the defaults of the zero ones.
func (c *Config) Validate() error {
	_, err := c.compile()
	return err
}

// ValidateAll validates each config (errors prefixed "schedules[i]") and
// refuses duplicate names.
func ValidateAll(cfgs []Config) error {
	var errs []error
	seen := map[string]bool{}
	for i := range cfgs {
		if err := cfgs[i].Validate(); err != nil {
			errs = append(errs, fmt.Errorf("schedules[%d]: %w", i, err))
		}
		if n := cfgs[i].Name; n != "" {
			if seen[n] {
				errs = append(errs, &ConfigError{Schedule: n, Field: "name", Reason: "used by another schedule"})
			}
			seen[n] = true
		}
	}
	return errors.Join(errs...)
}

// compiled is a validated Config with its parsed parts.
type compiled struct {
	cfg   Config
	sched cron.Schedule // DST-safe, in loc
	loc   *time.Location
	args  json.RawMessage
}

// compile fills defaults, checks every field and parses cron, zone and args.
func (c *Config) compile() (*compiled, error) {
	c.defaults()
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &ConfigError{Schedule: c.Name, Field: field, Reason: fmt.Sprintf(format, a...)})
	}
	if !nameRe.MatchString(c.Name) {
		bad("name", "%q is not a schedule name: want 1 to 128 of [a-z0-9._-]", c.Name)
	}
	out := &compiled{}
	var err error
	if out.loc, err = loadZone(c.Timezone); err != nil {
		bad("timezone", "%v", err)
	}
	if out.loc != nil {
		if out.sched, err = parseCron(c.Cron, out.loc); err != nil {
			bad("cron", "%q: %v", c.Cron, err)
		}
	}
	switch {
	case c.Template == "":
		bad("template", "missing: name the workflow template each fire starts")
	case !templateRe.MatchString(c.Template):
		bad("template", "%q is not a template name: want 1 to 128 of [a-z0-9._-]", c.Template)
	}
	if c.Args != nil {
		if out.args, err = json.Marshal(c.Args); err != nil {
			bad("args", "cannot be sent as JSON: %v", err)
		}
	}
	if c.Priority < 0 || c.Priority > model.MaxPriority {
		bad("priority", "%d: want 0 to %d", c.Priority, model.MaxPriority)
	}
	if !oneOf(c.Misfire, MisfireSkip, MisfireOnce, MisfireAll) {
		bad("misfire", "%q: want skip, once or all", c.Misfire)
	}
	if c.MisfireLimit < 0 {
		bad("misfire_limit", "%d is negative", c.MisfireLimit)
	}
	if c.MisfireGrace < 0 {
		bad("misfire_grace", "%s is negative", c.MisfireGrace)
	}
	if !oneOf(c.Overlap, OverlapAllow, OverlapSkip) {
		bad("overlap", "%q: want allow or skip", c.Overlap)
	}
	if a := c.Approval; a != nil {
		if err := checkApprovalURL(a.URL); err != nil {
			bad("approval.url", "%q: %v", a.URL, err)
		}
		if a.Timeout < 0 {
			bad("approval.timeout", "%s is negative", a.Timeout)
		}
	}
	if t := c.Throttle; t != nil {
		if t.MaxRunning < 1 {
			bad("throttle.max_running", "%d: want at least 1", t.MaxRunning)
		}
		if !oneOf(t.WhenFull, ThrottleSkip, ThrottleWait) {
			bad("throttle.when_full", "%q: want skip or wait", t.WhenFull)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	out.cfg = *c
	return out, nil
}

// defaults fills the zero fields. Zero limit and grace mean the default:
// a limit of 0 would make "all" start nothing, a grace of 0 would make
// every fire late by the few milliseconds a wake-up takes.
func (c *Config) defaults() {
	if c.Timezone == "" {
		c.Timezone = "UTC"
	}
	if c.Misfire == "" {
		c.Misfire = DefaultMisfire
	}
	if c.MisfireLimit == 0 {
		c.MisfireLimit = DefaultMisfireLimit
	}
	if c.MisfireGrace == 0 {
		c.MisfireGrace = DefaultMisfireGrace
	}
	if c.Overlap == "" {
		c.Overlap = OverlapAllow
	}
	if a := c.Approval; a != nil && a.Timeout == 0 {
		a.Timeout = DefaultApprovalTimeout
	}
	if t := c.Throttle; t != nil && t.WhenFull == "" {
		t.WhenFull = ThrottleSkip
	}
}

// loadZone loads an IANA zone. "Local" is refused: copies on hosts set to
// different zones would disagree on fire times.
func loadZone(name string) (*time.Location, error) {
	if name == "Local" {
		return nil, errors.New(`"Local" depends on the host: name an IANA zone such as Europe/Berlin`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not a known IANA time zone", name)
	}
	return loc, nil
}

// parseCron parses spec in loc and wraps it so DST changes neither skip
// nor double a fire (see dstSafe).
func parseCron(spec string, loc *time.Location) (cron.Schedule, error) {
	s := strings.TrimSpace(spec)
	switch {
	case s == "":
		return nil, errors.New("missing")
	case strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ="):
		return nil, errors.New("no zone prefix here: use the timezone field")
	case strings.HasPrefix(s, "@every"):
		return nil, errors.New("@every counts from the last fire, so copies could not agree on fire times: use a cron expression such as \"*/5 * * * * *\"")
	}
	parsed, err := cronParser.Parse(s)
	if err != nil {
		return nil, err
	}
	spec2, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("unsupported schedule kind %T", parsed)
	}
	// The parser reads fields in time.Local when no prefix is given; the
	// zone is ours to set.
	spec2.Location = loc
	sched := newDSTSafe(spec2)
	// robfig gives up after five years without a match (e.g. "0 0 30 2 *").
	if sched.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, errors.New("never fires")
	}
	return sched, nil
}

func checkApprovalURL(raw string) error {
	if raw == "" {
		return errors.New("missing")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("scheme must be http or https")
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

func oneOf(s string, allowed ...string) bool { return slices.Contains(allowed, s) }
