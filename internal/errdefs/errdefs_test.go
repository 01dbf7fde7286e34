package errdefs

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"testing"
)

func TestStatus(t *testing.T) {
	base := errors.New("No such container: x")
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, http.StatusOK},
		{"plain", base, http.StatusInternalServerError},
		{"not found", NotFound(base), http.StatusNotFound},
		{"wrapped not found", fmt.Errorf("lookup: %w", NotFound(base)), http.StatusNotFound},
		{"invalid", InvalidParameter(base), http.StatusBadRequest},
		{"conflict", Conflict(base), http.StatusConflict},
		{"unauthorized", Unauthorized(base), http.StatusUnauthorized},
		{"forbidden", Forbidden(base), http.StatusForbidden},
		{"not modified", NotModified(base), http.StatusNotModified},
		{"not implemented", NotImplemented(base), http.StatusNotImplemented},
		{"unavailable", Unavailable(base), http.StatusServiceUnavailable},
		{"system", System(base), http.StatusInternalServerError},
		{"outer kind wins", Conflict(NotFound(base)), http.StatusConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Status(tt.err); got != tt.want {
				t.Errorf("Status(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestWrapKeepsMessageAndChain(t *testing.T) {
	err := NotFound(fmt.Errorf("No such image: %s: %w", "busybox:latest", fs.ErrNotExist))
	if got, want := err.Error(), "No such image: busybox:latest: file does not exist"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("errors.Is(err, fs.ErrNotExist) = false, want true: wrapping must keep the chain")
	}
	if errors.Is(err, ErrConflict) {
		t.Error("errors.Is(err, ErrConflict) = true for a not-found error")
	}
	if NotFound(nil) != nil {
		t.Error("NotFound(nil) != nil")
	}
}
