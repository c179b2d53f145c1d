package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// Scale is one queue depth of the scaling phase. The depth is bulk-loaded
// by SQL, then kept: every job the processors finish is replaced through
// the API (batch submit), so the claims always walk a queue of that depth
// and both depths pay the same submit cost. A probe claims one job at a
// time (wait 0) next to the processors and times the call.
type Scale struct {
	Depth       int     `json:"depth"`
	LoadSeconds float64 `json:"load_seconds"`
	// TableRows is the size of the jobs table after the load (the queue
	// plus the finished jobs of earlier phases).
	TableRows int64 `json:"table_rows"`
	// ClaimsPerSec: jobs claimed and completed per second by the
	// processors (the probe's excluded) in the measured window.
	ClaimsPerSec float64 `json:"claims_per_s"`
	Window       float64 `json:"window_seconds"`
	// Probe: client-side time of POST /v1/claims for one job.
	Probe            Latency `json:"probe_claim"`
	ServerCPUPer1000 float64 `json:"server_cpu_s_per_1000_jobs"`
	Usage
}

func (r *run) scale(ctx context.Context, depth int) (*Scale, error) {
	o := r.o
	if err := r.db.deleteQueued(ctx); err != nil {
		return nil, err
	}
	s := &Scale{Depth: depth}
	pid := r.cl.server.pid()
	hwm := resetPeakRSS(pid) // the load itself counts towards the peak
	load, err := r.db.bulkQueue(ctx, depth)
	if err != nil {
		return nil, err
	}
	s.LoadSeconds = round3(load.Seconds())
	if s.TableRows, err = r.db.count(ctx, `SELECT count(*) FROM jobs`); err != nil {
		return nil, err
	}
	base, err := r.succeededJobs(ctx)
	if err != nil {
		return nil, err
	}
	done := startPoller(ctx, r.succeededJobs, base)
	defer done.close()

	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var refillErr atomic.Pointer[error]
	wg.Go(func() { // refill what was finished, in batches
		replaced := int64(0)
		for bg.Err() == nil {
			for need := done.v.Load() - replaced; need > 0 && bg.Err() == nil; need = done.v.Load() - replaced {
				n := min(need, int64(o.batch))
				if _, err := r.c.SubmitJobs(bg, noopSpecs(int(n))); err != nil {
					if bg.Err() == nil {
						refillErr.Store(&err)
					}
					return
				}
				replaced += n
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	if err := r.cl.startProcessors(ctx, o.processors, o.quota, false); err != nil {
		stopBG()
		wg.Wait()
		return nil, err
	}
	defer r.cl.stopWorkers()
	var probes []time.Duration
	var probeJobs atomic.Int64
	var mu sync.Mutex
	measuring := atomic.Bool{}
	wg.Go(func() { // the probe
		t := time.NewTicker(25 * time.Millisecond)
		defer t.Stop()
		for bg.Err() == nil {
			t0 := time.Now()
			jobs, err := r.c.Claim(bg, model.ClaimRequest{Processor: "bench-probe",
				Slots: map[string]int{"noop": 1}, LeaseTTL: model.Duration(30 * time.Second)})
			if err == nil && measuring.Load() {
				mu.Lock()
				probes = append(probes, time.Since(t0))
				mu.Unlock()
			}
			for _, j := range jobs {
				if _, err := r.c.Complete(bg, model.Completion{ID: j.ID, Epoch: j.Epoch, Result: json.RawMessage(`{}`)}); err == nil {
					probeJobs.Add(1)
				}
			}
			select {
			case <-bg.Done():
			case <-t.C:
			}
		}
	})
	time.Sleep(o.warmup)
	m := r.startMeter(ctx, false, fmt.Sprintf("scaling-%d", depth))
	m.hwm = hwm
	measuring.Store(true)
	d0, p0, t0 := done.v.Load(), probeJobs.Load(), time.Now()
	time.Sleep(o.duration)
	d1, p1, t1 := done.v.Load(), probeJobs.Load(), time.Now()
	measuring.Store(false)
	s.Usage = m.stop(ctx)
	stopBG()
	wg.Wait()
	if e := refillErr.Load(); e != nil {
		return nil, fmt.Errorf("refill: %w", *e)
	}
	if e := done.err.Load(); e != nil {
		return nil, fmt.Errorf("count: %w", *e)
	}
	// The counts are at most pollEvery old at both ends: the window they
	// cover is as long as the one slept, shifted.
	jobs := (d1 - d0) - (p1 - p0)
	s.Window = round3(t1.Sub(t0).Seconds())
	s.ClaimsPerSec = round3(float64(jobs) / t1.Sub(t0).Seconds())
	mu.Lock()
	s.Probe = summarize(probes)
	mu.Unlock()
	if d := d1 - d0; d > 0 {
		s.ServerCPUPer1000 = round3(s.CPU.Server / float64(d) * 1000)
	}
	return s, nil
}
