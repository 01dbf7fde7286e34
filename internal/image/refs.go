package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"skiffd/internal/atomicfile"
	"skiffd/internal/errdefs"
	"skiffd/internal/reference"
)

// repoFile is the JSON form of repositories.json, the same as dockerd's.
type repoFile struct {
	Repositories map[string]map[string]string `json:"Repositories"`
}

func (s *Store) loadRepos() error {
	b, err := os.ReadFile(filepath.Join(s.root, reposFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open image store: %w", err)
	}
	var f repoFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("open image store: %s: %w", reposFileName, err)
	}
	for _, refs := range f.Repositories {
		for str, id := range refs {
			n, err := reference.ParseNormalizedNamed(str)
			if err != nil {
				continue
			}
			s.putRef(n, id)
		}
	}
	return nil
}

func (s *Store) saveRepos() error {
	b, err := json.Marshal(repoFile{Repositories: s.repos})
	if err != nil {
		return fmt.Errorf("save references: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(s.root, reposFileName), b, 0o600); err != nil {
		return fmt.Errorf("save references: %w", err)
	}
	return nil
}

// lookupRef returns the image ID the stored reference n names.
func (s *Store) lookupRef(n reference.Named) (string, bool) {
	id, ok := s.repos[n.FamiliarName()][n.FamiliarString()]
	return id, ok
}

// putRef points n at id in memory, replacing what n pointed at.
func (s *Store) putRef(n reference.Named, id string) {
	name, str := n.FamiliarName(), n.FamiliarString()
	if old, ok := s.repos[name][str]; ok {
		delete(s.byID[old], str)
		if len(s.byID[old]) == 0 {
			delete(s.byID, old)
		}
	}
	if s.repos[name] == nil {
		s.repos[name] = make(map[string]string)
	}
	s.repos[name][str] = id
	if s.byID[id] == nil {
		s.byID[id] = make(map[string]reference.Named)
	}
	s.byID[id][str] = n
}

// dropRef forgets n in memory.
func (s *Store) dropRef(n reference.Named) {
	name, str := n.FamiliarName(), n.FamiliarString()
	id, ok := s.repos[name][str]
	if !ok {
		return
	}
	delete(s.repos[name], str)
	if len(s.repos[name]) == 0 {
		delete(s.repos, name)
	}
	delete(s.byID[id], str)
	if len(s.byID[id]) == 0 {
		delete(s.byID, id)
	}
}

// References returns the tags and digests that point at the image id,
// sorted by their full string form as dockerd sorts them.
func (s *Store) References(id string) []reference.Named {
	id = normalizeID(id)
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []reference.Named
	for _, n := range s.byID[id] {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b reference.Named) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// Tag points ref at the image id, moving it if it named another image, and
// records the time as the image's last tag time. A name without tag or
// digest means ":latest"; a reference with both a tag and a digest is
// stored by its digest, as dockerd does. A digest reference that already
// names another image is refused (errdefs.Conflict "Cannot overwrite digest
// ..."), and so is the repository name "sha256".
func (s *Store) Tag(id string, ref reference.Named) error {
	return s.tag(id, ref, true, nil)
}

// tag is Tag, calling moved with the previous image ID when it moves a tag.
// Loads do not touch the last tag time, as dockerd's load tags through its
// reference store alone.
func (s *Store) tag(id string, ref reference.Named, touch bool, moved func(old string)) error {
	if ref.IsZero() {
		return errdefs.InvalidParameter(errors.New("invalid reference format"))
	}
	ref = reference.DockerRef(ref)
	if ref.FamiliarName() == digestDirName {
		return errdefs.InvalidParameter(errors.New("refusing to create an ambiguous tag using digest algorithm as name"))
	}
	id = normalizeID(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	img := s.images[id]
	if img == nil {
		return errdefs.NotFound(fmt.Errorf("No such image: %s", id))
	}
	old, existed := s.lookupRef(ref)
	if existed && old != id {
		if ref.Digest() != "" {
			return errdefs.Conflict(fmt.Errorf("Cannot overwrite digest %s", ref.Digest()))
		}
	}
	if !existed || old != id {
		s.putRef(ref, id)
		if err := s.saveRepos(); err != nil {
			if existed {
				s.putRef(ref, old)
			} else {
				s.dropRef(ref)
			}
			return err
		}
		if existed && moved != nil {
			moved(old)
		}
	}
	if !touch {
		return nil
	}
	now := time.Now().UTC()
	if err := os.MkdirAll(s.metaDir(id), 0o700); err != nil {
		return fmt.Errorf("tag image %s: %w", id, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(s.metaDir(id), lastTagFile), []byte(now.Format(time.RFC3339Nano)), 0o600); err != nil {
		return fmt.Errorf("tag image %s: %w", id, err)
	}
	img.LastTagTime = now
	return nil
}

// Untag removes the tag or digest reference ref ("busybox" meaning
// "busybox:latest") and returns the ID it pointed at. An unknown reference
// is errdefs.NotFound "No such image: busybox:latest". The image itself
// stays, even when it has no references left.
func (s *Store) Untag(ref reference.Named) (id string, err error) {
	if ref.IsZero() {
		return "", errdefs.InvalidParameter(errors.New("invalid reference format"))
	}
	ref = reference.DockerRef(ref)
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.lookupRef(ref)
	if !ok {
		return "", errdefs.NotFound(fmt.Errorf("No such image: %s", ref.FamiliarString()))
	}
	s.dropRef(ref)
	if err := s.saveRepos(); err != nil {
		s.putRef(ref, id)
		return "", err
	}
	return id, nil
}
