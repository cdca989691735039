package target

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"time"
)

// ServeNoop answers every POST 202 after reading its body, and GET /readyz
// 200, until ctx ends: the calibration target.
func ServeNoop(ctx context.Context, addr string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"id":"noop"}`))
	})
	return serve(ctx, addr, mux)
}

func serve(ctx context.Context, addr string, h http.Handler) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// StartSelf runs this executable with args (a serve-* subcommand) on a free
// address passed as --listen, and waits until it is ready.
func StartSelf(ctx context.Context, name string, args ...string) (*Process, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, append(args, "--listen", addr)...)
	cmd.Env = os.Environ()
	return StartProcess(ctx, name, addr, "/readyz", cmd)
}
