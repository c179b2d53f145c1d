package model

import (
	"errors"
	"fmt"
)

// Sentinel errors shared by every layer. Stores translate native database
// errors into these; the API maps them to HTTP statuses.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request is well-formed but the current state forbids
	// it (a stale lease epoch, a name already taken, a job no longer running).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the input is malformed; see *FieldError for the field.
	ErrInvalid = errors.New("invalid input")
	// ErrUnavailable: the core database cannot be reached right now.
	ErrUnavailable = errors.New("unavailable")
)

// FieldError names the input field at fault. It matches ErrInvalid.
type FieldError struct {
	Field  string // JSON path of the field, e.g. "jobs[3].params.path"
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return fmt.Sprintf("%s: %s", e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrInvalid) true for field errors.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Invalid returns a *FieldError for field.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
