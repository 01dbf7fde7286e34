package reference

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"skiffd/internal/errdefs"
)

func TestIDIndexGet(t *testing.T) {
	ids := []string{
		"aaaa" + strings.Repeat("0", 60),
		"aaab" + strings.Repeat("0", 60),
		"abcd" + strings.Repeat("1", 60),
		hexB,
	}
	x, err := NewIDIndex(ids[0], ids[1], "sha256:"+ids[2], ids[3], ids[3])
	if err != nil {
		t.Fatalf("NewIDIndex error = %v", err)
	}
	if x.Len() != 4 {
		t.Errorf("Len() = %d, want 4 (a duplicate Add is a no-op)", x.Len())
	}
	tests := []struct {
		prefix  string
		want    string
		wantErr string
		kind    error
		is      error
	}{
		{prefix: ids[0], want: ids[0]},
		{prefix: "sha256:" + ids[1], want: ids[1]},
		{prefix: "aaab", want: ids[1]},
		{prefix: "ab", want: ids[2]},
		{prefix: "sha256:abc", want: ids[2]},
		{prefix: "4", want: ids[3]},
		{prefix: "462dad7a438b", want: ids[3]},
		{prefix: "a", wantErr: "multiple IDs found with provided prefix: a", kind: errdefs.ErrInvalidParameter, is: ErrAmbiguousID},
		{prefix: "aaa", wantErr: "multiple IDs found with provided prefix: aaa", kind: errdefs.ErrInvalidParameter, is: ErrAmbiguousID},
		{prefix: "sha256:aa", wantErr: "multiple IDs found with provided prefix: sha256:aa", kind: errdefs.ErrInvalidParameter, is: ErrAmbiguousID},
		{prefix: "", wantErr: "prefix can't be empty", kind: errdefs.ErrInvalidParameter, is: ErrEmptyPrefix},
		{prefix: "b", wantErr: "no such ID: b", kind: errdefs.ErrNotFound, is: ErrNoSuchID},
		{prefix: "0", wantErr: "no such ID: 0", kind: errdefs.ErrNotFound, is: ErrNoSuchID},
		{prefix: "f", wantErr: "no such ID: f", kind: errdefs.ErrNotFound, is: ErrNoSuchID},
		{prefix: "AAAA", wantErr: "no such ID: AAAA", kind: errdefs.ErrNotFound, is: ErrNoSuchID},
		{prefix: "sha256:", wantErr: "no such ID: sha256:", kind: errdefs.ErrNotFound, is: ErrNoSuchID},
		{prefix: "sha512:aaaa", wantErr: "no such ID: sha512:aaaa", kind: errdefs.ErrNotFound, is: ErrNoSuchID},
		{prefix: ids[0] + "0", wantErr: "no such ID: " + ids[0] + "0", kind: errdefs.ErrNotFound, is: ErrNoSuchID},
		{prefix: "busybox", wantErr: "no such ID: busybox", kind: errdefs.ErrNotFound, is: ErrNoSuchID},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			got, err := x.Get(tt.prefix)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Errorf("Get(%q) = %q, %v; want %q", tt.prefix, got, err, tt.want)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Get(%q) = %q, %v; want error %q", tt.prefix, got, err, tt.wantErr)
			}
			if !errors.Is(err, tt.kind) || !errors.Is(err, tt.is) {
				t.Errorf("Get(%q) error = %v (kind %v), want errors.Is %v and %v", tt.prefix, err, errdefs.KindOf(err), tt.kind, tt.is)
			}
		})
	}
}

func TestIDIndexAddDelete(t *testing.T) {
	var x IDIndex // the zero value is ready to use
	if _, err := x.Get("a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("empty index Get(a) error = %v, want not found", err)
	}
	for _, bad := range []string{"", "abc", strings.ToUpper(hexA), "sha512:" + hexA, hexA + "0", "sha256:sha256:" + hexA} {
		if err := x.Add(bad); !errors.Is(err, errdefs.ErrInvalidParameter) {
			t.Errorf("Add(%q) error = %v, want invalid parameter", bad, err)
		}
	}
	if x.Len() != 0 {
		t.Fatalf("Len() = %d after invalid Adds, want 0", x.Len())
	}

	a, b := "ab"+strings.Repeat("0", 62), "ac"+strings.Repeat("0", 62)
	for _, id := range []string{a, "sha256:" + b} {
		if err := x.Add(id); err != nil {
			t.Fatalf("Add(%q) error = %v", id, err)
		}
	}
	if _, err := x.Get("a"); !errors.Is(err, ErrAmbiguousID) {
		t.Errorf("Get(a) with %s and %s error = %v, want ambiguous", a, b, err)
	}
	if !x.Contains(a) || !x.Contains("sha256:"+a) || x.Contains("ab") {
		t.Errorf("Contains(%q, sha256:..., ab) = %v, %v, %v; want true, true, false", a, x.Contains(a), x.Contains("sha256:"+a), x.Contains("ab"))
	}

	x.Delete("sha256:" + b)
	x.Delete(b)           // already gone: no-op
	x.Delete("not-an-id") // never there: no-op
	if got, err := x.Get("a"); err != nil || got != a {
		t.Errorf("Get(a) after Delete(%s) = %q, %v; want %q", b, got, err, a)
	}
	x.Delete(a)
	if _, err := x.Get("a"); !errors.Is(err, ErrNoSuchID) {
		t.Errorf("Get(a) after deleting everything error = %v, want no such ID", err)
	}
	if x.Len() != 0 {
		t.Errorf("Len() = %d after deleting everything, want 0", x.Len())
	}
}

// TestIDIndexConcurrent runs writers and readers at once; with -race it
// checks the locking, and the final contents check that no update was lost.
func TestIDIndexConcurrent(t *testing.T) {
	const writers, perWriter = 8, 200
	var x IDIndex
	id := func(w, i int) string { return fmt.Sprintf("%02x%04x", w, i) + strings.Repeat("e", 58) }

	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				if err := x.Add(id(w, i)); err != nil {
					t.Errorf("Add(%q) error = %v", id(w, i), err)
					return
				}
				if i%2 == 1 {
					x.Delete(id(w, i))
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range perWriter {
				// Each result is valid whatever the interleaving: found,
				// not yet added, already deleted, or ambiguous.
				got, err := x.Get(fmt.Sprintf("%02x", w))
				if err == nil && !strings.HasPrefix(got, fmt.Sprintf("%02x", w)) {
					t.Errorf("Get(%02x) = %q, want an ID with that prefix", w, got)
				}
				x.Contains(id(w, i))
				x.Len()
			}
		}()
	}
	wg.Wait()

	if got, want := x.Len(), writers*perWriter/2; got != want {
		t.Errorf("Len() = %d after concurrent updates, want %d", got, want)
	}
	for w := range writers {
		for i := range perWriter {
			if got, want := x.Contains(id(w, i)), i%2 == 0; got != want {
				t.Errorf("Contains(%q) = %v, want %v", id(w, i), got, want)
			}
		}
	}
}
