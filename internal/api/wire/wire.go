// Package wire holds the HTTP plumbing every API module shares: decoding JSON
// bodies the way dockerd does (Content-Type check, empty body allowed,
// trailing data refused, size bounded), encoding answers, reading query
// values with moby's boolean rules, and the API version a request negotiated.
//
// A module handler is a HandlerFunc; package main adapts it to http.Handler
// and turns its error into a status code and a {"message": ...} body.
package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"skiffd/internal/errdefs"
)

// HandlerFunc is an API handler. It returns an error instead of writing one
// so that error-to-status mapping happens in exactly one place.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// MaxJSONBody bounds every JSON request body. The largest body a real client
// sends (container create) is a few KiB; 10 MiB leaves room for big label
// sets while keeping a hostile client from making the daemon buffer gigabytes.
const MaxJSONBody = 10 << 20

// CheckJSONContentType refuses bodies that declare a type other than JSON, with
// dockerd's wording. A missing Content-Type is accepted, as dockerd does.
func CheckJSONContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return errdefs.InvalidParameter(fmt.Errorf("Content-Type specified (%s) must be 'application/json'", ct))
	}
	return nil
}

// DecodeJSON decodes the request body into v. An empty body leaves v as it is
// and reports empty=true, so handlers can apply defaults. Unknown fields are
// ignored (clients send fields from newer API versions); trailing data after
// the JSON value and bodies larger than MaxJSONBody are refused.
func DecodeJSON(r *http.Request, v any) (empty bool, err error) {
	if err := CheckJSONContentType(r); err != nil {
		return false, err
	}
	if r.Body == nil || r.Body == http.NoBody {
		return true, nil
	}
	body := io.LimitReader(r.Body, MaxJSONBody+1)
	data, err := io.ReadAll(body)
	if err != nil {
		return false, errdefs.InvalidParameter(fmt.Errorf("reading request body: %w", err))
	}
	if len(data) > MaxJSONBody {
		return false, errdefs.InvalidParameter(fmt.Errorf("request body is larger than %d bytes", MaxJSONBody))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return true, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return false, errdefs.InvalidParameter(fmt.Errorf("invalid JSON: %s", err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return false, errdefs.InvalidParameter(errors.New("unexpected content after JSON"))
	}
	return false, nil
}

// WriteJSON writes v as JSON with a trailing newline, as dockerd's encoder does.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Message string `json:"message"`
}

// WriteError writes a Docker-style error: JSON {"message": ...}, or no body at
// all for 304, which clients treat as success.
func WriteError(w http.ResponseWriter, status int, msg string) {
	if status == http.StatusNotModified {
		w.WriteHeader(status)
		return
	}
	_ = WriteJSON(w, status, ErrorBody{Message: msg})
}

// PageNotFound answers a path no route claims, as dockerd's router does: a
// JSON 404 without the version headers, since dockerd's fallback sits
// outside its middlewares.
func PageNotFound(w http.ResponseWriter) {
	h := w.Header()
	for _, k := range []string{"Api-Version", "Ostype", "Server", "Docker-Experimental"} {
		delete(h, k)
	}
	WriteError(w, http.StatusNotFound, "page not found")
}

// BoolValue reads a query parameter with moby's rules: "", "0", "no",
// "false" and "none" (any case) are false, anything else is true. docker-py
// sends True/False, the CLI sends 1 and omits false.
func BoolValue(r *http.Request, key string) bool {
	return QueryBool(r.URL.Query(), key)
}

// QueryBool is BoolValue on a query parsed once for several parameters.
func QueryBool(q url.Values, key string) bool {
	return parseBool(q.Get(key))
}

func parseBool(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// BoolValueOrDefault is BoolValue, but def when the parameter is absent.
func BoolValueOrDefault(r *http.Request, key string, def bool) bool {
	q := r.URL.Query()
	if _, ok := q[key]; !ok {
		return def
	}
	return parseBool(q.Get(key))
}

// Int64ValueOrDefault reads an integer query parameter; def when absent or
// empty, an invalid-parameter error when it is not a number.
func Int64ValueOrDefault(r *http.Request, key string, def int64) (int64, error) {
	return QueryInt64OrDefault(r.URL.Query(), key, def)
}

// QueryInt64OrDefault is Int64ValueOrDefault on a query parsed once for
// several parameters.
func QueryInt64OrDefault(q url.Values, key string, def int64) (int64, error) {
	s := q.Get(key)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errdefs.InvalidParameter(fmt.Errorf("invalid value for %s: %q: must be an integer", key, s))
	}
	return n, nil
}

type versionKey struct{}

// WithVersion records the API version a request asked for (or the server's
// current version for unversioned paths).
func WithVersion(ctx context.Context, v string) context.Context {
	return context.WithValue(ctx, versionKey{}, v)
}

// VersionFrom returns the API version recorded in ctx, or "" when none is.
func VersionFrom(ctx context.Context) string {
	v, _ := ctx.Value(versionKey{}).(string)
	return v
}

// CompareVersions compares dotted API versions numerically ("1.9" < "1.10").
// Missing parts count as zero; non-numeric parts compare as zero.
func CompareVersions(a, b string) int {
	for a != "" || b != "" {
		var pa, pb string
		pa, a, _ = strings.Cut(a, ".")
		pb, b, _ = strings.Cut(b, ".")
		na, _ := strconv.Atoi(pa)
		nb, _ := strconv.Atoi(pb)
		if na != nb {
			if na < nb {
				return -1
			}
			return 1
		}
	}
	return 0
}

// VersionLess reports whether the request's API version is below v; requests
// without a recorded version are treated as the newest.
func VersionLess(ctx context.Context, v string) bool {
	have := VersionFrom(ctx)
	return have != "" && CompareVersions(have, v) < 0
}

type streamsKey struct{}

// WithStreamsDone attaches a channel that closes when the server starts to
// shut down. Long streams (events, logs -f, stats) end on it, so a graceful
// shutdown does not wait for them while short requests still finish.
func WithStreamsDone(ctx context.Context, done <-chan struct{}) context.Context {
	return context.WithValue(ctx, streamsKey{}, done)
}

// StreamsDone returns the shutdown channel from ctx; nil (never ready) when
// the request did not come through the server.
func StreamsDone(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(streamsKey{}).(<-chan struct{})
	return ch
}

// Flush sends buffered response data to the client now, through any wrapping
// ResponseWriter that implements Unwrap.
func Flush(w http.ResponseWriter) {
	_ = http.NewResponseController(w).Flush()
}
