package reference

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"skiffd/internal/errdefs"
)

// The errors of IDIndex.Get, for errors.Is. The ambiguity and empty-prefix
// messages are moby's container-lookup wording, which clients see; the
// not-found message is generic, and callers replace it with their own
// ("No such container: x", "No such image: x:latest").
var (
	ErrEmptyPrefix = errors.New("prefix can't be empty")
	ErrAmbiguousID = errors.New("multiple IDs found with provided prefix")
	ErrNoSuchID    = errors.New("no such ID")
)

// IDIndex finds full 64-hex IDs from truncated ones, for containers and
// images alike. IDs are stored bare; "sha256:" is accepted and dropped on the
// way in. The zero IDIndex is empty and ready to use; it is safe for
// concurrent use.
//
// Lookups are a binary search over a sorted slice, so Get is O(log n) and
// Add and Delete are O(n) copies, which is cheap for the thousands of IDs a
// single host has.
type IDIndex struct {
	mu  sync.RWMutex
	ids []string // sorted, unique, each 64 lower-case hex digits
}

// NewIDIndex returns an index holding ids, which must each be valid for Add.
func NewIDIndex(ids ...string) (*IDIndex, error) {
	x := &IDIndex{}
	for _, id := range ids {
		if err := x.Add(id); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// Add records id, bare 64 hex or "sha256:" and 64 hex. Adding an ID twice is
// not an error. Anything else is refused with errdefs.InvalidParameter, so
// that the index never holds a value no prefix could name.
func (x *IDIndex) Add(id string) error {
	h := strings.TrimPrefix(id, Canonical+":")
	if !isFullHex(h) {
		return errdefs.InvalidParameter(fmt.Errorf("invalid ID %q: want 64 lower-case hex digits", id))
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	i, found := slices.BinarySearch(x.ids, h)
	if !found {
		x.ids = slices.Insert(x.ids, i, h)
	}
	return nil
}

// Delete forgets id (bare or "sha256:"-prefixed). Deleting an ID that is not
// there does nothing.
func (x *IDIndex) Delete(id string) {
	h := strings.TrimPrefix(id, Canonical+":")
	x.mu.Lock()
	defer x.mu.Unlock()
	if i, found := slices.BinarySearch(x.ids, h); found {
		x.ids = slices.Delete(x.ids, i, i+1)
	}
}

// Get returns the one full ID (bare 64 hex) that starts with prefix; prefix
// may carry "sha256:". A full ID that is present is always returned, even
// though it is also a prefix of nothing else. Errors:
//
//   - empty prefix: errdefs.InvalidParameter, "prefix can't be empty" (ErrEmptyPrefix)
//   - several matches: errdefs.InvalidParameter,
//     "multiple IDs found with provided prefix: <prefix>" (ErrAmbiguousID)
//   - no match, including any prefix that is not lower-case hex:
//     errdefs.NotFound, "no such ID: <prefix>" (ErrNoSuchID)
func (x *IDIndex) Get(prefix string) (string, error) {
	if prefix == "" {
		return "", errdefs.InvalidParameter(ErrEmptyPrefix)
	}
	h := strings.TrimPrefix(prefix, Canonical+":")
	if h == "" || len(h) > idHexLength || !isLowerHex(h) {
		return "", errdefs.NotFound(fmt.Errorf("%w: %s", ErrNoSuchID, prefix))
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	// Every ID with the prefix sorts at or after it, and they sit together.
	i, found := slices.BinarySearch(x.ids, h)
	if found {
		return x.ids[i], nil
	}
	if i == len(x.ids) || !strings.HasPrefix(x.ids[i], h) {
		return "", errdefs.NotFound(fmt.Errorf("%w: %s", ErrNoSuchID, prefix))
	}
	if i+1 < len(x.ids) && strings.HasPrefix(x.ids[i+1], h) {
		return "", errdefs.InvalidParameter(fmt.Errorf("%w: %s", ErrAmbiguousID, prefix))
	}
	return x.ids[i], nil
}

// Contains reports whether the full ID id (bare or "sha256:"-prefixed) is in
// the index.
func (x *IDIndex) Contains(id string) bool {
	h := strings.TrimPrefix(id, Canonical+":")
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, found := slices.BinarySearch(x.ids, h)
	return found
}

// Len returns the number of IDs in the index.
func (x *IDIndex) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.ids)
}
