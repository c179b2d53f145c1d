package template

import "time"

// Kind is the kind of an activity: the one kind key it was written with.
type Kind string

// Activity kinds.
const (
	KindJob      Kind = "job"      // submit a job and wait for it
	KindSequence Kind = "sequence" // run Children one after another
	KindParallel Kind = "parallel" // run Children at once, wait for all
	KindIf       Kind = "if"       // Cond chooses Then or Else
	KindForeach  Kind = "foreach"  // run Do once per item of Items
	KindSet      Kind = "set"      // assign Set into vars
	KindLog      Kind = "log"      // record Message in the instance log
	KindDelay    Kind = "delay"    // wait for Delay
	KindWorkflow Kind = "workflow" // start the Template sub-workflow and wait
	KindFail     Kind = "fail"     // fail with Message
	KindTry      Kind = "try"      // run Children; Catch on error; Finally always
)

// kinds lists the kind keys in the order they are reported.
var kinds = []Kind{KindJob, KindSequence, KindParallel, KindIf, KindForeach, KindSet, KindLog, KindDelay, KindWorkflow, KindFail, KindTry}

// OnErrorAction says what happens when an activity fails.
type OnErrorAction string

// On-error actions.
const (
	OnErrorFail     OnErrorAction = "fail"     // the failure propagates (default)
	OnErrorContinue OnErrorAction = "continue" // the failure is ignored
	OnErrorSteps    OnErrorAction = "steps"    // OnError.Steps run instead
)

// OnError is an activity's error policy.
type OnError struct {
	Action OnErrorAction
	Steps  []*Activity // OnErrorSteps only; error is in scope there
}

// Retry is a job's retry policy; zero fields take the job defaults
// (model.DefaultMaxAttempts, ...).
type Retry struct {
	MaxAttempts int
	Backoff     time.Duration
	BackoffMax  time.Duration
}

// Activity is one node of a template's tree. Kind says which of the
// per-kind fields are set; the others are zero.
type Activity struct {
	ID     string // explicit, or generated ("s<N>") when AutoID
	AutoID bool
	Kind   Kind
	Line   int    // line of the activity in the source
	Path   string // position in the tree, e.g. "steps[2].then[0]"

	// KindJob.
	JobType  string
	Params   Value // a map; its values may hold expressions
	Priority int   // offset added to the instance's priority
	Retry    Retry
	Selector map[string]string
	// Timeout bounds a job or a sub-workflow (0: none).
	Timeout time.Duration

	// KindSequence, KindParallel, and the body of KindTry.
	Children []*Activity
	FailFast bool // KindParallel: cancel the others on the first failure

	// KindIf.
	Cond       *Expr
	Then, Else []*Activity

	// KindForeach.
	Items       *Expr  // yields a list
	As          string // loop variable, "item" by default
	Concurrency int    // 1: sequential, N: at most N at once, 0: unbounded
	Do          []*Activity

	// KindSet.
	Set map[string]Value

	// KindLog and KindFail.
	Message Value // a string, possibly interpolated

	// KindDelay: a duration string, or an interpolated string that yields
	// one; see Value.EvalDuration.
	Delay Value

	// KindWorkflow.
	Template string
	Args     Value // a map

	// KindTry.
	Catch, Finally []*Activity

	// OnError applies to every kind.
	OnError OnError
}

// Block is one named list of child activities.
type Block struct {
	Field string // "sequence", "then", "do", "catch", "on_error", ...
	Steps []*Activity
}

// Blocks returns a's child lists in source order, empty ones left out.
func (a *Activity) Blocks() []Block {
	var bs []Block
	add := func(field string, steps []*Activity) {
		if len(steps) > 0 {
			bs = append(bs, Block{Field: field, Steps: steps})
		}
	}
	switch a.Kind {
	case KindSequence, KindParallel, KindTry:
		add(string(a.Kind), a.Children)
	}
	add("then", a.Then)
	add("else", a.Else)
	add("do", a.Do)
	add("catch", a.Catch)
	add("finally", a.Finally)
	add("on_error", a.OnError.Steps)
	return bs
}
