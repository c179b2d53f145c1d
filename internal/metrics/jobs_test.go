package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dpe-engine/dpe/internal/metrics"
	"github.com/dpe-engine/dpe/internal/model"
)

// TestJobsSeries: dispatch latency runs from the later of creation and
// run-after; only final states count as outcomes; a nil *Jobs is a no-op.
func TestJobsSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.NewJobs(reg)
	now := t0.Add(time.Minute)
	m.Claimed(now, []model.Job{
		{Type: "a", CreatedAt: t0},                                  // waited 60s
		{Type: "a", CreatedAt: t0, RunAfter: now.Add(-time.Second)}, // 1s after its back-off
		{Type: "b", CreatedAt: now.Add(time.Second), RunAfter: t0},  // clock skew: 0
	})
	m.Ended(model.Job{Type: "a", State: model.JobSucceeded})
	m.Ended(model.Job{Type: "a", State: model.JobQueued}) // a retry, not an outcome
	m.Ended(model.Job{Type: "b", State: model.JobFailed})
	m.Rescued(2, 1, 0)
	var none *metrics.Jobs
	none.Claimed(now, []model.Job{{Type: "a"}})
	none.Ended(model.Job{Type: "a", State: model.JobFailed})
	none.Rescued(1, 1, 1)

	fams := gather(t, reg)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"dpe_job_attempts_total", []string{"type=a"}, 2},
		{"dpe_job_attempts_total", []string{"type=b"}, 1},
		{"dpe_job_dispatch_seconds", []string{"type=a"}, 2},
		{"dpe_job_outcomes_total", []string{"type=a", "state=succeeded"}, 1},
		{"dpe_job_outcomes_total", []string{"type=a", "state=queued"}, -1},
		{"dpe_job_outcomes_total", []string{"type=b", "state=failed"}, 1},
		{"dpe_job_lease_expired_total", []string{"result=requeued"}, 2},
		{"dpe_job_lease_expired_total", []string{"result=failed"}, 1},
		{"dpe_job_lease_expired_total", []string{"result=canceled"}, 0},
	} {
		if got := value(fams, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	for _, f := range fams["dpe_job_dispatch_seconds"].GetMetric() {
		want := 61.0 // type a: 60s + 1s
		if f.GetLabel()[0].GetValue() == "b" {
			want = 0
		}
		if got := f.GetHistogram().GetSampleSum(); got != want {
			t.Errorf("dispatch seconds of %s: sum %v, want %v", f.GetLabel()[0].GetValue(), got, want)
		}
	}
}
