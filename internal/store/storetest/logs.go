package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// logList returns the lines f selects, failing the test on an error.
func logList(t *testing.T, s store.WorkflowStore, f model.LogFilter) []model.LogLine {
	t.Helper()
	got, err := s.LogList(t.Context(), f)
	if err != nil {
		t.Fatalf("LogList(%+v): %v", f, err)
	}
	return got
}

// logAppend appends lines, failing the test on an error.
func logAppend(t *testing.T, s store.WorkflowStore, instanceID, jobID int64, now time.Time, msgs ...string) {
	t.Helper()
	lines := make([]model.LogEntry, len(msgs))
	for i, m := range msgs {
		lines[i] = model.LogEntry{Message: m}
	}
	if err := s.LogAppend(t.Context(), instanceID, jobID, lines, now); err != nil {
		t.Fatalf("LogAppend(%d, %d): %v", instanceID, jobID, err)
	}
}

// messages returns the messages of lines.
func messages(lines []model.LogLine) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Message
	}
	return out
}

// testLogs covers log lines: an instance's own and its jobs' in one
// ordered log, a job's alone, the cursor, the bounds and the purge with
// the owner.
func testLogs(t *testing.T, open WorkflowOpener) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	inst := holdInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "logs"}, "w1", T0)
	a := adv(inst, model.InstanceRunning)
	a.Steps = []model.Step{{Path: "j", ID: "j", Kind: "job", State: model.StepRunning, StartedAt: T0}}
	a.Jobs = []model.JobSpec{{Type: "pg", InstanceID: inst.ID, Step: "j", Key: "logs/j"}}
	inst = advance(t, s, a, T0)
	job := stepAt(t, s, inst.ID, "j").JobID
	loose := insert(t, s, T0, model.JobSpec{Type: "pg"})[0]

	logAppend(t, s, inst.ID, 0, at(time.Second), "start")
	if err := s.LogAppend(ctx, 0, job, []model.LogEntry{{Level: model.LogWarn, Message: "from job", At: at(2 * time.Second)}}, at(3*time.Second)); err != nil {
		t.Fatalf("LogAppend job: %v", err)
	}
	logAppend(t, s, inst.ID, 0, at(4*time.Second), "end")
	logAppend(t, s, 0, loose.ID, at(time.Second), "loose")

	all := logList(t, s, model.LogFilter{InstanceID: inst.ID})
	if got, want := messages(all), []string{"start", "from job", "end"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("instance log = %q, want %q", got, want)
	}
	if all[1].JobID != job || all[1].InstanceID != inst.ID || all[1].Level != model.LogWarn {
		t.Errorf("job line = %+v, want job %d of instance %d at warn", all[1], job, inst.ID)
	}
	sameTime(t, "given time", all[1].At, at(2*time.Second))
	sameTime(t, "zero time is now", all[0].At, at(time.Second))
	if all[0].Level != model.LogInfo || all[0].JobID != 0 {
		t.Errorf("instance line = %+v, want info without a job", all[0])
	}
	if !(all[0].Seq < all[1].Seq && all[1].Seq < all[2].Seq) {
		t.Errorf("seqs %d, %d, %d do not increase", all[0].Seq, all[1].Seq, all[2].Seq)
	}
	if got := messages(logList(t, s, model.LogFilter{InstanceID: inst.ID, After: all[0].Seq, Limit: 1})); fmt.Sprint(got) != "[from job]" {
		t.Errorf("after first, limit 1 = %q, want [from job]", got)
	}
	if got := messages(logList(t, s, model.LogFilter{JobID: job})); fmt.Sprint(got) != "[from job]" {
		t.Errorf("job log = %q, want [from job]", got)
	}
	if got := logList(t, s, model.LogFilter{JobID: loose.ID}); len(got) != 1 || got[0].InstanceID != 0 {
		t.Errorf("loose job log = %+v, want one line without an instance", got)
	}
	wantErr(t, "append to a missing instance", s.LogAppend(ctx, inst.ID+1000, 0, []model.LogEntry{{Message: "x"}}, T0), model.ErrNotFound)
	wantErr(t, "append to a missing job", s.LogAppend(ctx, 0, loose.ID+1000, []model.LogEntry{{Message: "x"}}, T0), model.ErrNotFound)

	// Bounds: a long line is cut at a character boundary; past the line
	// bound, one marker counts what was dropped.
	long := strings.Repeat("é", store.MaxLogLineBytes) // 2 bytes each
	if err := s.LogAppend(ctx, 0, loose.ID, []model.LogEntry{{Message: long}}, T0); err != nil {
		t.Fatalf("LogAppend long: %v", err)
	}
	lines := logList(t, s, model.LogFilter{JobID: loose.ID})
	if got := lines[len(lines)-1].Message; got != long[:store.MaxLogLineBytes] {
		t.Errorf("long line kept %d bytes, want %d", len(got), store.MaxLogLineBytes)
	}
	many := make([]model.LogEntry, store.MaxLogLines)
	for i := range many {
		many[i] = model.LogEntry{Message: fmt.Sprint("line ", i)}
	}
	if err := s.LogAppend(ctx, 0, loose.ID, many, T0); err != nil { // 2 lines were there: 2 dropped
		t.Fatalf("LogAppend many: %v", err)
	}
	logAppend(t, s, 0, loose.ID, T0, "one more", "and another")
	var got []model.LogLine
	for after := int64(0); ; {
		page := logList(t, s, model.LogFilter{JobID: loose.ID, After: after})
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].Seq
	}
	if len(got) != store.MaxLogLines+1 {
		t.Fatalf("bounded log has %d lines, want %d and a marker", len(got), store.MaxLogLines)
	}
	last := got[len(got)-1]
	if last.Dropped != 4 || last.Message != "4 lines dropped" || last.Level != model.LogWarn {
		t.Errorf("marker = %+v, want 4 lines dropped at warn", last)
	}
	if got[len(got)-2].Message != fmt.Sprint("line ", store.MaxLogLines-3) {
		t.Errorf("last kept line = %q", got[len(got)-2].Message)
	}
	if logList(t, s, model.LogFilter{InstanceID: inst.ID})[0].Message != "start" {
		t.Error("another owner's bound counted the loose job's lines")
	}

	// Purge: the instance's lines (its jobs' included) go with it, the
	// loose job's with the job.
	endAdv := adv(inst, model.InstanceSucceeded)
	advance(t, s, endAdv, at(time.Minute))
	if n, err := s.InstancePurge(ctx, at(2*time.Minute)); err != nil || n != 1 {
		t.Fatalf("InstancePurge = %d, %v; want 1", n, err)
	}
	if got := logList(t, s, model.LogFilter{InstanceID: inst.ID}); len(got) != 0 {
		t.Errorf("purged instance keeps %d log lines", len(got))
	}
	if got := logList(t, s, model.LogFilter{JobID: job}); len(got) != 0 {
		t.Errorf("job of purged instance keeps %d log lines", len(got))
	}
	c := claimOne(t, s, "pg", "p1", T0)
	complete(t, s, model.Completion{ID: c.ID, Epoch: c.Epoch}, at(time.Minute))
	if n, err := s.JobPurge(ctx, at(2*time.Minute)); err != nil || n != 1 {
		t.Fatalf("JobPurge = %d, %v; want 1", n, err)
	}
	if got := logList(t, s, model.LogFilter{JobID: loose.ID}); len(got) != 0 {
		t.Errorf("purged job keeps %d log lines", len(got))
	}
}
