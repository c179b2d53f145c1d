package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/wire"
)

// labelRE is what selector and label keys and values may hold. It keeps them
// safe to use inside JSON paths of the SQLite engine.
var labelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// checkLabels checks labels (a job's selector, a processor's labels) given
// as field: at most wire.MaxLabels, keys and values names that match
// labelRE.
func checkLabels(field string, labels map[string]string) error {
	if len(labels) > wire.MaxLabels {
		return model.Invalid(field, "at most %d labels, got %d", wire.MaxLabels, len(labels))
	}
	for k, v := range labels {
		if err := wire.CheckName(field, k); err != nil {
			return err
		}
		if err := wire.CheckName(field+"."+k, v); err != nil {
			return err
		}
		if !labelRE.MatchString(k) {
			return model.Invalid(field, "bad label name %q: use letters, digits, '.', '_' or '-'", k)
		}
		if !labelRE.MatchString(v) {
			return model.Invalid(field+"."+k, "bad label value %q: use letters, digits, '.', '_' or '-'", v)
		}
	}
	return nil
}

// Submit validates and stores jobs in one transaction. Specs without a Key
// get key+"#"+index when key (the request's Idempotency-Key) is given, so a
// retried request creates nothing new. A key already used for a different
// request is refused (invalid Idempotency-Key), as the API refuses any
// other call repeating a key with another body. Nothing is stored if any spec is
// invalid; the error names the field, prefixed with "jobs[i]." when
// batch is true.
func (s *Service) Submit(ctx context.Context, specs []model.JobSpec, key string, batch bool) ([]store.Inserted, error) {
	if len(specs) == 0 {
		return nil, model.Invalid("jobs", "at least one job is required")
	}
	if len(specs) > MaxBatch {
		return nil, model.Invalid("jobs", "at most %d jobs per batch, got %d", MaxBatch, len(specs))
	}
	// The key is kept on the jobs: it has the limit of a key in the body
	// (PostgreSQL cannot index a key of kilobytes).
	if len(key) > MaxKeyLen {
		return nil, model.Invalid("Idempotency-Key", "at most %d characters, got %d", MaxKeyLen, len(key))
	}
	out := make([]model.JobSpec, len(specs))
	fromHeader := make([]bool, len(specs))
	for i, sp := range specs {
		prefix := ""
		if batch {
			prefix = fmt.Sprintf("jobs[%d].", i)
		}
		v, err := s.validateSpec(ctx, sp, prefix)
		if err != nil {
			return nil, err
		}
		if v.Key == "" && key != "" {
			v.Key = key
			if batch {
				v.Key = fmt.Sprintf("%s#%d", key, i)
			}
			fromHeader[i] = true
		}
		out[i] = v
	}
	res, err := s.store.JobInsert(ctx, out, s.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	for i, r := range res {
		if r.Existing && fromHeader[i] && !sameJob(r.Job, out[i]) {
			return nil, model.Invalid("Idempotency-Key", "already used for job %d, submitted with a different request: use a new key for a new job", r.Job.ID)
		}
	}
	seen := make(map[string]bool)
	for _, r := range res {
		if !r.Existing && !seen[r.Job.Type] {
			seen[r.Job.Type] = true
			s.wake.Signal(r.Job.Type)
		}
	}
	return res, nil
}

// validateSpec checks one spec and returns it with defaults applied.
func (s *Service) validateSpec(ctx context.Context, sp model.JobSpec, prefix string) (model.JobSpec, error) {
	field := func(f string) string { return prefix + f }
	if sp.Type == "" {
		return sp, model.Invalid(field("type"), "required")
	}
	if err := jobtype.ValidName(sp.Type); err != nil {
		return sp, model.Invalid(field("type"), "%v", err)
	}
	known, err := s.KnownType(ctx, sp.Type)
	if err != nil {
		return sp, err
	}
	if !known {
		list, err := s.store.TypeList(ctx)
		if err != nil {
			return sp, fmt.Errorf("list types: %w", err)
		}
		return sp, s.unknownType(field("type"), sp.Type, list)
	}
	params := bytes.TrimSpace(sp.Params)
	if len(params) == 0 || bytes.Equal(params, []byte("null")) {
		params = []byte("{}")
	}
	if spec, ok := s.builtins[sp.Type]; ok {
		if err := spec.Validate(params); err != nil {
			return sp, prefixField(err, prefix)
		}
	} else if !json.Valid(params) || params[0] != '{' {
		return sp, model.Invalid(field("params"), "must be a JSON object")
	}
	sp.Params = json.RawMessage(params)
	if sp.Priority < 0 || sp.Priority > model.MaxPriority {
		return sp, model.Invalid(field("priority"), "must be between 0 and %d, got %d", model.MaxPriority, sp.Priority)
	}
	if sp.MaxAttempts < 0 || sp.MaxAttempts > MaxAttempts {
		return sp, model.Invalid(field("max_attempts"), "must be between 1 and %d, got %d", MaxAttempts, sp.MaxAttempts)
	}
	if sp.BackoffMax != 0 && sp.BackoffMax < sp.Backoff {
		return sp, model.Invalid(field("backoff_max"), "must not be less than backoff")
	}
	if err := checkLabels(field("selector"), sp.Selector); err != nil {
		return sp, err
	}
	if len(sp.Key) > MaxKeyLen {
		return sp, model.Invalid(field("key"), "at most %d characters", MaxKeyLen)
	}
	if sp.Step != "" && sp.InstanceID == 0 {
		return sp, model.Invalid(field("step"), "needs instance_id")
	}
	return sp.WithDefaults(), nil
}

// prefixField prefixes the field of a *model.FieldError.
func prefixField(err error, prefix string) error {
	fe, ok := err.(*model.FieldError)
	if !ok || prefix == "" {
		return err
	}
	return &model.FieldError{Field: prefix + fe.Field, Reason: fe.Reason}
}

// sameJob reports whether the job is what the validated spec asks for:
// the rule that tells a retried submit from a key reused for another job.
// RunAfter is left out (a back-off moves it); so are the fields the
// server sets.
func sameJob(j model.Job, sp model.JobSpec) bool {
	if j.Type != sp.Type || j.Priority != sp.Priority || j.MaxAttempts != sp.MaxAttempts || j.Backoff != sp.Backoff ||
		j.BackoffMax != sp.BackoffMax || j.Timeout != sp.Timeout || j.InstanceID != sp.InstanceID || j.Step != sp.Step {
		return false
	}
	if len(j.Selector) != len(sp.Selector) {
		return false
	}
	for k, v := range sp.Selector {
		if j.Selector[k] != v {
			return false
		}
	}
	return jsonEqual(j.Params, sp.Params)
}

// jsonEqual compares two JSON documents as values (the engines may store
// them reformatted).
func jsonEqual(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
