package wire

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestStreamBody(t *testing.T) {
	early := errors.New("No such container: x")
	for _, tc := range []struct {
		name      string
		write     func(io.Writer) error
		wantErr   error
		wantPanic bool
		wantType  string
		wantBody  string
	}{
		{name: "error before output", write: func(io.Writer) error { return early }, wantErr: early},
		{name: "error after output", write: func(w io.Writer) error {
			io.WriteString(w, "partial")
			return errors.New("disk gone")
		}, wantPanic: true},
		{name: "output", write: func(w io.Writer) error {
			_, err := io.WriteString(w, "TAR")
			return err
		}, wantType: "application/x-tar", wantBody: "TAR"},
		{name: "no output", write: func(io.Writer) error { return nil }, wantType: "application/x-tar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			var err error
			panicked := func() (p any) {
				defer func() { p = recover() }()
				err = StreamBody(rec, "application/x-tar", tc.write)
				return nil
			}()
			if tc.wantPanic {
				if panicked != http.ErrAbortHandler {
					t.Fatalf("StreamBody panicked with %v, want http.ErrAbortHandler", panicked)
				}
				return
			}
			if panicked != nil {
				t.Fatalf("StreamBody panicked: %v", panicked)
			}
			if err != tc.wantErr {
				t.Fatalf("StreamBody = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if rec.Flushed || rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "" {
					t.Errorf("StreamBody wrote %q with headers %v before failing", rec.Body, rec.Header())
				}
				return
			}
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != tc.wantType || rec.Body.String() != tc.wantBody {
				t.Errorf("StreamBody sent %d %q %q, want 200 %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body, tc.wantType, tc.wantBody)
			}
		})
	}
}
