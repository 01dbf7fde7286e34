package wire

import (
	"io"
	"net/http"
)

// StreamBody answers with a body that write produces, sending the 200
// status and contentType only at its first write, so that an error found
// before any output (no such container or image) still becomes an HTTP
// error. An error after output has begun cuts the connection
// (http.ErrAbortHandler): the status is sent, and a cut is the only signal
// left that keeps the client from taking a short stream for a whole one.
// A write that produces nothing still sends the status, with an empty
// body. Export and image save use it.
func StreamBody(w http.ResponseWriter, contentType string, write func(io.Writer) error) error {
	lw := &lazyStream{w: w, contentType: contentType}
	if err := write(lw); err != nil {
		if !lw.started {
			return err
		}
		panic(http.ErrAbortHandler)
	}
	if !lw.started {
		lw.start()
	}
	return nil
}

// lazyStream sends the status and headers on the first write.
type lazyStream struct {
	w           http.ResponseWriter
	contentType string
	started     bool
}

func (l *lazyStream) start() {
	l.started = true
	l.w.Header().Set("Content-Type", l.contentType)
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyStream) Write(p []byte) (int, error) {
	if !l.started {
		l.start()
	}
	return l.w.Write(p)
}
