package triggers

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/scheduler"
)

// FuzzSentSpec: any state a trigger role sends is refused as invalid
// (naming state.spec) or gives a spec whose next fire times strictly
// increase; nothing panics.
func FuzzSentSpec(f *testing.F) {
	for _, s := range []string{
		`{"last":"2026-11-25T11:00:00Z","spec":{"cron":"30 2 * * *","timezone":"Europe/Berlin","template":"note"}}`,
		`{"spec":{"cron":"@hourly","template":"t","args":{"a":[1,{"b":null}]},"priority":5,"disabled":true}}`,
		`{"spec":null}`, `{"spec":"x"}`, `[]`, `{"spec":{"cron":"*/0 * * * *"}}`, `{"spec":{"cron":"0 0 30 2 *"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, state []byte) {
		raw, err := sentSpec(state)
		if err != nil {
			if !errors.Is(err, model.ErrInvalid) {
				t.Fatalf("%s: %v is not a refusal of the input", state, err)
			}
			return
		}
		if raw == nil {
			return
		}
		var spec model.ScheduleSpec
		if err := json.Unmarshal(raw, &spec); err != nil {
			t.Fatalf("kept a spec it cannot read: %s", raw)
		}
		at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		next, err := scheduler.NextFires(spec, at, 5)
		if err != nil {
			t.Fatalf("kept spec %s: %v", raw, err)
		}
		for _, n := range next {
			if !n.After(at) {
				t.Fatalf("%s: next fires %v do not increase", raw, next)
			}
			at = n
		}
	})
}
