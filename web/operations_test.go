package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/scheduler"
	"github.com/dpe-engine/dpe/internal/testbin"
	"github.com/dpe-engine/dpe/internal/trigger"
	"github.com/dpe-engine/dpe/internal/wav"
)

// TestBrowserOperations walks what an operator does beyond watching: retry
// a failed workflow and see it succeed, fire a schedule now, pause and
// resume it, look at a waveform, and see a processor killed with SIGKILL
// marked gone on the farm page.
func TestBrowserOperations(t *testing.T) {
	base, c := stack(t, "")
	ctx := context.Background()
	// A real scheduler: it reports its config, so the page shows the next
	// fire times and offers "fire now".
	sched, err := scheduler.New(scheduler.Options{Client: c, Mode: trigger.Mode{Mode: trigger.Concurrent},
		Schedules: []scheduler.Config{{Name: "hourly", Cron: "0 * * * *", Template: "tick"}}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "scheduler", sched.Run)
	b := browser(t, base)

	t.Run("retry a failed workflow and see it succeed", func(t *testing.T) {
		b.t = t
		path := filepath.Join(t.TempDir(), "late.txt")
		inst, err := c.StartWorkflow(ctx, model.InstanceSpec{Template: "sum", Args: []byte(fmt.Sprintf(`{"path":%q}`, path))})
		if err != nil {
			t.Fatal(err)
		}
		waitState(t, c, inst.ID, model.InstanceFailed)
		b.open(fmt.Sprintf("#/workflows/%d", inst.ID))
		b.waitFor(`document.querySelector('h1')?.innerText.includes('FAILED') && document.querySelector('#retry')?.hidden === false`, "the failed workflow's retry button")
		if err := os.WriteFile(path, []byte("here now\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		b.click("#retry")
		b.waitFor(`document.querySelector('#dialog')?.open`, "the confirmation")
		b.click("#dialog-yes")
		b.waitFor(`document.querySelector('h1')?.innerText.includes('SUCCEEDED')`, "the retried workflow to succeed live")
		id, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.hash.split('/').pop()`))
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		fmt.Sscan(id, &n)
		d := waitState(t, c, n, model.InstanceSucceeded)
		if !strings.Contains(string(d.Steps[len(d.Steps)-1].Result), "checksum") {
			t.Errorf("retried step's result %s lacks the checksum", d.Steps[len(d.Steps)-1].Result)
		}
		b.shot("workflow-retried")
	})

	t.Run("fire a schedule now", func(t *testing.T) {
		b.t = t
		b.open("#/triggers")
		b.waitFor(`(r => r && r.innerText.includes('0 * * * *') && r.querySelectorAll('ol.next li').length === 3)([...document.querySelectorAll('#trigger-list tbody tr')].find(r => r.innerText.includes('hourly')))`, "the schedule's config and next fires")
		b.waitFor(`document.querySelector('#fire-hourly')?.disabled === false`, "the fire now button")
		b.shot("triggers")
		b.click("#fire-hourly")
		b.waitFor(`document.querySelector('#dialog')?.open && document.querySelector('#dialog-title').textContent.includes('hourly')`, "the confirmation")
		b.click("#dialog-yes")
		b.waitFor(`/^#\/workflows\/\d+$/.test(location.hash) && document.querySelector('h1')?.innerText.includes('schedule/hourly/manual/')`, "the fired workflow's page")
		b.waitFor(`document.querySelector('h1')?.innerText.includes('SUCCEEDED')`, "the fired workflow to finish")
		page, err := c.ListWorkflows(ctx, client.WorkflowQuery{Trigger: "hourly"})
		if err != nil || page.Total != 1 || !strings.HasPrefix(page.Items[0].Name, "schedule/hourly/manual/") {
			t.Fatalf("workflows of trigger hourly: %+v %v", page, err)
		}
		// The list filtered by the trigger shows it.
		b.open("#/workflows?trigger=hourly")
		b.waitFor(`document.querySelector('#wf-list')?.innerText.includes('1 shown of 1 matching') && document.querySelector('#f-trigger')?.value === 'hourly'`, "the list filtered by trigger")
	})

	t.Run("pause and resume a trigger", func(t *testing.T) {
		b.t = t
		b.open("#/triggers")
		b.click("#pause-hourly")
		b.waitFor(`document.querySelector('#dialog')?.open && document.querySelector('#dialog-title').textContent.includes('Pause trigger hourly')`, "the pause confirmation")
		b.click("#dialog-yes")
		b.waitFor(`(r => r && r.innerText.includes('PAUSED') && r.querySelectorAll('ol.next li').length === 0)([...document.querySelectorAll('#trigger-list tbody tr')].find(r => r.innerText.includes('hourly')))`, "the paused schedule")
		b.waitFor(`document.querySelector('#fire-hourly')?.disabled === true && document.querySelector('#resume-hourly')`, "fire now off, resume offered")
		if tr, err := c.GetTrigger(ctx, "hourly"); err != nil || !tr.Paused {
			t.Fatalf("after pause: %+v %v", tr, err)
		}
		b.shot("trigger-paused")
		b.click("#resume-hourly")
		b.waitFor(`document.querySelector('#dialog')?.open && document.querySelector('#dialog-title').textContent.includes('Resume')`, "the resume confirmation")
		b.click("#dialog-yes")
		b.waitFor(`document.querySelector('#pause-hourly') && document.querySelector('#fire-hourly')?.disabled === false`, "the running schedule")
		if tr, err := c.GetTrigger(ctx, "hourly"); err != nil || tr.Paused || len(tr.Next) != 3 {
			t.Fatalf("after resume: %+v %v", tr, err)
		}
	})

	t.Run("waveform on the job page", func(t *testing.T) {
		b.t = t
		dir := t.TempDir()
		src := filepath.Join(dir, "tone.wav")
		writeWAV(t, src)
		jobs, err := c.SubmitJobs(ctx, []model.JobSpec{{Type: "audio.waveform",
			Params: []byte(fmt.Sprintf(`{"path":%q,"peaks":%q,"png":%q}`, src, filepath.Join(dir, "tone.peaks"), filepath.Join(dir, "tone.png")))}})
		if err != nil {
			t.Fatal(err)
		}
		id := jobs[0].ID
		j := eventually.Value(t, 30*time.Second, func() (*model.Job, error) { return c.GetJob(ctx, id) },
			func(j *model.Job) bool { return j.State == model.JobSucceeded || j.State == model.JobFailed }, "the waveform job's end")
		if j.State != model.JobSucceeded {
			t.Fatalf("waveform job: %s %s", j.State, j.Error)
		}
		var res struct {
			Overview struct{ Columns int } `json:"overview"`
		}
		if err := json.Unmarshal(j.Result, &res); err != nil || res.Overview.Columns == 0 {
			t.Fatalf("result %s: no overview (%v)", j.Result, err)
		}
		b.open(fmt.Sprintf("#/jobs/%d", id))
		b.waitFor(`document.querySelector('#waveform canvas')?.dataset.columns === '`+fmt.Sprint(res.Overview.Columns)+`'`, "the waveform canvas")
		b.waitFor(`document.querySelector('#job-detail')?.innerText.includes('columns, drawn above')`, "the result without the overview's numbers")
		// The tone is drawn: the middle column has accent pixels well off
		// the axis (there the sine is at 0.45 of full scale: 45% of the
		// lane), the first columns almost none (it fades in).
		b.waitFor(`(c => { const g = c.getContext('2d'); const d = g.getImageData(c.width / 2, 0, 1, c.height).data; let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 2] > 200) n++; return n > c.height / 3; })(document.querySelector('#waveform canvas'))`, "the drawn peaks")
		b.waitFor(`(c => { const d = c.getContext('2d').getImageData(0, 0, 1, c.height).data; let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 2] > 200) n++; return n < c.height / 10; })(document.querySelector('#waveform canvas'))`, "the quiet start")
		b.shot("job-waveform")
	})

	t.Run("a killed processor is marked gone", func(t *testing.T) {
		b.t = t
		p := startProcessor(t, base, "farm-kill")
		b.open("#/farm")
		row := `[...document.querySelectorAll('#processors tbody tr')].find(r => r.innerText.includes('farm-kill'))`
		b.waitFor(`(r => r && r.innerText.includes('LIVE') && r.innerText.includes('0.1.0') && /noop: 0 used, 2 free of 2/.test(r.innerText))(`+row+`)`, "the live processor with version and slots")
		b.shot("farm")
		killed := time.Now()
		if err := p.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		b.waitFor(`(r => r && r.innerText.includes('GONE') && r.classList.contains('row-failed'))(`+row+`)`, "the processor marked gone")
		// Three 300 ms intervals of silence, then the page's next 2 s poll.
		t.Logf("SIGKILL to gone on the page: %v", time.Since(killed).Round(10*time.Millisecond))
		b.shot("farm-gone")
	})
}

// writeWAV writes two seconds of a 440 Hz sine fading in to 0.9 of full
// scale.
func writeWAV(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	format, err := wav.NewFormat(wav.FormatPCM, 1, 48000, 16, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	w, err := wav.Create(f, format, nil)
	if err != nil {
		t.Fatal(err)
	}
	samples := make([]float64, 96000)
	for i := range samples {
		samples[i] = 0.9 * float64(i) / float64(len(samples)) * math.Sin(2*math.Pi*440*float64(i)/48000)
	}
	if err := w.Write(samples); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// dpeBinary is the dpe binary of this test run.
func dpeBinary(t *testing.T) string { return testbin.DPE(t) }

// startProcessor starts a real `dpe processor` process announcing itself
// every 300 ms; it is killed at the end of the test.
func startProcessor(t *testing.T, server, id string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(dpeBinary(t), "processor", "--server", server, "--id", id, "--quota", "noop=2",
		"--presence-every", "300ms", "--lease-ttl", "3s")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("processor %s output:\n%s", id, out.String())
		}
	})
	return cmd
}
