package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/kapsel-dev/kapsel"
)

func TestMapError(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return fmt.Errorf("query: %w", &pgconn.PgError{Code: code, Message: "m"}) }
	errOther := errors.New("something else")
	tests := []struct {
		name string
		err  error
		want error // nil: returned unchanged
	}{
		{"no rows", pgx.ErrNoRows, kapsel.ErrNotFound},
		{"unique violation", pg("23505"), kapsel.ErrDuplicate},
		{"foreign key violation", pg("23503"), kapsel.ErrNotFound},
		{"not null violation", pg("23502"), kapsel.ErrInvalid},
		{"check violation", pg("23514"), kapsel.ErrInvalid},
		{"invalid text representation", pg("22P02"), kapsel.ErrInvalid},
		{"invalid byte sequence", pg("22021"), kapsel.ErrInvalid},
		{"unsupported unicode escape in jsonb", pg("22P05"), kapsel.ErrInvalid},
		{"connection failure", pg("08006"), kapsel.ErrUnavailable},
		{"too many connections", pg("53300"), kapsel.ErrUnavailable},
		{"admin shutdown", pg("57P01"), kapsel.ErrUnavailable},
		{"crash shutdown", pg("57P02"), kapsel.ErrUnavailable},
		{"starting up", pg("57P03"), kapsel.ErrUnavailable},
		{"statement timeout", pg("57014"), kapsel.ErrUnavailable},
		{"read-only transaction (a primary demoted by a failover)", pg("25006"), kapsel.ErrUnavailable},
		{"I/O error", pg("58030"), kapsel.ErrUnavailable},
		{"disk full", pg("53100"), kapsel.ErrUnavailable},
		{"serialization failure", pg("40001"), kapsel.ErrUnavailable},
		{"deadlock", pg("40P01"), kapsel.ErrUnavailable},
		{"lock timeout", pg("55P03"), kapsel.ErrUnavailable},
		{"syntax error", pg("42601"), nil},
		{"context cancelled", fmt.Errorf("x: %w", context.Canceled), kapsel.ErrUnavailable},
		{"deadline", context.DeadlineExceeded, kapsel.ErrUnavailable},
		{"conn closed", fmt.Errorf("x: %w", pgconn.ErrConnClosed), kapsel.ErrUnavailable},
		{"unexpected EOF", io.ErrUnexpectedEOF, kapsel.ErrUnavailable},
		{"other", errOther, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mapError(tt.err)
			if !errors.Is(got, tt.err) {
				t.Fatalf("mapError(%v) = %v, lost the driver error", tt.err, got)
			}
			if tt.want == nil {
				if got != tt.err {
					t.Fatalf("mapError(%v) = %v, want it unchanged", tt.err, got)
				}
				return
			}
			if !errors.Is(got, tt.want) {
				t.Fatalf("mapError(%v) = %v, want it to wrap %v", tt.err, got, tt.want)
			}
		})
	}
	if mapError(nil) != nil {
		t.Fatal("mapError(nil) != nil")
	}
}

func TestSchemaVersionError(t *testing.T) {
	t.Parallel()
	var err error = &SchemaVersionError{Current: 1, Latest: 3}
	for _, target := range []error{ErrSchemaBehind, kapsel.ErrUnavailable} {
		if !errors.Is(err, target) {
			t.Errorf("%v does not wrap %v", err, target)
		}
	}
	if got := kapsel.CodeOf(err); got != kapsel.CodeSchemaMismatch {
		t.Errorf("CodeOf = %s, want %s", got, kapsel.CodeSchemaMismatch)
	}
	var sv *SchemaVersionError
	if !errors.As(fmt.Errorf("ping: %w", err), &sv) || sv.Current != 1 || sv.Latest != 3 {
		t.Errorf("errors.As found %+v", sv)
	}
}
