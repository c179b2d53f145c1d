package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/template"
)

// stepNode is one line of the step tree of `workflow show`: a step record,
// or a foreach iteration (which has no record of its own).
type stepNode struct {
	label    string
	kind     string
	state    string
	start    *time.Time
	end      *time.Time
	jobID    int64
	notes    []note
	children []*stepNode

	order int    // position of the activity in the template (pre-order)
	iter  int    // foreach iteration index, -1 for a step
	path  string // step path, the last tie-break
	err   string // the step's error, shown once (see dedupErrors)
}

// note is a line of text under a step: a log message, an error, a job's
// progress.
type note struct{ label, text string }

// templateOrder numbers a template's activities in pre-order: siblings in
// a template run in that order (a sequence one after the other, a
// parallel's children at once, try before catch before finally, on_error
// after its activity), so it orders a tree level by run order whatever the
// clocks of the workers that recorded the steps.
func templateOrder(t *template.Template) map[string]int {
	order := map[string]int{}
	if t == nil {
		return order
	}
	t.Walk(func(a *template.Activity) bool {
		order[a.ID] = len(order)
		return true
	})
	return order
}

// childSteps returns the step tree of a sub-workflow instance, with a
// note naming it, or nil when it cannot be read.
type childSteps func(id int64) (*model.Instance, []*stepNode)

// buildStepTree arranges d's steps as a tree by their paths ("a/b" under
// "a", "fan[2]/x" under iteration [2] of "fan"), each level in run order:
// template order, foreach iterations by index, then start time. A
// sub-workflow step gets the child instance's tree from child (may be
// nil).
func buildStepTree(d model.InstanceDetail, order map[string]int, child childSteps) []*stepNode {
	jobs := map[int64]model.Job{}
	for _, j := range d.Jobs {
		jobs[j.ID] = j
	}
	byPath := map[string]*stepNode{}
	var roots []*stepNode
	var node func(path string) *stepNode
	attach := func(n *stepNode, parentPath string) {
		if parentPath == "" {
			roots = append(roots, n)
			return
		}
		p := node(parentPath)
		p.children = append(p.children, n)
	}
	// node returns the node of path, creating it (and its ancestors) for
	// an iteration or a path with no record.
	node = func(path string) *stepNode {
		if n, ok := byPath[path]; ok {
			return n
		}
		n := &stepNode{path: path, iter: -1, order: math.MaxInt}
		byPath[path] = n
		if strings.HasSuffix(path, "]") {
			open := strings.LastIndex(path, "[")
			n.iter, _ = strconv.Atoi(path[open+1 : len(path)-1])
			n.label = path[open:]
			n.kind = "item"
			attach(n, path[:open])
			return n
		}
		parent, label := "", path
		if i := strings.LastIndex(path, "/"); i >= 0 {
			parent, label = path[:i], path[i+1:]
		}
		n.label = label
		attach(n, parent)
		return n
	}
	for i := range d.Steps {
		s := d.Steps[i]
		n := node(s.Path)
		n.label, n.kind, n.state = s.ID, s.Kind, string(s.State)
		if o, ok := order[s.ID]; ok {
			n.order = o
		}
		start := s.StartedAt
		n.start, n.end, n.jobID, n.err = &start, s.FinishedAt, s.JobID, s.Error
		if s.Kind == string(template.KindLog) {
			var r struct{ Message string }
			if json.Unmarshal(s.Result, &r) == nil && r.Message != "" {
				n.notes = append(n.notes, note{"log", r.Message})
			}
		}
		if j, ok := jobs[s.JobID]; ok && !j.State.Final() {
			text := fmt.Sprintf("%s %d%%", j.State, j.Progress)
			if j.Message != "" {
				text += " " + j.Message
			}
			if j.Processor != "" {
				text += " on " + j.Processor
			}
			n.notes = append(n.notes, note{"job", text})
		}
		if s.ChildID != 0 {
			text := fmt.Sprintf("workflow %d", s.ChildID)
			if child != nil {
				if inst, kids := child(s.ChildID); inst != nil {
					text = fmt.Sprintf("workflow %d %s (%s@%d) %s", inst.ID, inst.Name, inst.Template, inst.Version, inst.State)
					n.children = append(n.children, kids...)
				}
			}
			n.notes = append(n.notes, note{"runs", text})
		}
	}
	// Foreach iterations: label with the item, state and times from what
	// ran in them.
	for _, n := range byPath {
		if n.iter < 0 {
			continue
		}
		if f, ok := byPath[n.path[:strings.LastIndex(n.path, "[")]]; ok {
			if item := foreachItem(d.Steps, f.path, n.iter); item != "" {
				n.label += " " + item
			}
		}
	}
	sortTree(roots)
	for _, r := range roots {
		summarize(r)
		dedupErrors(r)
	}
	return roots
}

