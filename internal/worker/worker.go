// Package worker is the workflow worker role: it claims workflow instances
// that need attention, decides their next step with the interpreter
// (package workflow) and commits the decision through the server under the
// instance's lease. In standby mode one worker of a group is active
// (through a named lease); in concurrent mode all are, each instance being
// driven by one worker at a time through its own lease.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"sync"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/holder"
	"github.com/dpe-engine/dpe/internal/lease"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/template"
	"github.com/dpe-engine/dpe/internal/tracing"
	"github.com/dpe-engine/dpe/internal/wire"
	"github.com/dpe-engine/dpe/internal/workflow"
)

// Modes.
const (
	Standby    = "standby"
	Concurrent = "concurrent"
)

// Config configures a Worker.
type Config struct {
	Client *client.Client
	ID     string // default holder.New("worker")
	Mode   string // Standby or Concurrent (default)
	Group  string // standby group (default "default")
	// Templates are glob patterns of the templates served (empty: all).
	Templates []string
	// Quota caps instances driven at once per template; MaxInstances caps
	// the others together (default 1000).
	Quota        map[string]int
	MaxInstances int
	LeaseTTL     time.Duration // instance leases (default 30s)
	GroupTTL     time.Duration // standby lease (default 10s)
	PollWait     time.Duration // long-poll (default 20s)
	// Batch caps the instances of one claim, whose decisions are then
	// committed together in one call and one transaction (default 200).
	Batch    int
	Pipeline int // batches being decided and committed at once (default 2)
	Parallel int // decisions computed at once (default 8)
	Log      *slog.Logger
	Clock    clock.Clock // the time decisions see (default clock.Real)
	// Tracing, when enabled, emits the spans of the steps and instances
	// this worker's decisions end (nil: none).
	Tracing *tracing.Provider
}

// Worker drives workflow instances.
type Worker struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	held map[int64]string // instance id → template, while leased
	busy map[int64]bool   // in a batch being decided and committed
	// interrupt ends the claim under way (nil when none), so that it is
	// made again without the instances of a batch just committed.
	interrupt context.CancelFunc
	tplMu     sync.Mutex
	tpls      map[string]*template.Template
	served    []string // template names matching cfg.Templates; nil = all
	servedN   bool     // cfg.Templates given but nothing matches yet
}

