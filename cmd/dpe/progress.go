package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/dpe-engine/dpe/internal/model"
)

// progressState is one look at a waited-for job or instance.
type progressState struct {
	what    string // "workflow 12", "job 7"
	state   string
	percent int    // 0..100 as reported
	detail  string // the steps in flight, or the job's message
	// moves says a change of detail is a change of state worth a line
	// (steps moving on), not chatter (a job's message).
	moves bool
	final bool
	// took is how long it ran: so far, or start to end once final.
	took time.Duration
}

// maxCurrent bounds the steps in flight a progress line names.
const maxCurrent = 3

func instanceProgress(i model.Instance, now time.Time) progressState {
	p := progressState{what: fmt.Sprintf("workflow %d", i.ID), state: string(i.State), percent: i.Progress, final: i.State.Final(), moves: true}
	switch n := len(i.Current); {
	case n > maxCurrent:
		p.detail = fmt.Sprintf("step %s and %d more", strings.Join(i.Current[:maxCurrent], ", "), n-maxCurrent)
	case n > 0:
		p.detail = "step " + strings.Join(i.Current, ", ")
	}
	p.took = ranFor(i.CreatedAt, i.StartedAt, i.FinishedAt, now)
	return p
}

func jobProgress(j model.Job, now time.Time) progressState {
	p := progressState{what: fmt.Sprintf("job %d", j.ID), state: string(j.State), percent: j.Progress, detail: j.Message, final: j.State.Final()}
	if j.State == model.JobQueued && j.Attempt > 0 {
		p.state = fmt.Sprintf("queued (after attempt %d of %d)", j.Attempt, j.MaxAttempts)
	}
	p.took = ranFor(j.CreatedAt, j.StartedAt, j.FinishedAt, now)
	return p
}

// ranFor is the run time from start (or, before the start, creation) to
// the end or now.
func ranFor(created time.Time, started, finished *time.Time, now time.Time) time.Duration {
	from := created
	if started != nil {
		from = *started
	}
	to := now
	if finished != nil {
		to = *finished
	}
	return max(to.Sub(from), 0)
}

// progressView shows how a waited-for job or instance moves on stderr.
type progressView interface {
	// update shows a new look; the last one has final set.
	update(p progressState)
	// abort ends the view early (the wait failed or was interrupted).
	abort()
}

// newProgressView draws a bar when w is a terminal and writes plain lines
// otherwise (a log, a pipe, CI).
func newProgressView(w io.Writer) progressView {
	if isTerminal(w) {
		return newBarView(w)
	}
	return &lineView{w: w}
}

// lineView writes one line per change of state or of the steps in flight,
// and when the progress enters a new tenth (a job's message rides along):
// a log gets a readable history, never a redrawn frame.
type lineView struct {
	w    io.Writer
	last string
	tens int
}

func (v *lineView) abort() {}

func (v *lineView) update(p progressState) {
	if p.final {
		word := "after"
		if p.state == string(model.JobSucceeded) {
			word = "in"
		}
		fmt.Fprintf(v.w, "%s %s %s %s\n", p.what, p.state, word, formatDuration(p.took))
		return
	}
	key := p.state
	if p.moves {
		key += "\x00" + p.detail
	}
	tens := p.percent / 10
	if key == v.last && tens == v.tens {
		return
	}
	v.last, v.tens = key, tens
	line := fmt.Sprintf("%s %s %d%%", p.what, p.state, p.percent)
	if p.detail != "" {
		line += ": " + p.detail
	}
	fmt.Fprintln(v.w, line)
}

// barView draws a progress bar (github.com/schollz/progressbar) that ends
// in the real final state: full only when it succeeded, left where it
// stopped when it failed or was canceled.
type barView struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

// detailWidth bounds the description of the bar so it fits one line.
const detailWidth = 40

func newBarView(w io.Writer) *barView {
	return &barView{w: w, bar: progressbar.NewOptions(100,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetRenderBlankState(false),
	)}
}

// abort leaves the bar as it is and moves to the next line for the error.
func (v *barView) abort() {
	_ = v.bar.Exit()
	fmt.Fprintln(v.w)
}

func (v *barView) update(p progressState) {
	desc := p.what + " " + p.state
	if p.detail != "" && !p.final {
		d := []rune(p.detail)
		if len(d) > detailWidth {
			d = append(d[:detailWidth-1], '…')
		}
		desc += ": " + string(d)
	}
	if !p.final {
		// 100 would finish the bar: only a success may fill it.
		v.bar.Describe(desc)
		_ = v.bar.Set(min(max(p.percent, 0), 99))
		return
	}
	if p.state == string(model.InstanceSucceeded) {
		v.bar.Describe(desc)
		_ = v.bar.Finish()
	} else {
		// Left where the run was last seen going: a run that failed on
		// its last step reports all steps done, yet it did not get there.
		v.bar.Describe(desc)
		_ = v.bar.Exit()
	}
	fmt.Fprintln(v.w)
}
