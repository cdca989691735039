package service

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kapsel-dev/kapsel"
)

// invalid returns an E1009 error with a formatted detail.
func invalid(format string, args ...any) error {
	return kapsel.NewError(kapsel.CodeMalformedRequest, format, args...)
}

// notFoundErr turns a store's ErrNotFound into the E1011 answer for a
// resource kind and id; other errors pass through unchanged.
func notFoundErr(err error, kind, id string) error {
	if !errors.Is(err, kapsel.ErrNotFound) {
		return err
	}
	return &kapsel.Error{Code: kapsel.CodeNotFound, Detail: fmt.Sprintf("%s %q not found", kind, clip(id)), Err: err}
}

// checkName trims a resource name and checks its length; required says
// whether it may be empty.
func checkName(name string, required bool) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "" && required:
		return "", invalid("name is required")
	case len(name) > MaxNameLength:
		return "", invalid("name is longer than %d bytes", MaxNameLength)
	}
	return name, nil
}
