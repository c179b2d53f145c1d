package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/location"
)

// decode validates params against spec and unmarshals them into v. Bad
// params are a permanent error: another attempt would get the same ones.
func decode(spec jobtype.Spec, params json.RawMessage, v any) error {
	if err := spec.Validate(params); err != nil {
		return Permanent(fmt.Errorf("%s: %w", spec.Name, err))
	}
	params = bytes.TrimSpace(params)
	if len(params) == 0 || bytes.Equal(params, []byte("null")) {
		return nil
	}
	if err := json.Unmarshal(params, v); err != nil {
		return Permanent(fmt.Errorf("%s: params: %w", spec.Name, err))
	}
	return nil
}

// resolve confines the path of param field through the guard. A refused
// path is a permanent error naming the field; a location whose roots are
// all down (location.ErrNoHealthyRoot) is an outage, retried.
func (c Config) resolve(field, p string) (string, error) {
	r, err := c.Guard.Resolve(p)
	if err != nil {
		return "", pathErr(field, err)
	}
	return r, nil
}

// pathErr wraps the error of resolving param field: permanent, unless it
// is an outage that another attempt may not meet.
func pathErr(field string, err error) error {
	err = fmt.Errorf("params.%s: %w", field, err)
	if errors.Is(err, location.ErrNoHealthyRoot) {
		return err
	}
	return Permanent(err)
}

// fsErr marks file system errors that another attempt would hit again
// (missing file, permission, wrong file type) as permanent; others (a full
// disk, an I/O error, a network share that went away) stay retryable.
func fsErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission),
		errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR),
		errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.ENAMETOOLONG),
		errors.Is(err, syscall.EROFS):
		return Permanent(err)
	}
	return err
}

// ctxErr is the error of a handler stopped by its context: ctx.Err(), with
// the cancel cause (lease lost, shutdown, ...) when one was given.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}
