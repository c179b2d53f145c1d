package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
)

// run is what every phase of one engine shares.
type run struct {
	o  *options
	db *coreDB
	cl *cluster
	c  *client.Client
}

// noopSpecs returns n plain noop job specs (params {}: the handler returns
// at once).
func noopSpecs(n int) []model.JobSpec {
	s := make([]model.JobSpec, n)
	for i := range s {
		s[i] = model.JobSpec{Type: "noop"}
	}
	return s
}

// succeededJobs counts finished jobs straight in the core database (see
// coreDB.count for why not through the API).
func (r *run) succeededJobs(ctx context.Context) (int64, error) {
	return r.db.count(ctx, `SELECT count(*) FROM jobs WHERE state = 'succeeded'`)
}

// instances counts workflow instances in state.
func (r *run) instances(ctx context.Context, state model.InstanceState) (int64, error) {
	return r.db.count(ctx, `SELECT count(*) FROM instances WHERE state = '`+string(state)+`'`)
}

// poller keeps a count fresh (every pollEvery) while a phase runs, so
// submitters can bound their backlog and the phase can see the end.
type poller struct {
	v    atomic.Int64
	err  atomic.Pointer[error]
	stop context.CancelFunc
	done chan struct{}
}

const pollEvery = 100 * time.Millisecond

