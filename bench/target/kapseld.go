package target

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// KapseldConfig is how to start kapseld.
type KapseldConfig struct {
	Bin         string // built by BuildKapseld
	DatabaseURL string // empty = the embedded SQLite store in DataDir
	DataDir     string
	AdminToken  string
}

// BuildKapseld builds ../cmd/kapseld from the repository at repoDir into
// dir, returning the binary's path.
func BuildKapseld(ctx context.Context, repoDir, dir string) (string, error) {
	bin := filepath.Join(dir, "kapseld")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kapseld")
	cmd.Dir = repoDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building kapseld in %s: %w\n%s", repoDir, err, out)
	}
	return bin, nil
}

// FindRepo walks up from dir to the Kapsel repository root (the directory
// holding cmd/kapseld/main.go).
func FindRepo(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for range 64 {
		if _, err := os.Stat(filepath.Join(dir, "cmd", "kapseld", "main.go")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("no Kapsel repository (cmd/kapseld) above the working directory; pass --repo or --kapseld-url")
}

// StartKapseld runs kapseld on a free 127.0.0.1 port with private
// destinations allowed (the destination is local) and warn-level logs.
func StartKapseld(ctx context.Context, c KapseldConfig) (*Process, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.Bin)
	cmd.Env = append(os.Environ(),
		"KAPSEL_LISTEN="+addr,
		"KAPSEL_ADMIN_TOKEN="+c.AdminToken,
		"KAPSEL_ALLOW_PRIVATE_DESTINATIONS=true",
		"KAPSEL_LOG_LEVEL=warn",
	)
	if c.DatabaseURL != "" {
		cmd.Env = append(cmd.Env, "KAPSEL_DATABASE_URL="+c.DatabaseURL)
	} else {
		cmd.Env = append(cmd.Env, "KAPSEL_DATABASE_URL=", "KAPSEL_DATA_DIR="+c.DataDir)
	}
	return StartProcess(ctx, "kapseld", addr, "/readyz", cmd)
}
