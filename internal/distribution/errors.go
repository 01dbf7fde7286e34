package distribution

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"skiffd/internal/errdefs"
	"skiffd/internal/reference"
)

// The error codes of the Registry HTTP API v2 (distribution's errcode and
// registry/api/v2 packages) that the client reacts to.
const (
	CodeUnknown             = "UNKNOWN"
	CodeUnsupported         = "UNSUPPORTED"
	CodeUnauthorized        = "UNAUTHORIZED"
	CodeDenied              = "DENIED"
	CodeUnavailable         = "UNAVAILABLE"
	CodeTooManyRequests     = "TOOMANYREQUESTS"
	CodeDigestInvalid       = "DIGEST_INVALID"
	CodeSizeInvalid         = "SIZE_INVALID"
	CodeNameInvalid         = "NAME_INVALID"
	CodeTagInvalid          = "TAG_INVALID"
	CodeNameUnknown         = "NAME_UNKNOWN"
	CodeManifestUnknown     = "MANIFEST_UNKNOWN"
	CodeManifestInvalid     = "MANIFEST_INVALID"
	CodeManifestUnverified  = "MANIFEST_UNVERIFIED"
	CodeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	CodeBlobUnknown         = "BLOB_UNKNOWN"
	CodeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	CodeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
)

// codeMessages are the default messages of the codes, used when a registry
// sends a code without a message, as distribution's client fills them in.
var codeMessages = map[string]string{
	CodeUnknown:             "unknown error",
	CodeUnsupported:         "The operation is unsupported.",
	CodeUnauthorized:        "authentication required",
	CodeDenied:              "requested access to the resource is denied",
	CodeUnavailable:         "service unavailable",
	CodeTooManyRequests:     "too many requests",
	CodeDigestInvalid:       "provided digest did not match uploaded content",
	CodeSizeInvalid:         "provided length did not match content length",
	CodeNameInvalid:         "invalid repository name",
	CodeTagInvalid:          "manifest tag did not match URI",
	CodeNameUnknown:         "repository name not known to registry",
	CodeManifestUnknown:     "manifest unknown",
	CodeManifestInvalid:     "manifest invalid",
	CodeManifestUnverified:  "manifest failed signature verification",
	CodeManifestBlobUnknown: "blob unknown to registry",
	CodeBlobUnknown:         "blob unknown to registry",
	CodeBlobUploadUnknown:   "blob upload unknown to registry",
	CodeBlobUploadInvalid:   "blob upload invalid",
}

// Error is one entry of a registry's error body
// {"errors":[{"code":...,"message":...,"detail":...}]}. Its text is
// distribution's: the code lower-cased with spaces, a colon, the message
// ("manifest unknown: manifest unknown", "unauthorized: authentication
// required").
type Error struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail,omitempty"`
	// Status is the HTTP status of the response that carried the error.
	Status int `json:"-"`
}

func (e *Error) Error() string {
	code := e.Code
	if _, known := codeMessages[code]; !known {
		code = CodeUnknown
	}
	return strings.ToLower(strings.ReplaceAll(code, "_", " ")) + ": " + e.Message
}

// withKind gives es the errdefs kind of its first entry, the one dockerd
// reports, so that errdefs.Status maps it.
func withKind(es Errors) error {
	if len(es) == 0 {
		return nil
	}
	switch codeKind(es[0].Code, es[0].Status) {
	case errdefs.ErrNotFound:
		return errdefs.NotFound(es)
	case errdefs.ErrUnauthorized:
		return errdefs.Unauthorized(es)
	case errdefs.ErrForbidden:
		return errdefs.Forbidden(es)
	case errdefs.ErrInvalidParameter:
		return errdefs.InvalidParameter(es)
	case errdefs.ErrUnavailable:
		return errdefs.Unavailable(es)
	case errdefs.ErrNotImplemented:
		return errdefs.NotImplemented(es)
	}
	return errdefs.System(es)
}

func codeKind(code string, status int) errdefs.Kind {
	switch code {
	case CodeNameUnknown, CodeManifestUnknown, CodeBlobUnknown, CodeBlobUploadUnknown:
		return errdefs.ErrNotFound
	case CodeUnauthorized:
		return errdefs.ErrUnauthorized
	case CodeDenied:
		return errdefs.ErrForbidden
	case CodeNameInvalid, CodeTagInvalid, CodeDigestInvalid, CodeSizeInvalid,
		CodeManifestInvalid, CodeManifestUnverified, CodeManifestBlobUnknown, CodeBlobUploadInvalid:
		return errdefs.ErrInvalidParameter
	case CodeUnavailable, CodeTooManyRequests:
		return errdefs.ErrUnavailable
	case CodeUnsupported:
		return errdefs.ErrNotImplemented
	}
	switch status {
	case http.StatusNotFound:
		return errdefs.ErrNotFound
	case http.StatusUnauthorized:
		return errdefs.ErrUnauthorized
	case http.StatusForbidden:
		return errdefs.ErrForbidden
	}
	return errdefs.ErrSystem
}

