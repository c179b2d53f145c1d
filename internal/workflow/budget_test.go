package workflow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dpe-engine/dpe/internal/model"
)

const quadraticTemplate = `
name: quadratic
args:
  l: {type: list}
steps:
  - id: n
    set: {n: "${{ count(args.l, count(args.l, # == 1) > 0) }}"}
`

// hundredThousand is the list of finding 3 of issue 13: no item equals 1,
// so the nested count scans the list for every item.
func hundredThousand() map[string]any {
	l := make([]any, 100_000)
	for i := range l {
		l[i] = fmt.Sprintf("f%d", i)
	}
	return map[string]any{"l": l}
}

// TestExpressionBudgetFailsStep: the expression runs out of its budget and
// the instance fails with an error naming it, instead of holding a worker
// slot for minutes.
func TestExpressionBudgetFailsStep(t *testing.T) {
	s := newSim(t, parse(t, quadraticTemplate), hundredThousand())
	adv, err := Decide(s.input())
	if err != nil {
		t.Fatal(err)
	}
	if adv.State != model.InstanceFailed {
		t.Fatalf("state %s, want failed", adv.State)
	}
	for _, want := range []string{"count(args.l, count(args.l, # == 1) > 0)", "evaluation budget"} {
		if !strings.Contains(adv.Error, want) {
			t.Errorf("error %q does not say %q", adv.Error, want)
		}
	}
}

// TestDecideStopsWithContext: a worker stopping mid-evaluation gets an
// error and no advance, rather than a step failed by the shutdown.
func TestDecideStopsWithContext(t *testing.T) {
	s := newSim(t, parse(t, quadraticTemplate), hundredThousand())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	in := s.input()
	in.Context = ctx
	if _, err := Decide(in); !errors.Is(err, context.Canceled) {
		t.Fatalf("Decide with a cancelled context = %v, want context.Canceled", err)
	}
}
