// Package errdefs gives engine errors a kind (not found, conflict, ...) that
// the API layer maps to an HTTP status in one place, without the engine ever
// knowing about HTTP.
//
// Wrapping keeps the message exactly as given, because clients parse it:
//
//	return errdefs.NotFound(fmt.Errorf("No such container: %s", name))
//
// and classification works through any later %w wrapping:
//
//	errors.Is(err, errdefs.ErrNotFound)
package errdefs

import (
	"errors"
	"net/http"
)

// Kind is an error class. Kinds are comparable sentinel values so that
// errors.Is(err, ErrConflict) classifies a wrapped error, the same way
// syscall.Errno.Is maps errnos onto fs.ErrNotExist.
type Kind int

// The kinds, one per distinct client reaction.
const (
	kindUnknown Kind = iota
	ErrNotFound
	ErrInvalidParameter
	ErrConflict
	ErrUnauthorized
	ErrForbidden
	ErrNotModified
	ErrNotImplemented
	ErrUnavailable
	ErrSystem
)

var kindNames = [...]string{"unknown", "not found", "invalid parameter", "conflict", "unauthorized", "forbidden", "not modified", "not implemented", "unavailable", "system"}

// Error returns the kind's name; a Kind is only ever seen as a target of
// errors.Is, never as the message a client reads.
func (k Kind) Error() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// kinded attaches a Kind to an error without changing its message.
type kinded struct {
	err  error
	kind Kind
}

func (e *kinded) Error() string { return e.err.Error() }
func (e *kinded) Unwrap() error { return e.err }

// Is reports whether target is this error's kind.
func (e *kinded) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.kind
}

func wrap(err error, k Kind) error {
	if err == nil {
		return nil
	}
	return &kinded{err: err, kind: k}
}

// NotFound marks err as "the named object does not exist" (404).
func NotFound(err error) error { return wrap(err, ErrNotFound) }

// InvalidParameter marks err as bad client input (400).
func InvalidParameter(err error) error { return wrap(err, ErrInvalidParameter) }

// Conflict marks err as a clash with current state (409).
func Conflict(err error) error { return wrap(err, ErrConflict) }

// Unauthorized marks err as missing credentials (401).
func Unauthorized(err error) error { return wrap(err, ErrUnauthorized) }

// Forbidden marks err as refused by policy (403).
func Forbidden(err error) error { return wrap(err, ErrForbidden) }

// NotModified marks err as "nothing to do" (304, empty body).
func NotModified(err error) error { return wrap(err, ErrNotModified) }

// NotImplemented marks err as a feature skiffd does not have (501).
func NotImplemented(err error) error { return wrap(err, ErrNotImplemented) }

// Unavailable marks err as a feature that is switched off or not ready (503).
func Unavailable(err error) error { return wrap(err, ErrUnavailable) }

// System marks err as an internal failure (500).
func System(err error) error { return wrap(err, ErrSystem) }

// KindOf returns the outermost kind attached to err, so that re-marking an
// error (Conflict(NotFound(x))) changes how it is reported.
func KindOf(err error) Kind {
	var k *kinded
	if errors.As(err, &k) {
		return k.kind
	}
	return kindUnknown
}

// Status maps an error to its HTTP status: the only place in skiffd where that
// mapping lives. Errors without a kind are internal failures (500).
func Status(err error) int {
	if err == nil {
		return http.StatusOK
	}
	switch KindOf(err) {
	case ErrNotFound:
		return http.StatusNotFound
	case ErrInvalidParameter:
		return http.StatusBadRequest
	case ErrConflict:
		return http.StatusConflict
	case ErrUnauthorized:
		return http.StatusUnauthorized
	case ErrForbidden:
		return http.StatusForbidden
	case ErrNotModified:
		return http.StatusNotModified
	case ErrNotImplemented:
		return http.StatusNotImplemented
	case ErrUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}
