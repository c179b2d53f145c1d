package web_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/handlers"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/processor"
	"github.com/dpe-engine/dpe/internal/server"
	"github.com/dpe-engine/dpe/internal/worker"
)

// The browser tests drive the monitor in a real headless Chromium against
// a real server on SQLite with a processor and a worker. Without Chromium
// they skip, except under DPE_TEST_STRICT=1 where they fail. Screenshots
// go to DPE_TEST_SCREENSHOTS when set, else to the test's temp dir.

const templates = `
name: greet
description: Say hello after a short job
args:
  who:   {type: string, required: true, description: Whom to greet}
  times: {type: int, default: 2}
  loud:  {type: bool, default: false}
steps:
  - {id: work, job: noop, params: {sleep: 300ms}}
  - {id: greet, set: {greeting: "${{ 'hello ' + args.who }}"}}
output:
  greeting: "${{ vars.greeting }}"
---
name: broken
description: A job that always fails
steps:
  - {id: prepare, set: {stage: one}}
  - {id: note, log: "fetching now"}
  - {id: fetch, job: noop, params: {fail: true, log: "fetch says no"}, retry: {max_attempts: 1}}
---
name: tick
steps:
  - {id: mark, set: {marked: true}}
---
name: sum
args:
  path: {type: string, required: true}
steps:
  - {id: sum, job: util.checksum, params: {path: "${{ args.path }}"}, retry: {max_attempts: 1}}
---
name: slow
args:
  wait: {type: duration, default: 10m}
steps:
  - {id: begin, set: {began: true}}
  - {id: hold, job: noop, params: {sleep: "${{ args.wait }}"}}
`

// stack runs a server (requiring token when set), a processor for noop and
// a worker until the test ends, and returns the server URL and a client.
// Options change the server's configuration (alert rules, ...).
func stack(t *testing.T, token string, options ...func(*server.Config)) (string, *client.Client) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := server.Config{DB: "sqlite:" + filepath.Join(t.TempDir(), "dpe.db"), Listen: "127.0.0.1:0", Token: token, Log: log, Tick: 200 * time.Millisecond}
	for _, o := range options {
		o(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "server", srv.Run)
	select {
	case <-srv.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("server not ready")
	}
	c, err := client.New(client.Config{URLs: []string{srv.URL()}, Token: token, Deadline: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	p, err := processor.New(processor.Config{Client: c, Quota: map[string]int{"noop": 8, "util.checksum": 2, "audio.waveform": 1}, LeaseTTL: 3 * time.Second,
		Handlers: handlers.Builtins(handlers.Config{}), Log: log, Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "processor", p.Run)
	w, err := worker.New(worker.Config{Client: c, LeaseTTL: 3 * time.Second, PollWait: time.Second, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "worker", w.Run)
	for _, doc := range strings.Split(templates, "\n---\n") {
		if _, err := c.ImportTemplate(context.Background(), []byte(doc), "application/yaml"); err != nil {
			t.Fatalf("import: %v", err)
		}
	}
	return srv.URL(), c
}

// run starts fn in the background until the test ends.
func run(t *testing.T, name string, fn func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// browser starts a headless Chromium for the test, or skips (fails under
// DPE_TEST_STRICT=1) when there is none.
func browser(t *testing.T, base string) *tab {
	t.Helper()
	var exe string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			exe = p
			break
		}
	}
	if exe == "" {
		const why = "no Chromium on PATH (apt-get install -y chromium; .ci/run does)"
		if os.Getenv("DPE_TEST_STRICT") == "1" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1600, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTime()
		cancelTab()
		cancelAlloc()
	})
	shots := os.Getenv("DPE_TEST_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	b := &tab{t: t, ctx: ctx, base: base, shots: shots}
	b.do(chromedp.EmulateViewport(1600, 1000))
	// An uncaught exception in the page's scripts fails the test.
	events := chromedp.Events(ctx, cdpruntime.ExceptionThrown)
	done := make(chan []string, 1)
	go func() {
		var seen []string
		for ev, err := range events {
			if err != nil {
				break
			}
			if d := ev.ExceptionDetails; d != nil {
				msg := d.Text
				if d.Exception != nil {
					msg += " " + d.Exception.Description
				}
				seen = append(seen, fmt.Sprintf("%s:%d: %s", d.URL, d.LineNumber+1, msg))
			}
		}
		done <- seen
	}()
	t.Cleanup(func() {
		cancelTime()
		for _, e := range <-done {
			t.Errorf("uncaught exception in the page: %s", e)
		}
	})
	return b
}

// tab is one browser tab on the monitor.
type tab struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
}

func (b *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.fail("%v", err)
	}
}

// open loads the monitor at the given hash route.
func (b *tab) open(hash string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base + "/" + hash))
}