// New validates the configuration.
func New(cfg Config) (*Worker, error) {
	if cfg.Client == nil {
		return nil, errors.New("worker: a client is required")
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = Concurrent
	case Standby, Concurrent:
	default:
		return nil, fmt.Errorf("worker: mode %q: want standby or concurrent", cfg.Mode)
	}
	if cfg.Group == "" {
		cfg.Group = "default"
	}
	for _, g := range cfg.Templates {
		if _, err := path.Match(g, ""); err != nil {
			return nil, fmt.Errorf("worker: bad template pattern %q: %w", g, err)
		}
	}
	for t, n := range cfg.Quota {
		if n < 1 {
			return nil, fmt.Errorf("worker: quota %s=%d: want at least 1", t, n)
		}
	}
	if cfg.MaxInstances <= 0 {
		cfg.MaxInstances = 1000
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 30 * time.Second
	}
	if cfg.GroupTTL <= 0 {
		cfg.GroupTTL = lease.DefaultTTL
	}
	if cfg.GroupTTL < lease.MinTTL {
		return nil, fmt.Errorf("worker: group lease ttl %s is below %s", cfg.GroupTTL, lease.MinTTL)
	}
	if cfg.PollWait <= 0 {
		cfg.PollWait = 20 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 200
	}
	if cfg.Pipeline <= 0 {
		cfg.Pipeline = 2
	}
	if n := cfg.Batch * cfg.Pipeline; n > wire.MaxExclude {
		return nil, fmt.Errorf("worker: batch %d × pipeline %d = %d instances in flight, above the %d a claim may exclude",
			cfg.Batch, cfg.Pipeline, n, wire.MaxExclude)
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.ID == "" {
		cfg.ID = holder.New("worker")
	}
	return &Worker{
		cfg: cfg, log: cfg.Log.With("worker", cfg.ID),
		held: map[int64]string{}, busy: map[int64]bool{}, tpls: map[string]*template.Template{},
	}, nil
}

// ID is the worker's id.
func (w *Worker) ID() string { return w.cfg.ID }

// Run drives instances until ctx ends, then gives its leases back.
func (w *Worker) Run(ctx context.Context) error {
	w.log.Info("worker starting", "mode", w.cfg.Mode, "group", w.cfg.Group)
	if w.cfg.Mode == Concurrent {
		return w.active(ctx)
	}
	e := &lease.Elector{
		Acquirer: w.cfg.Client, Name: "worker/" + w.cfg.Group,
		Holder: w.cfg.ID, TTL: w.cfg.GroupTTL, Log: w.log,
	}
	return e.Run(ctx, func(ctx context.Context, _ model.Lease) error { return w.active(ctx) })
}

// active is the worker's duty while it may drive instances: claim the
// instances that need attention with what deciding needs (one call),
// decide them, commit the decisions together (one call, one transaction).
// While a batch is being decided and committed the next one is claimed
// (up to Pipeline batches at once); instances of a batch in flight are
// excluded from claims, so an instance is never decided twice at once.
func (w *Worker) active(ctx context.Context) error {
	var wg sync.WaitGroup
	hctx, stopHB := context.WithCancel(ctx)
	wg.Go(func() { w.heartbeats(hctx) })
	var rounds sync.WaitGroup
	slots := make(chan struct{}, w.cfg.Pipeline) // batches in flight
	for ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		if err := w.refreshServed(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("cannot list templates", "err", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		w.mu.Lock()
		w.interrupt = cancel
		w.mu.Unlock()
		ans, err := w.claim(cctx)
		w.mu.Lock()
		w.interrupt = nil
		w.mu.Unlock()
		interrupted := cctx.Err() != nil && ctx.Err() == nil
		cancel()
		if err != nil || len(ans.Details) == 0 {
			<-slots
			if err != nil && !interrupted && ctx.Err() == nil {
				w.log.Warn("claim failed", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		w.hold(ans.Items, ans.Details)
		rounds.Go(func() {
			defer func() { <-slots }()
			defer w.done(ans.Details)
			if advs := w.decideAll(ctx, ans.Details); len(advs) > 0 {
				if err := w.commit(ctx, advs, ans.Details); err != nil && ctx.Err() == nil {
					// The instances stay held and due: a later claim
					// returns them and they are decided again.
					w.log.Warn("cannot commit decisions", "instances", len(advs), "err", err)
					sleep(ctx, time.Second)
				}
			}
		})
	}
	rounds.Wait()
	stopHB()
	wg.Wait()
	w.releaseAll()
	return nil
}

// hold records claimed instances as leased (for heartbeats and quotas) and
// those about to be decided as busy.
func (w *Worker) hold(list []model.Instance, deciding []model.InstanceDetail) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, inst := range list {
		w.held[inst.ID] = inst.Template
	}
	for _, d := range deciding {
		w.busy[d.Instance.ID] = true
	}
}

// done marks a batch's instances as no longer being decided, and ends
// the long poll under way: it excludes them, and they may be due again
// already (a decision that set a timer that passed, an event meanwhile).
func (w *Worker) done(decided []model.InstanceDetail) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range decided {
		delete(w.busy, d.Instance.ID)
	}
	if w.interrupt != nil {
		w.interrupt()
	}
}

// decideAll decides the claimed instances, Parallel at a time, and
// returns the advances to commit in claim order. Instances no longer
// this worker's, or ended, are forgotten.
func (w *Worker) decideAll(ctx context.Context, ds []model.InstanceDetail) []model.Advance {
	advs := make([]*model.Advance, len(ds))
	sem := make(chan struct{}, w.cfg.Parallel)
	var wg sync.WaitGroup
	for i, d := range ds {
		if d.Instance.Worker != w.cfg.ID || d.Instance.State.Final() {
			w.forget(d.Instance.ID)
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			advs[i] = w.decide(ctx, d)
		})
	}
	wg.Wait()
	var out []model.Advance
	for _, a := range advs {
		if a != nil {
			out = append(out, *a)
		}
	}
	return out
}

// decide computes one instance's next advance; nil when it cannot (the
// reason is logged; the instance stays due and is tried again).
func (w *Worker) decide(ctx context.Context, d model.InstanceDetail) *model.Advance {
	log := w.log.With("instance", d.Instance.ID, "name", d.Instance.Name)
	tpl, err := w.template(ctx, d.Instance.Template, d.Instance.Version)
	if err != nil {
		log.Warn("cannot load template", "err", err)
		return nil
	}
	in := workflow.Input{Template: tpl, Instance: d.Instance, Steps: d.Steps, Now: w.cfg.Clock.Now(),
		Jobs: map[int64]model.Job{}, Children: map[int64]model.Instance{}, Context: ctx}
	for _, j := range d.Jobs {
		in.Jobs[j.ID] = j
	}
	for _, c := range d.Children {
		in.Children[c.ID] = c
	}
	adv, err := workflow.Decide(in)
	if err != nil {
		log.Error("cannot decide", "err", err)
		return nil
	}
	return &adv
}

// commit sends the advances in one call (group commit) and applies each
// answer: an ended instance or a lost lease is forgotten. details are
// what the advances were decided from (for their spans).
func (w *Worker) commit(ctx context.Context, advs []model.Advance, details []model.InstanceDetail) error {
	byID := make(map[int64]model.InstanceDetail, len(details))
	for _, d := range details {
		byID[d.Instance.ID] = d
	}
	ctx, span := w.startCommitSpan(ctx, advs, byID)
	res, err := w.cfg.Client.AdvanceInstances(ctx, advs)
	span.End()
	if err != nil {
		return err
	}
	for i, r := range res {
		id := advs[i].InstanceID
		switch {
		case r.Status == http.StatusOK && r.Instance != nil:
			w.traceAdvance(byID[id], advs[i], *r.Instance)
			if r.Instance.State.Final() {
				w.log.Info("instance ended", "instance", id, "name", r.Instance.Name, "state", r.Instance.State, "error", r.Instance.Error)
				w.forget(id)
			}
		case r.Status == http.StatusConflict || r.Status == http.StatusNotFound:
			w.log.Info("instance lease lost; dropping it", "instance", id, "err", r.Error)
			w.forget(id)
		default:
			w.log.Error("decision refused", "instance", id, "status", r.Status, "err", r.Error)
		}
	}
	return nil
}

// claim asks for due instances within the free capacity.
func (w *Worker) claim(ctx context.Context) (model.InstanceClaimAnswer, error) {
	w.mu.Lock()
	perTpl := map[string]int{}
	for _, t := range w.held {
		perTpl[t]++
	}
	req := model.InstanceClaimRequest{
		Worker: w.cfg.ID, Templates: w.served, Slots: map[string]int{},
		Default: max(0, w.cfg.MaxInstances-len(w.held)), Limit: w.cfg.Batch,
		LeaseTTL: model.Duration(w.cfg.LeaseTTL), Wait: model.Duration(w.cfg.PollWait),
		Detail: true,
	}
	for id := range w.busy {
		req.Exclude = append(req.Exclude, id)
	}
	for t, q := range w.cfg.Quota {
		req.Slots[t] = max(0, q-perTpl[t])
	}
	none := w.servedN
	w.mu.Unlock()
	if none {
		sleep(ctx, w.cfg.PollWait)
		return model.InstanceClaimAnswer{}, nil
	}
	// A long poll of PollWait (req.Wait): the client gives each attempt
	// that long plus its slack.
	ans, err := w.cfg.Client.ClaimInstances(ctx, req)
	if err != nil {
		return model.InstanceClaimAnswer{}, err
	}
	out := *ans
	if len(out.Details) != len(out.Items) {
		// Instances purged between the claim and the read of their
		// details: nothing to drive.
		got := make(map[int64]bool, len(out.Details))
		for _, d := range out.Details {
			got[d.Instance.ID] = true
		}
		for _, inst := range out.Items {
			if !got[inst.ID] {
				w.forget(inst.ID)
			}
		}
	}
	return out, nil
}

// refreshServed resolves the template patterns to names.
func (w *Worker) refreshServed(ctx context.Context) error {
	if len(w.cfg.Templates) == 0 {
		return nil
	}
	list, err := w.cfg.Client.ListTemplates(ctx)
	if err != nil {
		return err
	}
	var names []string
	for _, t := range list {
		for _, g := range w.cfg.Templates {
			if ok, _ := path.Match(g, t.Name); ok {
				names = append(names, t.Name)
				break
			}
		}
	}
	w.mu.Lock()
	w.served, w.servedN = names, len(names) == 0
	w.mu.Unlock()
	return nil
}

func (w *Worker) forget(id int64) {
	w.mu.Lock()
	delete(w.held, id)
	w.mu.Unlock()
}

// template returns a parsed template version, cached.
func (w *Worker) template(ctx context.Context, name string, version int) (*template.Template, error) {
	key := name + "@" + strconv.Itoa(version)
	w.tplMu.Lock()
	t := w.tpls[key]
	w.tplMu.Unlock()
	if t != nil {
		return t, nil
	}
	mt, err := w.cfg.Client.GetTemplate(ctx, name, version)
	if err != nil {
		return nil, err
	}
	t, err = template.Parse([]byte(mt.Source), template.ParseOptions{})
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", key, err)
	}
	w.tplMu.Lock()
	w.tpls[key] = t
	w.tplMu.Unlock()
	return t, nil
}

// heartbeats renews the leases of held instances.
func (w *Worker) heartbeats(ctx context.Context) {
	t := time.NewTicker(w.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		ids := make([]int64, 0, len(w.held))
		for id := range w.held {
			ids = append(ids, id)
		}
		w.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		lost, err := w.cfg.Client.WorkerHeartbeat(ctx, model.InstanceLeases{Worker: w.cfg.ID, IDs: ids, LeaseTTL: model.Duration(w.cfg.LeaseTTL)})
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("instance heartbeat failed", "err", err)
			}
			continue
		}
		for _, id := range lost {
			w.forget(id)
		}
	}
}

// releaseAll gives every held instance back (a worker stopping).
func (w *Worker) releaseAll() {
	w.mu.Lock()
	ids := make([]int64, 0, len(w.held))
	for id := range w.held {
		ids = append(ids, id)
	}
	w.held = map[int64]string{}
	w.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.cfg.Client.WorkerRelease(ctx, model.InstanceLeases{Worker: w.cfg.ID, IDs: ids}); err != nil {
		w.log.Warn("cannot release instances; their leases will expire", "err", err)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
