package receiver

import "net/http"

// recorder notes the status the next handler answers, so that the verifier
// knows whether the handling succeeded. Unwrap lets http.ResponseController
// reach the underlying writer (flushing, deadlines, hijacking).
type recorder struct {
	http.ResponseWriter
	status int // the first final (non-1xx) status; 0 until one is sent
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

// Flush implements http.Flusher for handlers that assert it directly.
func (r *recorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush() // http.Flusher has no error to report
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// succeeded reports whether the handler answered 2xx. A handler that wrote
// nothing answers 200, as net/http sends it.
func (r *recorder) succeeded() bool {
	return r.status == 0 || (r.status >= 200 && r.status < 300)
}
