package wire

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
)

// JSONMessage is one line of dockerd's JSON progress stream (pull, import,
// load, push).
type JSONMessage struct {
	Stream      string     `json:"stream,omitempty"`
	Status      string     `json:"status,omitempty"`
	ID          string     `json:"id,omitempty"`
	ErrorDetail *JSONError `json:"errorDetail,omitempty"`
	Error       string     `json:"error,omitempty"` // deprecated in API 1.48, still read by clients
}

// JSONError is JSONMessage.ErrorDetail.
type JSONError struct {
	Message string `json:"message"`
}

// Progress writes a JSON progress stream: headers at once, then one JSON
// object plus "\r\n" per message, each flushed as its own chunk. Once it has
// started, errors can only be reported in band with Error.
type Progress struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	started bool
}

// NewProgress wraps w; nothing is written until the first message.
func NewProgress(w http.ResponseWriter) *Progress { return &Progress{w: w} }

// Started reports whether the response has begun, after which an error can
// no longer become an HTTP status.
func (p *Progress) Started() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}

// Start sends the headers now, so clients see the stream begin.
func (p *Progress) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.startLocked()
}

func (p *Progress) startLocked() {
	if p.started {
		return
	}
	p.started = true
	// Progress streams answer while the request body (a tar being loaded
	// or imported) is still arriving. Without full duplex, net/http would
	// discard the unread body as soon as the headers go out.
	_ = http.NewResponseController(p.w).EnableFullDuplex()
	p.w.Header().Set("Content-Type", "application/json")
	p.w.WriteHeader(http.StatusOK)
	Flush(p.w)
}

// Finish reads what is left of r's body once the handler is done with it,
// if the stream started. A started progress stream is full duplex, and
// net/http then consumes an unread body while closing it after the handler
// returns; reaching the body's end there starts the connection's background
// read after the server has stopped it, and the next request's read panics
// ("invalid concurrent Body.Read call"). Reading the rest here, while the
// handler still runs, keeps the connection usable. Call it with defer.
func (p *Progress) Finish(r *http.Request) {
	if p.Started() {
		io.Copy(io.Discard, r.Body)
	}
}

// Write sends one message.
func (p *Progress) Write(m JSONMessage) error { return p.WriteValue(m) }

// WriteValue sends one message of another shape, such as the progress
// messages of a pull (types.ProgressMessage).
func (p *Progress) WriteValue(m any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	b = append(b, '\r', '\n')
	p.mu.Lock()
	defer p.mu.Unlock()
	p.startLocked()
	if _, err := p.w.Write(b); err != nil {
		return err
	}
	Flush(p.w)
	return nil
}

// Status sends {"status": s}.
func (p *Progress) Status(s string) error { return p.Write(JSONMessage{Status: s}) }

// Stream sends {"stream": s}.
func (p *Progress) Stream(s string) error { return p.Write(JSONMessage{Stream: s}) }

// End finishes a stream's handler with err: before the stream started it
// is returned, to become the response's status; after, it is sent in band,
// as dockerd does, and End returns nil.
func (p *Progress) End(err error) error {
	if err == nil {
		return nil
	}
	if !p.Started() {
		return err
	}
	p.Error(err)
	return nil
}

// Error sends an in-band error, as the CLI expects once a stream started.
func (p *Progress) Error(err error) error {
	return p.Write(JSONMessage{ErrorDetail: &JSONError{Message: err.Error()}, Error: err.Error()})
}
