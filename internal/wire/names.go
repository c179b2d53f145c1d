package wire

import "github.com/dpe-engine/dpe/internal/model"

// CheckName refuses a name of the field longer than MaxNameLen bytes,
// naming the field and the limit (model.ErrInvalid). It checks only the
// length: each kind of name has its own rules besides.
func CheckName(field, name string) error {
	return CheckLen(field, name, MaxNameLen)
}

// CheckLen refuses a value of the field longer than max bytes.
func CheckLen(field, value string, max int) error {
	if len(value) > max {
		return model.Invalid(field, "at most %d characters, got %d", max, len(value))
	}
	return nil
}