// waitFor polls a JavaScript condition until it is truthy.
func (b *tab) waitFor(expr, what string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[any](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		b.fail("waiting for %s (%s): %v", what, expr, err)
	}
}

// text reads an element's visible text.
func (b *tab) text(css string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		b.fail("text of %s: %v", css, err)
	}
	return s
}

func (b *tab) click(css string) {
	b.t.Helper()
	b.do(chromedp.WaitVisible(chromedp.CSS(css)), chromedp.Click(chromedp.CSS(css)))
}

// shot saves a PNG of the whole page and returns its path.
func (b *tab) shot(name string) string {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	p := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", p)
	return p
}

// fail ends the test with what the page shows.
func (b *tab) fail(format string, args ...any) {
	b.t.Helper()
	body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.hash + "\n" + document.body.innerText.slice(0, 3000)`))
	b.t.Fatalf("%s\npage:\n%s", fmt.Sprintf(format, args...), body)
}

func js(s string) string { return strconv.Quote(s) }

func startWorkflow(t *testing.T, c *client.Client, template string) model.Instance {
	t.Helper()
	inst, err := c.StartWorkflow(context.Background(), model.InstanceSpec{Template: template, Args: []byte(`{"who":"test"}`)})
	if err != nil && template != "greet" {
		inst, err = c.StartWorkflow(context.Background(), model.InstanceSpec{Template: template})
	}
	if err != nil {
		t.Fatalf("start %s: %v", template, err)
	}
	return *inst
}

func waitState(t *testing.T, c *client.Client, id int64, want model.InstanceState) model.InstanceDetail {
	t.Helper()
	return *eventually.Value(t, 30*time.Second, func() (*model.InstanceDetail, error) {
		return c.GetWorkflow(context.Background(), id)
	}, func(d *model.InstanceDetail) bool { return d.Instance.State == want }, fmt.Sprintf("workflow %d %s", id, want))
}

// TestBrowser walks the monitor as an operator does: the overview's
// counts, a failed workflow's error, cancelling a running one through the
// confirmation, a refused template upload, and a start from the form
// watched to its end without a reload.
func TestBrowser(t *testing.T) {
	base, c := stack(t, "")
	ok := startWorkflow(t, c, "greet")
	bad := startWorkflow(t, c, "broken")
	slow := startWorkflow(t, c, "slow")
	waitState(t, c, ok.ID, model.InstanceSucceeded)
	failed := waitState(t, c, bad.ID, model.InstanceFailed)
	waitState(t, c, slow.ID, model.InstanceRunning)
	b := browser(t, base)

	t.Run("overview counts", func(t *testing.T) {
		b.t = t
		b.open("#/")
		for st, n := range map[string]int{"succeeded": 1, "failed": 1, "running": 1, "pending": 0} {
			b.waitFor(`document.querySelector('#wf-counts [data-state=`+st+`] .n')?.textContent === '`+strconv.Itoa(n)+`'`, st+" workflows "+strconv.Itoa(n))
		}
		b.waitFor(`document.querySelector('#job-counts [data-state=failed] .n')?.textContent === '1'`, "one failed job")
		b.waitFor(`document.querySelector('#chart svg rect.bad') && document.querySelector('#chart svg rect.ok')`, "the chart's bars")
		b.waitFor(`document.querySelector('#live')?.textContent.startsWith('LIVE')`, "the live mark")
		if s := b.text("#chart p"); !strings.Contains(s, "1 failed") {
			t.Errorf("chart summary %q lacks the failed job", s)
		}
		b.shot("overview")
		b.waitFor(`document.querySelector('#alerts')?.innerText.includes('No alert rules are configured')`, "no alerts without rules")
	})

	t.Run("capped counts show as 10,000+", func(t *testing.T) {
		b.t = t
		// The server stops counting at model.CountCap; a store that large
		// is too slow to fill here, so the formatter the lists and tiles
		// use is checked in the loaded page.
		b.do(chromedp.Evaluate[chromedp.Void](`import('/assets/js/dom.js').then(m => { window.counted = JSON.stringify([m.count(10000, true), m.count(1234, false), m.count(0), m.count(undefined), m.count(10000, false), m.countCap]); })`))
		b.waitFor(`window.counted`, "the formatted counts")
		got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`window.counted`))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`["10,000+","1,234","0","0","10,000",%d]`, model.CountCap); got != want {
			t.Errorf("counts formatted %s, want %s", got, want)
		}
	})

	t.Run("failed workflow shows its error", func(t *testing.T) {
		b.t = t
		b.open(fmt.Sprintf("#/workflows/%d", bad.ID))
		b.waitFor(`document.querySelector('#wf-error')?.textContent.includes(`+js(failed.Instance.Error)+`)`, "the instance's error")
		b.waitFor(`[...document.querySelectorAll('#wf-detail tbody tr')].some(r => r.innerText.includes('fetch') && r.innerText.includes('FAILED'))`, "the failed step with its label")
		order := b.text("#wf-detail table")
		if strings.Index(order, "prepare") > strings.Index(order, "fetch") {
			t.Errorf("steps not in run order:\n%s", order)
		}
		// The log: the log step's line, then the job's, naming the job.
		b.waitFor(`(s => s && s.indexOf('fetching now') >= 0 && s.indexOf('fetching now') < s.indexOf('fetch says no') && /job #\d+: fetch says no/.test(s))(document.querySelector('#log-lines')?.innerText)`, "the log lines, the job's named")
		b.shot("workflow-failed")
	})

	t.Run("cancel a running workflow through the confirmation", func(t *testing.T) {
		b.t = t
		b.open(fmt.Sprintf("#/workflows/%d", slow.ID))
		b.waitFor(`document.querySelector('#cancel')?.disabled === false`, "the cancel button")
		b.click("#cancel")
		b.waitFor(`document.querySelector('#dialog')?.open`, "the confirmation")
		if s := b.text("#dialog-title"); !strings.Contains(s, strconv.FormatInt(slow.ID, 10)) {
			t.Errorf("dialog title %q does not name the workflow", s)
		}
		b.click("#dialog-yes")
		waitState(t, c, slow.ID, model.InstanceCanceled)
		b.waitFor(`document.querySelector('h1')?.innerText.includes('CANCELED')`, "the canceled state on the page")
	})

	t.Run("keep: the confirmation's no does nothing", func(t *testing.T) {
		b.t = t
		other := startWorkflow(t, c, "slow")
		waitState(t, c, other.ID, model.InstanceRunning)
		b.open(fmt.Sprintf("#/workflows/%d", other.ID))
		b.waitFor(`document.querySelector('#cancel')?.disabled === false`, "the cancel button")
		b.click("#cancel")
		b.waitFor(`document.querySelector('#dialog')?.open`, "the confirmation")
		b.click("#dialog-no")
		b.waitFor(`document.querySelector('#dialog')?.open === false`, "the dialog to close")
		d, err := c.GetWorkflow(context.Background(), other.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Instance.State != model.InstanceRunning || d.Instance.CancelAsked {
			t.Errorf("after Keep: state %s cancel asked %v", d.Instance.State, d.Instance.CancelAsked)
		}
		// A result the operator opened stays open across live re-renders.
		b.click(`#wf-detail details[data-key="result:begin"] summary`)
		b.waitFor(`document.querySelector('#wf-detail details[data-key="result:begin"]')?.open`, "the opened result")
		b.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#wf-detail h2').dataset.old = '1'`))
		b.waitFor(`document.querySelector('#wf-detail h2') && !document.querySelector('#wf-detail h2').dataset.old`, "a live re-render")
		b.waitFor(`document.querySelector('#wf-detail details[data-key="result:begin"]')?.open`, "the result still open after the re-render")
		b.waitFor(`document.querySelector('#priority') && !document.querySelector('#priority').disabled`, "the priority button")
		b.click("#priority")
		b.waitFor(`document.querySelector('#dialog')?.open`, "the priority dialog")
		b.do(chromedp.SetValue(chromedp.CSS("#priority-input"), "7"))
		b.click("#dialog-yes")
		eventually.Value(t, 10*time.Second, func() (*model.InstanceDetail, error) { return c.GetWorkflow(context.Background(), other.ID) },
			func(d *model.InstanceDetail) bool { return d.Instance.Priority == 7 }, "priority 7")
	})

	t.Run("bad template upload shows its line error", func(t *testing.T) {
		b.t = t
		b.open("#/templates")
		b.waitFor(`document.querySelector('#template-list a')`, "the template list")
		b.do(chromedp.SetValue(chromedp.CSS("#template-source"), "name: wrong\nsteps:\n  - id: a\n    job: noop\n    colour: red\n"))
		b.click("#import-submit")
		b.waitFor(`document.querySelector('#import-error')?.textContent.includes('line 5: step "a": colour: unknown field')`, "the line error")
		b.shot("template-error")
	})

	t.Run("every page shows its data", func(t *testing.T) {
		b.t = t
		var failedJob int64
		for _, st := range failed.Steps {
			if st.ID == "fetch" {
				failedJob = st.JobID
			}
		}
		ctx := context.Background()
		if _, err := c.Fire(ctx, "nightly", model.FireRequest{Kind: model.TriggerSchedule, State: []byte(`{"last":"2026-12-06T02:00:00Z"}`),
			Fires: []model.Start{{Key: "2026-12-06T02:00:00Z", Instance: model.InstanceSpec{Template: "tick", Name: "nightly-2026-12-06"}}}}); err != nil {
			t.Fatal(err)
		}
		if err := c.ReportTriggerError(ctx, "nightly", model.TriggerSchedule, "cannot reach the template"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.LeaseAcquire(ctx, "trigger/nightly", "scheduler@copy-a", time.Minute); err != nil {
			t.Fatal(err)
		}
		// A group whose copy is gone: its lease has run out.
		if _, err := c.LeaseAcquire(ctx, "trigger/inbox", "folderwatcher@copy-b", time.Second); err != nil {
			t.Fatal(err)
		}
		cases := []struct{ hash, ready, shot string }{
			{"#/workflows", `document.querySelectorAll('#wf-list tbody tr').length >= 4`, "workflows"},
			{"#/workflows?state=failed", `document.querySelector('#wf-list')?.innerText.includes('1 shown of 1 matching')`, ""},
			{"#/jobs", `document.querySelectorAll('#job-list tbody tr').length >= 4`, "jobs"},
			{fmt.Sprintf("#/jobs/%d", failedJob), `document.querySelector('#job-detail .error-box')?.innerText.includes('asked to fail') && document.querySelector('#job-detail').innerText.includes('1 of 1') && document.querySelector('#log-lines')?.innerText.includes('fetch says no')`, "job-failed"},
			{"#/farm", `document.querySelector('#processors')?.innerText.includes('LIVE') && document.querySelector('#processors').innerText.includes('noop: ')`, "farm"},
			{"#/triggers", `[...document.querySelectorAll('#trigger-list tbody tr')].some(r => r.innerText.includes('nightly') && r.innerText.includes('scheduler@copy-a') && r.innerText.includes('cannot reach the template'))`, "triggers"},
			{"#/farm", `document.querySelector('#leases')?.innerText.includes('trigger/inbox') && document.querySelector('#leases').innerText.includes('NO ACTIVE COPY')`, ""},
			{"#/", `document.querySelector('#roles')?.innerText.includes('trigger/inbox') && !document.querySelector('#roles').innerText.includes('trigger/nightly')`, ""},
			{"#/templates", `document.querySelector('#template-list')?.innerText.includes('broken')`, "templates"},
			{"#/templates/greet", `document.querySelector('#template-yaml')?.textContent.includes('Whom to greet')`, ""},
		}
		for _, c := range cases {
			b.open(c.hash)
			b.waitFor(c.ready, c.hash)
			if c.shot != "" {
				b.shot(c.shot)
			}
		}
	})

	t.Run("start from the form and watch it finish", func(t *testing.T) {
		b.t = t
		b.open("#/start/greet")
		b.waitFor(`document.querySelector('#arg-who')`, "the form of greet's args")
		if v := b.text("#start-form"); !strings.Contains(v, "Whom to greet") || !strings.Contains(v, "(required)") {
			t.Errorf("form lacks the arg's description or required mark: %q", v)
		}
		b.do(chromedp.SetValue(chromedp.CSS("#arg-who"), "operator"))
		b.click("#start-submit")
		b.waitFor(`/^#\/workflows\/\d+$/.test(location.hash)`, "the new workflow's page")
		b.waitFor(`document.querySelector('h1')?.innerText.includes('SUCCEEDED')`, "the workflow to finish live")
		id, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.hash.split('/').pop()`))
		n, _ := strconv.ParseInt(id, 10, 64)
		d := waitState(t, c, n, model.InstanceSucceeded)
		if !strings.Contains(string(d.Instance.Output), "hello operator") {
			t.Errorf("output %s", d.Instance.Output)
		}
		b.shot("workflow-detail")
	})
}

// TestBrowserPaging: the workflow list pages on the server with the next
// cursor, filtered by template.
func TestBrowserPaging(t *testing.T) {
	base, c := stack(t, "")
	specs := make([]model.InstanceSpec, 55)
	for i := range specs {
		specs[i] = model.InstanceSpec{Template: "tick"}
	}
	if _, err := c.StartWorkflows(context.Background(), specs); err != nil {
		t.Fatal(err)
	}
	// Not a tick: filtered out; its name has what URLs escape.
	if _, err := c.StartWorkflow(context.Background(), model.InstanceSpec{Template: "greet", Name: "night & day 100% #1", Args: []byte(`{"who":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	b := browser(t, base)
	b.open("#/workflows?template=tick")
	b.waitFor(`document.querySelector('#wf-list')?.innerText.includes('50 shown of 55 matching')`, "the first page")
	b.waitFor(`document.querySelector('#f-template')?.value === 'tick'`, "the filter kept in the form")
	b.click("#older")
	b.waitFor(`document.querySelector('#wf-list')?.innerText.includes('5 shown of 55 matching')`, "the second page")
	b.waitFor(`[...document.querySelectorAll('#wf-list tbody tr')].every(r => r.innerText.includes('tick v1'))`, "only ticks")

	b.open("#/workflows")
	b.waitFor(`document.querySelector('#wf-list')?.innerText.includes('50 shown of 56 matching')`, "the unfiltered list")
	b.do(chromedp.SetValue(chromedp.CSS("#f-name"), "night & day 100% #1"))
	b.click(`#wf-filters button[type=submit]`)
	b.waitFor(`document.querySelector('#wf-list')?.innerText.includes('1 shown of 1 matching') && document.querySelector('#wf-list').innerText.includes('night & day 100% #1')`, "the one named workflow")
	b.waitFor(`document.querySelector('#f-name')?.value === 'night & day 100% #1'`, "the name kept in the form")
}

// TestBrowserLogin: with a token set the monitor asks for it, refuses a
// wrong one, and after login works through its HttpOnly session cookie,
// including a mutating call (which needs the CSRF header).
func TestBrowserLogin(t *testing.T) {
	base, c := stack(t, "s3cret-token")
	slow := startWorkflow(t, c, "slow")
	waitState(t, c, slow.ID, model.InstanceRunning)
	b := browser(t, base)
	b.open("#/")
	b.waitFor(`document.querySelector('#login-form')`, "the login page")
	b.do(chromedp.SetValue(chromedp.CSS("#token"), "wrong"))
	b.click("#login")
	b.waitFor(`document.querySelector('#login-form .err')?.textContent.includes('not valid')`, "the refusal")
	b.do(chromedp.SetValue(chromedp.CSS("#token"), "s3cret-token"))
	b.click("#login")
	b.waitFor(`document.querySelector('#wf-counts [data-state=running] .n')?.textContent === '1'`, "the overview after login")
	cookies, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.cookie`))
	if !strings.Contains(cookies, "dpe_csrf=") || strings.Contains(cookies, "dpe_session") || strings.Contains(cookies, "s3cret") {
		t.Errorf("script sees cookies %q: want the CSRF one only", cookies)
	}
	b.waitFor(`document.querySelector('#logout')?.hidden === false && document.querySelector('#who').textContent.includes('admin')`, "the role and the logout button")

	b.open(fmt.Sprintf("#/workflows/%d", slow.ID))
	b.waitFor(`document.querySelector('#cancel')?.disabled === false`, "the cancel button")
	b.click("#cancel")
	b.waitFor(`document.querySelector('#dialog')?.open`, "the confirmation")
	b.click("#dialog-yes")
	waitState(t, c, slow.ID, model.InstanceCanceled)

	b.click("#logout")
	b.waitFor(`document.querySelector('#login-form')`, "the login page after logout")
	b.open("#/farm")
	b.waitFor(`document.querySelector('#login-form')`, "the login page: the session has ended")
}
