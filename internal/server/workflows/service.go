// Package workflows is the workflow service of the server: template import
// and export, starting and managing instances, and the calls workflow
// workers make to drive them (claim, state, advance). The interpretation
// itself happens in the workers (package workflow); the server validates
// and applies their decisions atomically under each instance's lease.
package workflows

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/metrics"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server/wake"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/template"
	"github.com/dpe-engine/dpe/internal/wire"
)

// Store is what the service needs of the core database.
type Store interface {
	store.TemplateStore
	store.InstanceStore
	store.JobStore
	store.LogStore
}

// Limits.
const (
	MaxWait         = wire.MaxWait
	DefaultLeaseTTL = 30 * time.Second
	MaxClaim        = wire.MaxClaim    // instances per worker claim
	MaxAdvances     = wire.MaxAdvances // advances per batch
	MaxStarts       = wire.MaxStarts   // instances per batch start
	MaxExclude      = wire.MaxExclude  // ids a worker claim may exclude (its batches in flight)
	MaxNameLen      = wire.MaxInstanceNameLen
)

// validName reports whether an instance name is acceptable: 1 to
// MaxNameLen bytes of valid UTF-8 without control characters, not starting
// or ending with a space. Names are built from file paths and row keys by
// triggers, so they are otherwise free.
func validName(name string) bool {
	if name == "" || len(name) > MaxNameLen || !utf8.ValidString(name) || strings.TrimSpace(name) != name {
		return false
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Config configures a Service.
type Config struct {
	Store Store
	Clock clock.Clock
	Log   *slog.Logger
	Wake  *wake.Hub
	Tick  time.Duration
	// KnownJobType reports whether jobs of a type may be submitted.
	KnownJobType func(ctx context.Context, name string) (bool, error)
	// Metrics receives the outcomes of instances (nil: none).
	Metrics *metrics.Workflows
}

// Service is the workflow service.
type Service struct {
	store    Store
	clock    clock.Clock
	log      *slog.Logger
	wake     *wake.Hub
	tick     time.Duration
	knownJob func(ctx context.Context, name string) (bool, error)
	metrics  *metrics.Workflows
	builtins map[string]jobtype.Spec

	mu     sync.Mutex
	cache  map[string]*template.Template // by name@version
	latest map[string]latestTemplate     // by name
}

// latestTemplate is a cached answer to "the latest version of name".
type latestTemplate struct {
	t  model.Template
	at time.Time
}

// latestTTL bounds how long a start may use a cached latest version: a
// trigger starting thousands of instances reads the template once, and a
// newly imported version is used within this time.
const latestTTL = time.Second

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Wake == nil {
		cfg.Wake = wake.NewHub()
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	return &Service{
		store: cfg.Store, clock: cfg.Clock, log: cfg.Log, wake: cfg.Wake, tick: cfg.Tick, metrics: cfg.Metrics,
		knownJob: cfg.KnownJobType, builtins: jobtype.Builtins(), cache: make(map[string]*template.Template),
		latest: make(map[string]latestTemplate),
	}
}

// parseOptions checks job types, sub-templates and literal job params.
func (s *Service) parseOptions(ctx context.Context) template.ParseOptions {
	return template.ParseOptions{
		KnownJobType: func(name string) bool {
			if s.knownJob == nil {
				_, ok := s.builtins[name]
				return ok
			}
			ok, err := s.knownJob(ctx, name)
			return err == nil && ok
		},
		KnownTemplate: func(name string) bool {
			_, err := s.store.TemplateGet(ctx, name, 0)
			return err == nil
		},
		JobParams: func(jobType string, params map[string]any) error {
			spec, ok := s.builtins[jobType]
			if !ok {
				return nil
			}
			b, err := json.Marshal(params)
			if err != nil {
				return err
			}
			// Params computed by expressions are absent here: check
			// the given ones only, not that required ones are present.
			partial := spec
			partial.Params = make([]jobtype.Param, len(spec.Params))
			for i, p := range spec.Params {
				p.Required = false
				partial.Params[i] = p
			}
			return partial.Validate(b)
		},
	}
}

// Import parses, validates and stores a template document. It returns the
// stored version and whether it was new (an identical re-import is not).
func (s *Service) Import(ctx context.Context, source []byte) (model.Template, bool, error) {
	t, err := template.Parse(source, s.parseOptions(ctx))
	if err != nil {
		return model.Template{}, false, err
	}
	if err := s.checkCycle(ctx, t); err != nil {
		return model.Template{}, false, err
	}
	// The stored canonical form leaves the version out (the row holds it),
	// so re-importing the same content, numbered or not, is recognised.
	unversioned := *t
	unversioned.Version = 0
	canon, err := unversioned.Canonical()
	if err != nil {
		return model.Template{}, false, fmt.Errorf("template %s: canonical form: %w", t.Name, err)
	}
	mt := model.Template{Name: t.Name, Version: t.Version, Description: t.Description, Source: string(source), Canonical: canon}
	stored, created, err := s.store.TemplatePut(ctx, mt, s.clock.Now())
	if err != nil {
		return stored, false, fmt.Errorf("store template %s: %w", t.Name, err)
	}
	return stored, created, nil
}

// Template returns a stored template version (0: latest).
func (s *Service) Template(ctx context.Context, name string, version int) (model.Template, error) {
	t, err := s.store.TemplateGet(ctx, name, version)
	if err != nil {
		return t, fmt.Errorf("template %s: %w", name, err)
	}
	return t, nil
}

// Templates lists the latest version of every template.
func (s *Service) Templates(ctx context.Context) ([]model.Template, error) {
	list, err := s.store.TemplateList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	if list == nil {
		list = []model.Template{}
	}
	return list, nil
}

// DeleteTemplate deletes a template; refused while instances of it run.
func (s *Service) DeleteTemplate(ctx context.Context, name string) error {
	if err := s.store.TemplateDelete(ctx, name); err != nil {
		return fmt.Errorf("delete template %s: %w", name, err)
	}
	return nil
}

// templateFor returns a stored template version (0: the latest, cached
// for latestTTL).
func (s *Service) templateFor(ctx context.Context, name string, version int) (model.Template, error) {
	if version == 0 {
		s.mu.Lock()
		l, ok := s.latest[name]
		s.mu.Unlock()
		if ok && time.Since(l.at) < latestTTL {
			return l.t, nil
		}
	}
	t, err := s.store.TemplateGet(ctx, name, version)
	if err != nil {
		return t, err
	}
	if version == 0 {
		s.mu.Lock()
		if len(s.latest) > 1000 {
			clear(s.latest)
		}
		s.latest[name] = latestTemplate{t: t, at: time.Now()}
		s.mu.Unlock()
	}
	return t, nil
}

// parsed returns the parsed form of a stored template, cached.
func (s *Service) parsed(ctx context.Context, mt model.Template) (*template.Template, error) {
	key := mt.Name + "@" + strconv.Itoa(mt.Version)
	s.mu.Lock()
	t := s.cache[key]
	s.mu.Unlock()
	if t != nil {
		return t, nil
	}
	// Stored templates were validated at import; parse without lookups so
	// a job type retired since does not make old versions unreadable.
	t, err := template.Parse([]byte(mt.Source), template.ParseOptions{})
	if err != nil {
		return nil, fmt.Errorf("stored template %s: %w", key, err)
	}
	s.mu.Lock()
	if len(s.cache) > 1000 {
		clear(s.cache)
	}
	s.cache[key] = t
	s.mu.Unlock()
	return t, nil
}

// Start creates an instance. Starting a name that exists with the same
// template and args returns that instance (existing true), never a second
// one; with another template or other args it is refused with an
// *ExistsError (a conflict). Without a name, the Idempotency-Key (when
// given) names it, so a retried start is idempotent.
func (s *Service) Start(ctx context.Context, spec model.InstanceSpec, key string) (model.Instance, bool, error) {
	if spec.ParentID != 0 || spec.ParentStep != "" {
		return model.Instance{}, false, model.Invalid("parent_id", "sub-workflows are started by their parent's workflow step, not through the start API")
	}
	spec, err := s.Prepare(ctx, spec, key)
	if err != nil {
		return model.Instance{}, false, err
	}
	inst, existing, err := s.store.InstanceCreate(ctx, spec, s.clock.Now())
	if err != nil {
		return inst, false, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	if existing {
		if err := sameStart(inst, spec); err != nil {
			return inst, true, err
		}
	}
	if !existing {
		s.wake.Signal(wake.Instances)
	}
	return inst, existing, nil
}

// StartMany starts instances as Start does, with one commit for all
// (group commit). key is the call's Idempotency-Key: a spec without a name
// is named from it and its position, so a retried batch starts nothing
// twice. A spec that is invalid or refused by its concurrency key fails
// alone, in its result.
func (s *Service) StartMany(ctx context.Context, specs []model.InstanceSpec, key string) ([]store.CreateResult, error) {
	if len(specs) > MaxStarts {
		return nil, model.Invalid("workflows", "at most %d per call, got %d", MaxStarts, len(specs))
	}
	out := make([]store.CreateResult, len(specs))
	var idx []int
	var batch []model.InstanceSpec
	for i, spec := range specs {
		if spec.ParentID != 0 || spec.ParentStep != "" {
			out[i].Err = model.Invalid(fmt.Sprintf("workflows[%d].parent_id", i), "sub-workflows are started by their parent's workflow step")
			continue
		}
		itemKey := ""
		if key != "" {
			itemKey = key + "#" + strconv.Itoa(i)
		}
		p, err := s.Prepare(ctx, spec, itemKey)
		switch {
		case errors.Is(err, model.ErrInvalid):
			out[i].Err = fmt.Errorf("workflows[%d]: %w", i, err)
			continue
		case err != nil:
			return nil, err
		}
		idx = append(idx, i)
		batch = append(batch, p)
	}
	if len(batch) == 0 {
		return out, nil
	}
	res, err := s.store.InstanceCreateMany(ctx, batch, s.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("start %d instances: %w", len(batch), err)
	}
	created := false
	for k, r := range res {
		if r.Err == nil && r.Existing {
			if err := sameStart(r.Instance, batch[k]); err != nil {
				r = store.CreateResult{Err: fmt.Errorf("workflows[%d]: %w", idx[k], err)}
			}
		}
		out[idx[k]] = r
		created = created || (r.Err == nil && !r.Existing)
	}
	if created {
		s.wake.Signal(wake.Instances)
	}
	return out, nil
}

// Created wakes the workers after instances were created elsewhere (by a
// trigger's transaction).
func (s *Service) Created() { s.wake.Signal(wake.Instances) }

// Prepare validates a start and completes its spec: the template version
// resolved, args bound to the template's declared types and defaults, the
// name chosen, the concurrency key computed. It changes nothing.
func (s *Service) Prepare(ctx context.Context, spec model.InstanceSpec, key string) (model.InstanceSpec, error) {
	if spec.Template == "" {
		return spec, model.Invalid("template", "required")
	}
	if err := wire.CheckName("template", spec.Template); err != nil {
		return spec, err
	}
	if spec.Version < 0 {
		return spec, model.Invalid("version", "must not be negative")
	}
	if spec.Priority < 0 || spec.Priority > model.MaxPriority {
		return spec, model.Invalid("priority", "must be between 0 and %d, got %d", model.MaxPriority, spec.Priority)
	}
	mt, err := s.templateFor(ctx, spec.Template, spec.Version)
	if errors.Is(err, model.ErrNotFound) {
		if spec.Version > 0 {
			return spec, model.Invalid("version", "template %s has no version %d", spec.Template, spec.Version)
		}
		return spec, model.Invalid("template", "unknown template %q", spec.Template)
	}
	if err != nil {
		return spec, fmt.Errorf("template %s: %w", spec.Template, err)
	}
	t, err := s.parsed(ctx, mt)
	if err != nil {
		return spec, err
	}
	var given map[string]any
	if len(spec.Args) > 0 && string(spec.Args) != "null" {
		if err := json.Unmarshal(spec.Args, &given); err != nil {
			return spec, model.Invalid("args", "must be a JSON object: %v", err)
		}
	}
	args, err := t.BindArgs(given)
	if err != nil {
		return spec, err
	}
	spec.Version = mt.Version
	if spec.Args, err = json.Marshal(args); err != nil {
		return spec, fmt.Errorf("encode args: %w", err)
	}
	switch {
	case spec.Name != "":
	case key != "":
		spec.Name = spec.Template + "/" + key
	default:
		var b [6]byte
		_, _ = rand.Read(b[:])
		spec.Name = spec.Template + "-" + hex.EncodeToString(b[:])
	}
	if err := wire.CheckLen("name", spec.Name, MaxNameLen); err != nil {
		return spec, err
	}
	if !validName(spec.Name) {
		return spec, model.Invalid("name", "bad instance name %q: 1 to %d bytes of UTF-8, no control characters, no surrounding spaces", spec.Name, MaxNameLen)
	}
	spec.ConcurrencyPolicy = t.Concurrency
	if spec.ConcurrencyPolicy == "" {
		spec.ConcurrencyPolicy = model.ConcurrencyAllow
	}
	if spec.ConcurrencyPolicy != model.ConcurrencyAllow {
		spec.ConcurrencyKey = spec.Template
		if t.ConcurrencyKey != nil {
			k, err := t.ConcurrencyKey.EvalString(template.Env{Args: args, Instance: template.InstanceView{Name: spec.Name, Priority: spec.Priority}})
			if err != nil {
				return spec, model.Invalid("args", "concurrency_key: %v", err)
			}
			spec.ConcurrencyKey = spec.Template + ":" + k
		}
	}
	return spec, nil
}