// foreachItem is the item of iteration i of the foreach at path, short.
func foreachItem(steps []model.Step, path string, i int) string {
	for _, s := range steps {
		if s.Path != path {
			continue
		}
		var r struct{ Items []json.RawMessage }
		if json.Unmarshal(s.Result, &r) != nil || i >= len(r.Items) {
			return ""
		}
		var str string
		item := string(r.Items[i])
		if json.Unmarshal(r.Items[i], &str) == nil {
			item = str
		}
		if rs := []rune(item); len(rs) > 40 {
			item = string(rs[:39]) + "…"
		}
		return item
	}
	return ""
}

func sortTree(level []*stepNode) {
	sort.SliceStable(level, func(a, b int) bool {
		x, y := level[a], level[b]
		if x.order != y.order {
			return x.order < y.order
		}
		if x.iter != y.iter {
			return x.iter < y.iter
		}
		if xs, ys := startOf(x), startOf(y); !xs.Equal(ys) {
			return xs.Before(ys)
		}
		return x.path < y.path
	})
	for _, n := range level {
		sortTree(n.children)
	}
}

func startOf(n *stepNode) time.Time {
	if n.start != nil {
		return *n.start
	}
	return time.Time{}
}

// summarize gives an iteration (no record of its own) the state and times
// of what ran in it.
func summarize(n *stepNode) {
	for _, c := range n.children {
		summarize(c)
	}
	if n.state != "" || len(n.children) == 0 {
		return
	}
	rank := map[string]int{"succeeded": 1, "skipped": 1, "canceled": 2, "failed": 3, "running": 4}
	ended := true
	for _, c := range n.children {
		if rank[c.state] > rank[n.state] {
			n.state = c.state
		}
		if c.start != nil && (n.start == nil || c.start.Before(*n.start)) {
			n.start = c.start
		}
		if c.end == nil {
			ended = false
		} else if n.end == nil || c.end.After(*n.end) {
			n.end = c.end
		}
	}
	if !ended {
		n.end = nil
	}
}

// dedupErrors shows an error once: on the deepest step that has it (a
// failure is recorded again by each block it fails). A tree already done
// (a sub-workflow's) is left as it is.
func dedupErrors(n *stepNode) (shown map[string]bool) {
	shown = map[string]bool{}
	for _, c := range n.children {
		for e := range dedupErrors(c) {
			shown[e] = true
		}
	}
	for _, nt := range n.notes {
		if nt.label == "error" {
			shown[nt.text] = true
		}
	}
	if n.err != "" && !shown[n.err] {
		n.notes = append(n.notes, note{"error", n.err})
		shown[n.err] = true
	}
	return shown
}

// writeStepTree prints the tree as a table (STEP, KIND, STATE, STARTED,
// DURATION, JOB) with tree lines in the first column; notes go on lines of
// their own under their step, wrapped to width and indented, so no text
// breaks the columns.
func writeStepTree(w io.Writer, roots []*stepNode, now time.Time, width int) {
	type row struct {
		cells  []string
		indent string // before the notes
		notes  []note
	}
	rows := []row{{cells: []string{"STEP", "KIND", "STATE", "STARTED", "DURATION", "JOB"}}}
	var walk func(level []*stepNode, prefix string, top bool)
	walk = func(level []*stepNode, prefix string, top bool) {
		for i, n := range level {
			last := i == len(level)-1
			branch, more := "├─ ", "│  "
			if last {
				branch, more = "└─ ", "   "
			}
			if top {
				branch, more = "", ""
			}
			under := prefix + more
			indent := under + "   "
			if len(n.children) > 0 {
				indent = under + "│  "
			}
			started, took, job := "-", "-", "-"
			if n.start != nil {
				started = clockTime(*n.start, now)
				switch {
				case n.end != nil:
					took = formatDuration(n.end.Sub(*n.start))
				case n.state == string(model.StepRunning):
					took = formatDuration(now.Sub(*n.start)) + "…"
				}
			}
			if n.jobID != 0 {
				job = strconv.FormatInt(n.jobID, 10)
			}
			rows = append(rows, row{
				cells:  []string{prefix + branch + n.label, dash(n.kind), dash(n.state), started, took, job},
				indent: indent, notes: n.notes,
			})
			walk(n.children, under, false)
		}
	}
	walk(roots, "", true)
	widths := make([]int, len(rows[0].cells))
	for _, r := range rows {
		for i, c := range r.cells {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r.cells {
			b.WriteString(c)
			if i < len(r.cells)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		for _, nt := range r.notes {
			writeLabeled(w, r.indent, nt.label, nt.text, width)
		}
	}
}

// clockTime is t as a time of day to the millisecond, with the date when
// it is not today's.
func clockTime(t, now time.Time) string {
	t, now = t.Local(), now.Local()
	if y, m, d := t.Date(); y != now.Year() || m != now.Month() || d != now.Day() {
		return t.Format("2006-01-02 15:04:05.000")
	}
	return t.Format("15:04:05.000")
}