// Errors is a registry's error body (with, first, the error of a Bearer
// challenge's OAuth parameters, as distribution's client merges them). Its
// text is the first entry's: dockerd reports the first and ignores the rest
// (moby's retryOnError and translatePullError), so a push without rights
// reads "denied: requested access to the resource is denied".
type Errors []*Error

func (es Errors) Error() string {
	if len(es) == 0 {
		return "<nil>"
	}
	return es[0].Error()
}

// Unwrap gives errors.As access to the entries.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// HasCode reports whether err holds a registry error with the given code.
func HasCode(err error, code string) bool {
	var es Errors
	if errors.As(err, &es) {
		for _, e := range es {
			if e.Code == code {
				return true
			}
		}
		return false
	}
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// responseError turns a non-success response into an error, as
// distribution's client does: OAuth error parameters of a Bearer challenge
// first (invalid_token is UNAUTHORIZED, insufficient_scope is DENIED), then
// the JSON error body, then the {"details": ...} body of token servers;
// other 401 bodies become UNAUTHORIZED.
func responseError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	status := resp.StatusCode
	if status >= 400 && status < 500 {
		for _, c := range ResponseChallenges(resp.Header) {
			if c.Scheme != "bearer" {
				continue
			}
			var code string
			switch c.Params["error"] {
			case "invalid_token":
				code = CodeUnauthorized
			case "insufficient_scope":
				code = CodeDenied
			default:
				continue
			}
			msg := c.Params["error_description"]
			if msg == "" {
				msg = codeMessages[code]
			}
			first := &Error{Code: code, Message: msg, Status: status}
			if es, ok := parseErrorBody(body, status); ok {
				return withKind(append(Errors{first}, es...))
			}
			return withKind(Errors{first})
		}
	}
	if es, ok := parseErrorBody(body, status); ok {
		return withKind(es)
	}
	var details struct {
		Details string `json:"details"`
	}
	if status == http.StatusUnauthorized || status == http.StatusTooManyRequests {
		code := CodeUnauthorized
		if status == http.StatusTooManyRequests {
			code = CodeTooManyRequests
		}
		msg := codeMessages[code]
		if json.Unmarshal(body, &details) == nil && details.Details != "" {
			msg = details.Details
		}
		return withKind(Errors{{Code: code, Message: msg, Status: status}})
	}
	if len(body) == 0 {
		return kindForStatus(status, fmt.Errorf("received unexpected HTTP status: %s", resp.Status))
	}
	return kindForStatus(status, fmt.Errorf("error parsing HTTP %d response body: %q", status, body))
}

func kindForStatus(status int, err error) error {
	switch status {
	case http.StatusNotFound:
		return errdefs.NotFound(err)
	case http.StatusUnauthorized:
		return errdefs.Unauthorized(err)
	case http.StatusForbidden:
		return errdefs.Forbidden(err)
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return errdefs.Unavailable(err)
	}
	return errdefs.System(err)
}

func parseErrorBody(body []byte, status int) (Errors, bool) {
	var eb struct {
		Errors []*Error `json:"errors"`
	}
	if json.Unmarshal(body, &eb) != nil || len(eb.Errors) == 0 {
		return nil, false
	}
	for _, e := range eb.Errors {
		if e == nil {
			return nil, false
		}
		e.Status = status
		if e.Message == "" {
			e.Message = codeMessages[e.Code]
			if e.Message == "" {
				e.Message = codeMessages[CodeUnknown]
			}
		}
	}
	return Errors(eb.Errors), true
}

// pullError rewrites a manifest fetch error the way dockerd words it for
// docker pull (moby's translatePullError): DENIED, MANIFEST_UNKNOWN and
// NAME_UNKNOWN become not-found errors naming the reference; anything else is
// returned as it is.
func pullError(err error, ref reference.Named) error {
	var first *Error
	var es Errors
	switch {
	case errors.As(err, &es) && len(es) > 0:
		first = es[0]
	case errors.As(err, &first):
	default:
		return err
	}
	switch first.Code {
	case CodeDenied:
		return errdefs.NotFound(fmt.Errorf("pull access denied for %s, repository does not exist or may require 'docker login': %w", ref.FamiliarName(), first))
	case CodeManifestUnknown:
		return errdefs.NotFound(fmt.Errorf("manifest for %s not found: %w", ref.FamiliarString(), first))
	case CodeNameUnknown:
		return errdefs.NotFound(fmt.Errorf("repository %s not found: %w", ref.FamiliarName(), first))
	}
	return err
}
