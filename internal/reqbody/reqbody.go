// Package reqbody reads an inbound request's body under a size limit, for the
// ingest handler and the receiver alike: one rule for what is too large and
// how it is answered.
package reqbody

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/kapsel-dev/kapsel"
)

// maxHint caps the first allocation Content-Length may ask for.
const maxHint = 1 << 20

// Read reads the whole body of r, refusing it with [TooLarge] (413 E1002) as
// soon as it crosses limit, and with 400 E1009 when it cannot be read.
// Content-Length is only a hint for the first allocation, capped, so a lying
// or missing one changes nothing.
func Read(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	hint := min(r.ContentLength, limit, maxHint)
	if hint < 0 {
		hint = 512
	}
	buf := make([]byte, 0, hint+1)
	body := http.MaxBytesReader(w, r.Body, limit)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, TooLarge(limit)
			}
			return nil, &kapsel.Error{Code: kapsel.CodeMalformedRequest, Detail: "could not read the request body", Err: err}
		}
	}
}

// TooLarge is the error for a body over limit bytes: 413 E1002.
func TooLarge(limit int64) error {
	return &kapsel.Error{Code: kapsel.CodeBodyTooLarge, Detail: fmt.Sprintf("body is larger than %d bytes", limit)}
}
