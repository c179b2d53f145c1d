package metrics_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/metrics"
	"github.com/dpe-engine/dpe/internal/model"
)

// fakeSource counts the readings and answers what its fields hold.
type fakeSource struct {
	mu     sync.Mutex
	reads  int
	fail   error
	counts map[model.JobState]int
	procs  []model.Processor
	leases []model.Lease
}

func (f *fakeSource) JobCounts(context.Context) (map[model.JobState]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.counts, f.fail
}

func (f *fakeSource) JobQueueCounts(context.Context) (map[string]map[model.JobState]int, error) {
	return map[string]map[model.JobState]int{"noop": {model.JobQueued: 2}, "ffmpeg": {model.JobRunning: 1}}, nil
}

func (f *fakeSource) ProcessorList(context.Context, time.Time) ([]model.Processor, error) {
	return f.procs, nil
}

func (f *fakeSource) LeaseList(_ context.Context, prefix string) ([]model.Lease, error) {
	var out []model.Lease
	for _, l := range f.leases {
		if strings.HasPrefix(l.Name, prefix) {
			out = append(out, l)
		}
	}
	return out, nil
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// TestStateCachesReadings: a storm of scrapes within the cache time costs
// one reading of the store; a failed reading serves the previous one.
func TestStateCachesReadings(t *testing.T) {
	src := &fakeSource{counts: map[model.JobState]int{model.JobQueued: 3}}
	clk := clock.NewFake(t0)
	st := metrics.NewState(metrics.StateConfig{Source: src, Now: clk.Now, CacheFor: 5 * time.Second,
		Log: slog.New(slog.DiscardHandler)})
	reg := prometheus.NewRegistry()
	reg.MustRegister(st)
	for range 50 {
		if _, err := reg.Gather(); err != nil {
			t.Fatal(err)
		}
	}
	if src.reads != 1 {
		t.Errorf("50 scrapes within the cache time read the store %d times, want 1", src.reads)
	}
	clk.Advance(5 * time.Second)
	src.counts = map[model.JobState]int{model.JobQueued: 7}
	src.fail = errors.New("database down")
	fams := gather(t, reg)
	if got := value(fams, "dpe_jobs", "state=queued"); got != 3 {
		t.Errorf("queued after a failed reading = %v, want the previous 3", got)
	}
	if got := value(fams, "dpe_metrics_scrape_errors_total"); got != 1 {
		t.Errorf("scrape errors = %v, want 1", got)
	}
	src.fail = nil
	if got := value(gather(t, reg), "dpe_jobs", "state=queued"); got != 7 {
		t.Errorf("queued after the store recovered = %v, want 7", got)
	}
}

// gather collects reg's families by name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	list, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	fams := make(map[string]*dto.MetricFamily, len(list))
	for _, f := range list {
		fams[f.GetName()] = f
	}
	return fams
}

// TestStateReadsPlant: slots count only live processors; a standby group
// is active while a holder's lease runs, and other leases are not groups.
func TestStateReadsPlant(t *testing.T) {
	src := &fakeSource{
		procs: []model.Processor{
			{ID: "a", Quota: map[string]int{"noop": 4, "ffmpeg": 2}, Running: 5, LastSeen: t0.Add(-10 * time.Second)},
			{ID: "b", Quota: map[string]int{"noop": 2}, Running: 1, LastSeen: t0},
			{ID: "dead", Quota: map[string]int{"noop": 8}, Running: 8, LastSeen: t0.Add(-time.Hour)},
		},
		leases: []model.Lease{
			{Name: "worker/default", Holder: "w1", Until: t0.Add(time.Second)},
			{Name: "trigger/nightly", Holder: "s1", Until: t0.Add(-time.Second)},
			{Name: "server/cleaner", Holder: "", Until: time.Time{}},
			{Name: "inst/42", Holder: "w1", Until: t0.Add(time.Minute)},
		},
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewState(metrics.StateConfig{Source: src, Now: clock.NewFake(t0).Now}))
	fams := gather(t, reg)
	for _, tc := range []struct {
		name  string
		label string
		want  float64
	}{
		{"dpe_group_active_copies", "group=worker/default", 1},
		{"dpe_group_active_copies", "group=trigger/nightly", 0}, // lease ran out
		{"dpe_group_active_copies", "group=server/cleaner", 0},  // released
		{"dpe_group_active_copies", "group=inst/42", -1},        // not a group
		{"dpe_job_queue", "type=noop,state=queued", 2},
		{"dpe_job_queue", "type=noop,state=running", 0},
		{"dpe_job_queue", "type=ffmpeg,state=running", 1},
		{"dpe_processor_slots", "type=noop", 6},
		{"dpe_processor_slots", "type=ffmpeg", 2},
		{"dpe_processor_slots_use", "use=used", 6},
		{"dpe_processor_slots_use", "use=free", 2},
		{"dpe_processors", "status=live", 2},
		{"dpe_processors", "status=stale", 1},
	} {
		if got := value(fams, tc.name, strings.Split(tc.label, ",")...); got != tc.want {
			t.Errorf("%s{%s} = %v, want %v", tc.name, tc.label, got, tc.want)
		}
	}
	if n := len(fams["dpe_group_active_copies"].GetMetric()); n != 3 {
		t.Errorf("%d group series, want 3", n)
	}
}
