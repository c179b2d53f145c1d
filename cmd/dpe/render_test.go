package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/template"
)

func TestWrap(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		width int
		want  []string
	}{
		{"short", "hello world", 20, []string{"hello world"}},
		{"at spaces", "aaa bbb ccc ddd", 10, []string{"aaa bbb", "ccc ddd"}},
		{"own line breaks", "one\ntwo\r\nthree\n", 20, []string{"one", "two", "three"}},
		{"long word cut", "abcdefghijklmnopqrstuvwxyz", 10, []string{"abcdefghij", "klmnopqrst", "uvwxyz"}},
		{"tabs become spaces", "a\tb", 20, []string{"a    b"}},
		{"blank line kept", "a\n\nb", 20, []string{"a", "", "b"}},
		{"runes not bytes", "ééééé ééééé", 10, []string{"ééééé", "ééééé"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wrap(tt.in, tt.width)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("wrap(%q, %d) = %q, want %q", tt.in, tt.width, got, tt.want)
			}
		})
	}
}

func TestFieldsWrapsUnderTheValue(t *testing.T) {
	var f fields
	f.add("id", 7)
	f.add("error", "step bad: asked to fail:\nline two of a reason that is long enough to wrap")
	var b bytes.Buffer
	f.write(&b, 40)
	want := "id     7\n" +
		"error  step bad: asked to fail:\n" +
		"       line two of a reason that is long\n" +
		"       enough to wrap\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestClockTime(t *testing.T) {
	now := time.Date(2026, 12, 6, 21, 0, 0, 0, time.Local)
	tests := []struct {
		t    time.Time
		want string
	}{
		{now.Add(-1500 * time.Millisecond), "20:59:58.500"},
		{now.Add(-22 * time.Hour), "2026-12-05 23:00:00.000"},
	}
	for _, tt := range tests {
		if got := clockTime(tt.t, now); got != tt.want {
			t.Errorf("clockTime(%s) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{1234567 * time.Nanosecond, "1ms"},
		{1234 * time.Millisecond, "1.23s"},
		{83*time.Second + 400*time.Millisecond, "1m23s"},
	}
	for _, tt := range tests {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// look is one poll of a waited-for run.
func look(state string, percent int, detail string, final bool) progressState {
	return progressState{what: "workflow 12", state: state, percent: percent, detail: detail, final: final, moves: true, took: 1200 * time.Millisecond}
}

func TestLineViewWritesStateChangesOnly(t *testing.T) {
	tests := []struct {
		name  string
		looks []progressState
		want  string
	}{
		{
			name: "succeeded",
			looks: []progressState{
				look("pending", 0, "", false),
				look("running", 0, "step copy", false),
				look("running", 0, "step copy", false), // no change: no line
				look("running", 5, "step copy", false), // same tenth: no line
				look("running", 50, "step sum", false),
				look("succeeded", 100, "", true),
			},
			want: "workflow 12 pending 0%\n" +
				"workflow 12 running 0%: step copy\n" +
				"workflow 12 running 50%: step sum\n" +
				"workflow 12 succeeded in 1.2s\n",
		},
		{
			name: "failed keeps its state",
			looks: []progressState{
				look("running", 33, "step sum", false),
				look("failed", 33, "", true),
			},
			want: "workflow 12 running 33%: step sum\nworkflow 12 failed after 1.2s\n",
		},
		{
			name: "canceled keeps its state",
			looks: []progressState{
				look("running", 10, "step wait", false),
				look("canceled", 10, "", true),
			},
			want: "workflow 12 running 10%: step wait\nworkflow 12 canceled after 1.2s\n",
		},
		{
			name: "a job's message rides along its tenths",
			looks: []progressState{
				{what: "job 7", state: "running", percent: 10, detail: "slept 200ms of 2s"},
				{what: "job 7", state: "running", percent: 12, detail: "slept 240ms of 2s"},
				{what: "job 7", state: "running", percent: 20, detail: "slept 400ms of 2s"},
				{what: "job 7", state: "succeeded", percent: 100, final: true, took: 2 * time.Second},
			},
			want: "job 7 running 10%: slept 200ms of 2s\njob 7 running 20%: slept 400ms of 2s\njob 7 succeeded in 2s\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			v := &lineView{w: &b}
			for _, l := range tt.looks {
				v.update(l)
			}
			if b.String() != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", b.String(), tt.want)
			}
			if strings.Contains(b.String(), "\r") {
				t.Fatalf("frame in plain output: %q", b.String())
			}
		})
	}
}

func TestInstanceProgressNamesFewSteps(t *testing.T) {
	now := time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC)
	started, finished := now.Add(-2*time.Second), now.Add(-time.Second)
	tests := []struct {
		name string
		in   model.Instance
		want progressState
	}{
		{"pending", model.Instance{ID: 3, State: model.InstancePending, CreatedAt: now.Add(-time.Second)},
			progressState{what: "workflow 3", state: "pending", moves: true, took: time.Second}},
		{"two steps", model.Instance{ID: 3, State: model.InstanceRunning, Progress: 20, Current: []string{"a", "b"}, CreatedAt: started, StartedAt: &started},
			progressState{what: "workflow 3", state: "running", percent: 20, detail: "step a, b", moves: true, took: 2 * time.Second}},
		{"many steps", model.Instance{ID: 3, State: model.InstanceRunning, Current: []string{"f[0]/x", "f[1]/x", "f[2]/x", "f[3]/x", "f[4]/x"}, CreatedAt: started, StartedAt: &started},
			progressState{what: "workflow 3", state: "running", detail: "step f[0]/x, f[1]/x, f[2]/x and 2 more", moves: true, took: 2 * time.Second}},
		{"ended", model.Instance{ID: 3, State: model.InstanceFailed, Progress: 50, CreatedAt: started, StartedAt: &started, FinishedAt: &finished},
			progressState{what: "workflow 3", state: "failed", percent: 50, final: true, moves: true, took: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := instanceProgress(tt.in, now); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestJobProgress(t *testing.T) {
	now := time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC)
	started := now.Add(-time.Second)
	tests := []struct {
		name string
		in   model.Job
		want progressState
	}{
		{"running", model.Job{ID: 7, State: model.JobRunning, Progress: 40, Message: "slept 800ms of 2s", Attempt: 1, MaxAttempts: 3, CreatedAt: started, StartedAt: &started},
			progressState{what: "job 7", state: "running", percent: 40, detail: "slept 800ms of 2s", took: time.Second}},
		{"waiting for a retry", model.Job{ID: 7, State: model.JobQueued, Attempt: 1, MaxAttempts: 3, CreatedAt: started, StartedAt: &started},
			progressState{what: "job 7", state: "queued (after attempt 1 of 3)", took: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jobProgress(tt.in, now); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// lastFrame is what a terminal shows last: the text after the last \r.
func lastFrame(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndex(s, "\r")+1:]
}

func TestBarViewEndsInTheRealState(t *testing.T) {
	tests := []struct {
		name  string
		looks []progressState
		want  []string // in the last frame
		not   []string
	}{
		{
			name:  "succeeded fills the bar",
			looks: []progressState{look("running", 40, "step copy", false), look("succeeded", 100, "", true)},
			want:  []string{"workflow 12 succeeded", "100%"},
		},
		{
			name:  "failed stays where it stopped",
			looks: []progressState{look("running", 33, "step sum", false), look("failed", 33, "", true)},
			want:  []string{"workflow 12 failed", "33%"},
			not:   []string{"100%", "running"},
		},
		{
			name:  "canceled stays where it stopped",
			looks: []progressState{look("running", 50, "step wait", false), look("canceled", 50, "", true)},
			want:  []string{"workflow 12 canceled", "50%"},
			not:   []string{"100%"},
		},
		{
			name:  "failed on its last step stays where it was seen",
			looks: []progressState{look("running", 40, "step last", false), look("failed", 100, "", true)},
			want:  []string{"workflow 12 failed", "40%"},
			not:   []string{"100%"},
		},
		{
			name:  "100 while running does not fill the bar",
			looks: []progressState{look("running", 100, "step last", false)},
			want:  []string{"workflow 12 running: step last", "99%"},
			not:   []string{"100%"},
		},
		{
			name:  "running shows the steps in flight",
			looks: []progressState{look("running", 20, "step each[0]/work, each[1]/work", false)},
			want:  []string{"workflow 12 running: step each[0]/work, each[1]/work", "20%"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			v := newBarView(&b)
			for _, l := range tt.looks {
				v.update(l)
			}
			frame := lastFrame(b.String())
			for _, w := range tt.want {
				if !strings.Contains(frame, w) {
					t.Errorf("last frame %q lacks %q", frame, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(frame, n) {
					t.Errorf("last frame %q has %q", frame, n)
				}
			}
		})
	}
}

// showcase has every block kind; its ids sort alphabetically against the
// run order.
const showcase = `
name: showcase
steps:
  - id: zeta
    job: noop
  - id: hello
    log: "starting"
  - id: check
    if: "true"
    then:
      - id: said
        log: "then branch taken"
  - id: each
    foreach: '["a.wav", "b.wav"]'
    do:
      - id: work
        job: noop
  - id: both
    parallel:
      - id: right
        job: noop
      - id: left
        log: "left side"
  - id: guard
    try:
      - id: boom
        fail: "boom"
    catch:
      - id: caught
        log: "caught it"
  - id: alpha
    fail: "last"
`

func TestStepTreeRunOrderAndNotes(t *testing.T) {
	tpl, err := template.Parse([]byte(showcase), template.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 6, 21, 0, 0, 0, time.Local)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	end := func(ms int) *time.Time { e := at(ms); return &e }
	msg := func(s string) json.RawMessage { b, _ := json.Marshal(map[string]string{"message": s}); return b }
	long := "first line of the failure\nsecond line, which goes on and on well past the width so that it has to wrap"
	// Listed alphabetically by path, as the store returns them.
	steps := []model.Step{
		{Path: "alpha", ID: "alpha", Kind: "fail", State: "failed", Error: "last", StartedAt: at(400), FinishedAt: end(400)},
		{Path: "both", ID: "both", Kind: "parallel", State: "succeeded", StartedAt: at(300), FinishedAt: end(350)},
		{Path: "both/left", ID: "left", Kind: "log", State: "succeeded", Result: msg("left side"), StartedAt: at(300), FinishedAt: end(300)},
		{Path: "both/right", ID: "right", Kind: "job", State: "succeeded", JobID: 5, StartedAt: at(300), FinishedAt: end(350)},
		{Path: "check", ID: "check", Kind: "if", State: "succeeded", Result: json.RawMessage(`{"branch":"then"}`), StartedAt: at(100), FinishedAt: end(100)},
		{Path: "check/said", ID: "said", Kind: "log", State: "succeeded", Result: msg("then branch taken"), StartedAt: at(100), FinishedAt: end(100)},
		{Path: "each", ID: "each", Kind: "foreach", State: "succeeded", Result: json.RawMessage(`{"items":["a.wav","b.wav"],"count":2}`), StartedAt: at(100), FinishedAt: end(300)},
		{Path: "each[0]/work", ID: "work", Kind: "job", State: "succeeded", JobID: 3, StartedAt: at(100), FinishedAt: end(200)},
		{Path: "each[1]/work", ID: "work", Kind: "job", State: "succeeded", JobID: 4, StartedAt: at(200), FinishedAt: end(300)},
		{Path: "guard", ID: "guard", Kind: "try", State: "succeeded", StartedAt: at(350), FinishedAt: end(350)},
		{Path: "guard/boom", ID: "boom", Kind: "fail", State: "failed", Error: long, StartedAt: at(350), FinishedAt: end(350)},
		{Path: "guard/caught", ID: "caught", Kind: "log", State: "succeeded", Result: msg("caught it"), StartedAt: at(350), FinishedAt: end(350)},
		{Path: "hello", ID: "hello", Kind: "log", State: "succeeded", Result: msg("starting"), StartedAt: at(100), FinishedAt: end(100)},
		{Path: "zeta", ID: "zeta", Kind: "job", State: "succeeded", JobID: 1, StartedAt: at(0), FinishedAt: end(100)},
	}
	want := `STEP          KIND      STATE      STARTED       DURATION  JOB
zeta          job       succeeded  21:00:00.000  100ms     1
hello         log       succeeded  21:00:00.100  0s        -
   log: starting
check         if        succeeded  21:00:00.100  0s        -
└─ said       log       succeeded  21:00:00.100  0s        -
      log: then branch taken
each          foreach   succeeded  21:00:00.100  200ms     -
├─ [0] a.wav  item      succeeded  21:00:00.100  100ms     -
│  └─ work    job       succeeded  21:00:00.100  100ms     3
└─ [1] b.wav  item      succeeded  21:00:00.200  100ms     -
   └─ work    job       succeeded  21:00:00.200  100ms     4
both          parallel  succeeded  21:00:00.300  50ms      -
├─ right      job       succeeded  21:00:00.300  50ms      5
└─ left       log       succeeded  21:00:00.300  0s        -
      log: left side
guard         try       succeeded  21:00:00.350  0s        -
├─ boom       fail      failed     21:00:00.350  0s        -
│     error: first line of the failure
│            second line, which goes on and on well past the width so
│            that it has to wrap
└─ caught     log       succeeded  21:00:00.350  0s        -
      log: caught it
alpha         fail      failed     21:00:00.400  0s        -
   error: last
`
	var b bytes.Buffer
	d := model.InstanceDetail{Steps: steps}
	writeStepTree(&b, buildStepTree(d, templateOrder(tpl), nil), at(1000), 72)
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}

	// Without the template (it was deleted) the start time orders.
	b.Reset()
	writeStepTree(&b, buildStepTree(d, templateOrder(nil), nil), at(1000), 72)
	var roots []string
	for _, l := range strings.Split(b.String(), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 0 && l[0] != ' ' && !strings.HasPrefix(l, "│") && !strings.HasPrefix(l, "├") && !strings.HasPrefix(l, "└") {
			roots = append(roots, f[0])
		}
	}
	if got := strings.Join(roots, " "); got != "zeta check each hello both guard alpha" {
		t.Fatalf("roots by start time: %s\n%s", got, b.String())
	}
}

func TestStepTreeRunningAndChildren(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 21, 0, 0, 0, time.Local)
	t1 := t0.Add(time.Second)
	d := model.InstanceDetail{
		Steps: []model.Step{
			{Path: "seq", ID: "seq", Kind: "sequence", State: "running", StartedAt: t0},
			{Path: "seq/sub", ID: "sub", Kind: "workflow", State: "failed", Error: "child failed: step x: no", ChildID: 9, StartedAt: t0, FinishedAt: &t1},
			{Path: "seq/run", ID: "run", Kind: "job", State: "running", JobID: 4, StartedAt: t0},
		},
		Jobs: []model.Job{{ID: 4, State: model.JobRunning, Progress: 40, Message: "half way", Processor: "p1"}},
	}
	order := map[string]int{"seq": 0, "sub": 1, "run": 2}
	child := func(id int64) (*model.Instance, []*stepNode) {
		inst := &model.Instance{ID: id, Name: "kid", Template: "small", Version: 2, State: model.InstanceFailed}
		cd := model.InstanceDetail{Steps: []model.Step{{Path: "x", ID: "x", Kind: "fail", State: "failed", Error: "no", StartedAt: t0, FinishedAt: &t0}}}
		return inst, buildStepTree(cd, nil, nil)
	}
	var b bytes.Buffer
	writeStepTree(&b, buildStepTree(d, order, child), t0.Add(3*time.Second), 80)
	want := `STEP     KIND      STATE    STARTED       DURATION  JOB
seq      sequence  running  21:00:00.000  3s…       -
├─ sub   workflow  failed   21:00:00.000  1s        -
│  │  runs: workflow 9 kid (small@2) failed
│  │  error: child failed: step x: no
│  └─ x  fail      failed   21:00:00.000  0s        -
│        error: no
└─ run   job       running  21:00:00.000  3s…       4
      job: running 40% half way on p1
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteJob(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 21, 0, 0, 0, time.Local)
	t1 := t0.Add(1500 * time.Millisecond)
	lease := t0.Add(30 * time.Second)
	stdout := strings.Repeat("line\n", maxOutputLines+3)
	res, _ := json.Marshal(map[string]any{"exit_code": 0, "stdout": stdout, "stderr": "warn: a <b>\n", "truncated": false})
	tests := []struct {
		name string
		job  model.Job
		want []string
		not  []string
	}{
		{
			name: "finished exec",
			job: model.Job{ID: 10, Type: "exec", State: model.JobSucceeded, Attempt: 1, MaxAttempts: 3, Progress: 100,
				Params: json.RawMessage(`{"argv":["sh","-c","echo hi >&2"]}`), Processor: "p1", Epoch: 2,
				Result: res, CreatedAt: t0, StartedAt: &t0, FinishedAt: &t1},
			want: []string{
				"attempts   1 of 3\n", "processor  p1 (epoch 2)\n", "duration   1.5s\n",
				"params\n  argv  [\"sh\",\"-c\",\"echo hi >&2\"]\n",
				"result\n  exit_code  0\n  truncated  false\n",
				"stdout (43 lines)\n  line\n", "  ... 3 more lines (-o json shows all)\n",
				"stderr (1 line)\n  warn: a <b>\n",
			},
			not: []string{"\\u003e", `"stdout"`},
		},
		{
			name: "running holds a lease",
			job: model.Job{ID: 11, Type: "noop", State: model.JobRunning, Attempt: 2, MaxAttempts: 3, Progress: 40,
				Message: "slept 1s", Processor: "p2", Epoch: 5, LeaseUntil: &lease, CreatedAt: t0, StartedAt: &t0},
			want: []string{"attempts   2 of 3\n", "progress   40% slept 1s\n",
				"processor  p2 (epoch 5, lease until 21:00:30)\n", "duration   3s so far\n"},
		},
		{
			name: "waiting for its retry",
			job: model.Job{ID: 12, Type: "noop", State: model.JobQueued, Attempt: 1, MaxAttempts: 3,
				RunAfter: t0.Add(5 * time.Second), Error: "boom\nsecond line", CreatedAt: t0},
			want: []string{"attempts   1 of 3, next at 21:00:05\n", "processor  -\n", "error      boom\n           second line\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			writeJob(&b, tt.job, t0.Add(3*time.Second), 100)
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("lacks %q:\n%s", w, b.String())
				}
			}
			for _, n := range tt.not {
				if strings.Contains(b.String(), n) {
					t.Errorf("has %q:\n%s", n, b.String())
				}
			}
		})
	}
}