func startPoller(ctx context.Context, count func(context.Context) (int64, error), base int64) *poller {
	ctx, cancel := context.WithCancel(ctx)
	p := &poller{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(pollEvery)
		defer t.Stop()
		for {
			if n, err := count(ctx); err == nil {
				p.v.Store(n - base)
			} else if ctx.Err() == nil {
				p.err.Store(&err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *poller) close() { p.stop(); <-p.done }

// waitFor returns when the count reaches target: the time it was first
// seen there (so the end is known to within pollEvery).
func (p *poller) waitFor(ctx context.Context, target int64, timeout time.Duration) (time.Time, error) {
	limit := time.Now().Add(timeout)
	for {
		if p.v.Load() >= target {
			return time.Now(), nil
		}
		if e := p.err.Load(); e != nil {
			return time.Time{}, *e
		}
		if time.Now().After(limit) {
			return time.Time{}, fmt.Errorf("only %d of %d done after %v", p.v.Load(), target, timeout)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// metrics scrapes the server's /metrics.
func (r *run) metrics(ctx context.Context) metricsSnapshot {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.cl.url+"/metrics", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return metricsSnapshot{}
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return parseMetrics(b)
}

// phaseMeter is the bookkeeping every measured phase does around its
// window: CPU of every process, the server's peak RSS and its per-route
// time.
type phaseMeter struct {
	r       *run
	cpu     *cpuMeter
	metrics metricsSnapshot
	hwm     bool
	profile chan struct{} // closed when the CPU profile is written (nil: none)
}

// startMeter starts measuring; resetPeak makes the server's peak RSS
// count from now (false: the caller reset it earlier and says whether that
// worked in the meter's hwm).
func (r *run) startMeter(ctx context.Context, resetPeak bool, phase string) *phaseMeter {
	pid := r.cl.server.pid()
	m := &phaseMeter{r: r, metrics: r.metrics(ctx)}
	if r.o.profiles != "" {
		m.profile = make(chan struct{})
		go func() {
			defer close(m.profile)
			file := filepath.Join(r.o.profiles, r.db.engine+"-"+phase+".pprof")
			if err := r.cl.cpuProfile(ctx, r.o.duration, file); err != nil {
				logf("profile of %s: %v", phase, err)
			}
		}()
	}
	if resetPeak {
		m.hwm = resetPeakRSS(pid)
	}
	m.cpu = startCPU(pid, r.cl.workerPIDs(), r.db.name)
	return m
}

// Usage is what a phase cost the server and the rest of the machine.
type Usage struct {
	CPU CPU `json:"cpu"`
	// ServerPeakRSSMB is the server's peak resident set during the phase
	// (since its start when PeakIsPhase is false).
	ServerPeakRSSMB float64     `json:"server_peak_rss_mb"`
	PeakIsPhase     bool        `json:"peak_is_phase"`
	ServerRSSMB     float64     `json:"server_rss_mb"`
	Routes          []RouteTime `json:"routes"`
}

func (m *phaseMeter) stop(ctx context.Context) Usage {
	if m.profile != nil {
		<-m.profile
	}
	pid := m.r.cl.server.pid()
	u := Usage{CPU: m.cpu.stop(), PeakIsPhase: m.hwm,
		ServerPeakRSSMB: round3(float64(memKB(pid, "VmHWM")) / 1024),
		ServerRSSMB:     round3(float64(memKB(pid, "VmRSS")) / 1024)}
	u.Routes = routeDelta(m.metrics, m.r.metrics(ctx))
	return u
}

// Throughput is the noop phase: jobs submitted in batches through the API
// for a while (the backlog bounded), claimed and completed by the remote
// processors; the rate is jobs over the time from the first submit to the
// last completion seen.
type Throughput struct {
	Jobs             int64   `json:"jobs"`
	Seconds          float64 `json:"seconds"`
	JobsPerSec       float64 `json:"jobs_per_s"`
	Batch            int     `json:"batch"`
	MaxBacklog       int64   `json:"max_backlog"`
	ServerCPUPer1000 float64 `json:"server_cpu_s_per_1000_jobs"`
	Usage
}

func (r *run) throughput(ctx context.Context) (*Throughput, error) {
	o := r.o
	if err := r.cl.startProcessors(ctx, o.processors, o.quota, false); err != nil {
		return nil, err
	}
	defer r.cl.stopWorkers()
	base, err := r.succeededJobs(ctx)
	if err != nil {
		return nil, err
	}
	backlog := int64(max(2000, 2*o.processors*o.quota))
	m := r.startMeter(ctx, true, "throughput")
	done := startPoller(ctx, r.succeededJobs, base)
	defer done.close()

	start := time.Now()
	var submitted atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range 2 { // two submitters: one encodes while the other waits on the server
		wg.Go(func() {
			for time.Since(start) < o.duration && ctx.Err() == nil {
				if submitted.Load()-done.v.Load() >= backlog {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				if _, err := r.c.SubmitJobs(ctx, noopSpecs(o.batch)); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				submitted.Add(int64(o.batch))
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("submit: %w", firstErr)
	}
	end, err := done.waitFor(ctx, submitted.Load(), 3*time.Minute)
	if err != nil {
		return nil, err
	}
	t := &Throughput{Jobs: submitted.Load(), Batch: o.batch, MaxBacklog: backlog, Usage: m.stop(ctx)}
	t.Seconds = round3(end.Sub(start).Seconds())
	t.JobsPerSec = round3(float64(t.Jobs) / end.Sub(start).Seconds())
	t.ServerCPUPer1000 = round3(t.CPU.Server / float64(t.Jobs) * 1000)
	return t, nil
}

// Dispatch is the idle-system latency phase: one job at a time, each
// submitted only after the previous one's outcome was delivered. Every
// latency starts at the client's clock when the submit's 201 was read
// ("ack"); both clocks are this machine's CLOCK_REALTIME.
type Dispatch struct {
	Jobs int `json:"jobs"`
	// TableRows is the size of the jobs table (finished jobs of earlier
	// phases included) when the phase started: claims scale with it.
	TableRows int64 `json:"table_rows"`
	// Submit: the submit call itself, request sent → ack.
	Submit Latency `json:"submit"`
	// ToClaim: ack → the job's started_at, stamped by the server's clock in
	// the claim transaction (µs in PostgreSQL, ms in SQLite): the claim,
	// a little before the handler can start.
	ToClaim Latency `json:"ack_to_claim"`
	// ToHandler: ack → the processor's "job started" log record, written
	// just before the handler goroutine is launched. The record has ms
	// resolution (truncated), so the midpoint of its millisecond is used:
	// ±0.5 ms. This is the figure the targets are judged on.
	ToHandler Latency `json:"ack_to_handler"`
	// ClaimToHandler: started_at → handler started: the claim's commit,
	// its answer over HTTP and the processor's hand-over, whatever the ack.
	ClaimToHandler Latency `json:"claim_to_handler"`
	// ToFinish: ack → finished_at (server clock, the completion's commit
	// under way): dispatch + run + report.
	ToFinish Latency `json:"ack_to_finished"`
	// BeforeAck counts jobs whose handler started before the submitter had
	// read the acknowledgement (a negative ToHandler).
	BeforeAck int `json:"handler_before_ack"`
}

func (r *run) dispatch(ctx context.Context) (*Dispatch, error) {
	o := r.o
	if err := r.cl.startProcessors(ctx, o.processors, o.quota, true); err != nil {
		return nil, err
	}
	defer r.cl.stopWorkers()
	rows, err := r.db.count(ctx, `SELECT count(*) FROM jobs`)
	if err != nil {
		return nil, err
	}
	time.Sleep(time.Second) // every processor is in its long poll: idle
	type sample struct {
		id        int64
		sent, ack time.Time
		handler   time.Time
	}
	const warm = 10 // not recorded: first connections, first plans
	var samples []sample
	for i := range o.dispatch + warm {
		sent := time.Now()
		j, err := r.c.SubmitJob(ctx, model.JobSpec{Type: "noop"})
		if err != nil {
			return nil, err
		}
		ack := time.Now()
		at, err := r.cl.events.wait(ctx, j.ID, 30*time.Second)
		if err != nil {
			return nil, err
		}
		if i >= warm {
			samples = append(samples, sample{j.ID, sent, ack, at.Add(500 * time.Microsecond)})
		}
		time.Sleep(5 * time.Millisecond) // the completion committed, the next claim parked
	}
	var sub, claim, handler, finish, claimHandler []time.Duration
	d := &Dispatch{Jobs: len(samples), TableRows: rows}
	for _, s := range samples {
		j, err := r.c.GetJob(ctx, s.id)
		if err != nil {
			return nil, err
		}
		if j.StartedAt == nil || j.FinishedAt == nil {
			return nil, fmt.Errorf("job %d: %s without started_at/finished_at", j.ID, j.State)
		}
		sub = append(sub, s.ack.Sub(s.sent))
		claim = append(claim, j.StartedAt.Sub(s.ack))
		handler = append(handler, s.handler.Sub(s.ack))
		finish = append(finish, j.FinishedAt.Sub(s.ack))
		claimHandler = append(claimHandler, s.handler.Sub(*j.StartedAt))
		if s.handler.Before(s.ack) {
			d.BeforeAck++
		}
	}
	d.Submit, d.ToClaim, d.ToHandler, d.ToFinish = summarize(sub), summarize(claim), summarize(handler), summarize(finish)
	d.ClaimToHandler = summarize(claimHandler)
	return d, nil
}

// startBatch is the number of instances of one start call.
const startBatch = 50

// benchTemplate is the 3-step workflow: two jobs, then a set.
const benchTemplate = `name: bench-3step
description: dpe bench - two noop jobs in sequence, then a set
steps:
  - id: first
    job: noop
  - id: second
    job: noop
  - set: {done: true}
`

// Workflow is the workflow phase: instances of bench-3step started through
// the API for a while (those in flight bounded), driven by one `dpe
// worker`, their jobs run by the processors; the rate is instances over
// the time from the first start to the last `succeeded` seen.
type Workflow struct {
	Instances       int64   `json:"instances"`
	Failed          int64   `json:"failed"`
	Seconds         float64 `json:"seconds"`
	InstancesPerSec float64 `json:"instances_per_s"`
	MaxInFlight     int64   `json:"max_in_flight"`
	ServerCPUPer100 float64 `json:"server_cpu_s_per_100_instances"`
	Usage
}

func (r *run) workflow(ctx context.Context) (*Workflow, error) {
	o := r.o
	const name = "bench-3step"
	if _, err := r.c.ImportTemplate(ctx, []byte(benchTemplate), "application/yaml"); err != nil {
		return nil, fmt.Errorf("import template: %w", err)
	}
	if err := r.cl.startProcessors(ctx, o.processors, o.quota, false); err != nil {
		return nil, err
	}
	defer r.cl.stopWorkers()
	if err := r.cl.startWorker(ctx); err != nil {
		return nil, err
	}
	base, err := r.instances(ctx, model.InstanceSucceeded)
	if err != nil {
		return nil, err
	}
	inFlight := int64(min(1000, 4*o.processors*o.quota)) // the worker drives up to 1000
	m := r.startMeter(ctx, true, "workflow")
	done := startPoller(ctx, func(ctx context.Context) (int64, error) {
		return r.instances(ctx, model.InstanceSucceeded)
	}, base)
	defer done.close()

	start := time.Now()
	var started atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	// Starts go in batches (POST /v1/workflows/batch), as the noop phase
	// submits its jobs: one call and one commit for startBatch instances.
	batch := make([]model.InstanceSpec, startBatch)
	for i := range batch {
		batch[i] = model.InstanceSpec{Template: name}
	}
	for range 4 {
		wg.Go(func() {
			for time.Since(start) < o.duration && ctx.Err() == nil {
				if started.Load()-done.v.Load() >= inFlight {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				res, err := r.c.StartWorkflows(ctx, batch)
				if err == nil {
					for _, x := range res {
						if x.Status != http.StatusCreated {
							err = fmt.Errorf("batch start: status %d: %s", x.Status, x.Error)
							break
						}
					}
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				started.Add(int64(len(res)))
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("start instance: %w", firstErr)
	}
	end, err := done.waitFor(ctx, started.Load(), 3*time.Minute)
	if err != nil {
		failed, _ := r.instances(ctx, model.InstanceFailed)
		return nil, fmt.Errorf("%w (%d failed)", err, failed)
	}
	w := &Workflow{Instances: started.Load(), MaxInFlight: inFlight, Usage: m.stop(ctx)}
	w.Failed, _ = r.instances(ctx, model.InstanceFailed)
	w.Seconds = round3(end.Sub(start).Seconds())
	w.InstancesPerSec = round3(float64(w.Instances) / end.Sub(start).Seconds())
	w.ServerCPUPer100 = round3(w.CPU.Server / float64(w.Instances) * 100)
	return w, nil
}
