package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/dpe-engine/dpe/internal/jobtype"
)

func assertJSON(t *testing.T, v any, want string) {
	t.Helper()
	got, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("result JSON %s, want %s", got, want)
	}
}

func TestNoop(t *testing.T) {
	b := setup(t)
	tests := []struct {
		params string
		want   string // result JSON; "" when a retryable error is expected
	}{
		{``, `{"slept":"0s"}`},
		{`{"sleep":"10ms"}`, `{"slept":"10ms"}`},
		{`{"result":{"n":1,"s":"x"}}`, `{"n":1,"s":"x"}`},
		{`{"fail":true}`, ""},
	}
	for _, tt := range tests {
		res, err := b.run(t, jobtype.Noop, tt.params)
		if tt.want == "" {
			if !errors.Is(err, errNoopFail) || IsPermanent(err) {
				t.Errorf("noop %s: err = %v, want a retryable failure", tt.params, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("noop %s: %v", tt.params, err)
		}
		assertJSON(t, res, tt.want)
	}
}

func TestNoopCancel(t *testing.T) {
	b := setup(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	tk := task(t, jobtype.Noop, `{"sleep":"1h"}`, nil)
	done := make(chan error)
	go func() {
		_, err := b.h[jobtype.Noop].Run(ctx, tk)
		done <- err
	}()
	stop := errors.New("shutdown")
	cancel(stop)
	if err := <-done; !errors.Is(err, context.Canceled) || !errors.Is(err, stop) {
		t.Fatalf("err = %v, want context.Canceled with its cause", err)
	}
}
