package pgstore

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    []int
		wantErr string
	}{
		{"in order", fstest.MapFS{
			"migrations/0002_b.sql": file("B"), "migrations/0001_a.sql": file("A"), "migrations/README": file("x"),
		}, []int{1, 2}, ""},
		{"gap", fstest.MapFS{"migrations/0001_a.sql": file("A"), "migrations/0003_c.sql": file("C")}, nil, "without gaps"},
		{"duplicate", fstest.MapFS{"migrations/0001_a.sql": file("A"), "migrations/001_b.sql": file("B")}, nil, "without gaps"},
		{"no number", fstest.MapFS{"migrations/init.sql": file("A")}, nil, "NNNN_name.sql"},
		{"no name", fstest.MapFS{"migrations/0001.sql": file("A")}, nil, "NNNN_name.sql"},
		{"zero", fstest.MapFS{"migrations/0000_a.sql": file("A")}, nil, "NNNN_name.sql"},
		{"empty", fstest.MapFS{}, nil, "no migrations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := loadMigrations(tt.files)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != len(tt.want) {
				t.Fatalf("got %d migrations, want %d", len(ms), len(tt.want))
			}
			for i, m := range ms {
				if m.version != tt.want[i] {
					t.Fatalf("migration %d has version %d, want %d", i, m.version, tt.want[i])
				}
			}
			if ms[0].sql != "A" || ms[0].name != "a" {
				t.Fatalf("first migration = %+v", ms[0])
			}
		})
	}
}

func TestEmbeddedMigrations(t *testing.T) {
	t.Parallel()
	if LatestSchemaVersion() != len(migrations) || LatestSchemaVersion() < 1 {
		t.Fatalf("LatestSchemaVersion = %d with %d migrations", LatestSchemaVersion(), len(migrations))
	}
	for _, m := range migrations {
		// Schema-relative: a migration never names a schema.
		if strings.Contains(strings.ToLower(m.sql), "public.") {
			t.Errorf("migration %04d_%s names the public schema", m.version, m.name)
		}
	}
}
